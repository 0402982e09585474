"""dlmsd: a DLMS/COSEM (IEC 62056) master daemon for Linux gateways."""

# The one place the version is written (pyproject.toml reads it from here): a literal,
# so that the daemon's start does not import importlib.metadata (about 2 MB; issue 16).
__version__ = "0.1.0"

__all__ = ["__version__"]
