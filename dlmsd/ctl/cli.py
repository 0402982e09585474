"""The ``dlmsctl`` command: one click group, a subcommand per field tool."""

from __future__ import annotations

import click

from dlmsd import __version__

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="dlmsctl")
def main() -> None:
    """Field tools for DLMS/COSEM meters."""


from dlmsd.ctl.discover import discover  # noqa: E402
from dlmsd.ctl.probe import probe  # noqa: E402

main.add_command(discover)
main.add_command(probe)
