"""The ``dlmsctl`` command: one click group; each tool registers its subcommand below."""

from __future__ import annotations

import click

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dlmsd")
def main() -> None:
    """DLMS/COSEM field tools."""


# Subcommands (one line each, so that tools built apart merge without conflict).
from dlmsd.ctl.decode import decode  # noqa: E402
from dlmsd.ctl.discover import discover  # noqa: E402
from dlmsd.ctl.probe import probe  # noqa: E402

main.add_command(decode)
main.add_command(discover)
main.add_command(probe)
