"""``python -m dlmsd`` runs the ``dlms`` command."""

from dlmsd.cli import main

main(prog_name="dlms")
