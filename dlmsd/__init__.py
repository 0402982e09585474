"""dlmsd: a DLMS/COSEM (IEC 62056) master daemon for Linux gateways."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dlmsd")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
