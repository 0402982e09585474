"""``dlmsctl decode``: explain frames, APDUs or data given as hex or as a trace log.

The click wrapper only: reading the input and the keys, printing.  The decoding is
:mod:`dlmsd.protocol.explain` (pure); the input is split by :mod:`dlmsd.ctl.inputs`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from dlmsd.config import load_config
from dlmsd.ctl.inputs import Chunk, InputError, parse_input
from dlmsd.errors import ConfigError
from dlmsd.protocol.explain import KINDS, Explainer, Keys, Node, render_text
from dlmsd.secret import Secret, mask_secrets

__all__ = ["decode", "explain_chunks"]


def _hex_option(name: str, value: str | None, size: tuple[int, ...]) -> bytes | None:
    if value is None:
        return None
    text = value.replace(" ", "").removeprefix("0x")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise click.BadParameter(f"{name} must be hex") from None
    if len(raw) not in size:
        raise click.BadParameter(f"{name} must be {' or '.join(map(str, size))} bytes, "
                                 f"got {len(raw)}")
    return raw


def _keys(block_cipher_key: str | None, authentication_key: str | None,
          system_titles: tuple[str, ...], config: Path | None, device: str | None) -> Keys:
    bck = _hex_option("--block-cipher-key", block_cipher_key, (16, 32))
    ak = _hex_option("--authentication-key", authentication_key, (16, 32))
    titles = [t for t in (_hex_option("--system-title", s, (8,)) for s in system_titles) if t]
    dedicated: Secret | None = None
    if (config is None) != (device is None):
        raise click.UsageError("--config and --device go together")
    if config is not None and device is not None:
        try:
            cfg = load_config(config)
        except ConfigError as exc:
            raise click.UsageError(f"{config}: {exc}") from None
        found = next((d for d in cfg.devices if d.device_alias == device), None)
        if found is None:
            aliases = ", ".join(d.device_alias for d in cfg.devices) or "none"
            raise click.UsageError(f"{config}: no device {device!r} (devices: {aliases})")
        if bck is None and found.block_cipher_key is not None:
            bck = found.block_cipher_key.reveal()
        if ak is None and found.authentication_key is not None:
            ak = found.authentication_key.reveal()
        if found.system_title is not None:
            titles.append(found.system_title)
        dedicated = found.dedicated_key
    return Keys(block_cipher_key=Secret(bck) if bck else None,
                authentication_key=Secret(ak) if ak else None,
                dedicated_key=dedicated, system_titles=tuple(titles))


def explain_chunks(chunks: list[Chunk], keys: Keys, kind: str = "auto"
                   ) -> list[tuple[Chunk, list[Node]]]:
    explainer = Explainer(keys)
    return [(chunk, explainer.explain(chunk.data, kind=kind, direction=chunk.direction,
                                      device=chunk.device)) for chunk in chunks]


def _heading(number: int, chunk: Chunk, many: bool) -> str | None:
    parts = [f"#{number}"] if many else []
    if chunk.direction:
        parts.append(chunk.direction)
    if chunk.device:
        parts.append(f"device={chunk.device}")
    if chunk.line is not None:
        parts.append(f"(line {chunk.line})")
    return " ".join(parts) if parts else None


def _errors(nodes: list[Node]) -> list[str]:
    """Every problem in the trees: errors, failed checks, failed deciphering."""
    return [n.value if n.name == "error" else f"{n.name}: {n.value}"
            for root in nodes for n in root.walk() if n.error and not n.children]


@click.command()
@click.argument("hex_words", metavar="[HEX]...", nargs=-1)
@click.option("-f", "--file", "path", type=click.Path(dir_okay=False, path_type=Path),
              help="Read the hex or the log from this file (default: the arguments, "
                   "else stdin).")
@click.option("--as", "kind", type=click.Choice(KINDS), default="auto", show_default=True,
              help="What the input is: an HDLC or wrapper frame, an APDU or A-XDR data.")
@click.option("--json", "as_json", is_flag=True, help="Print the tree as JSON.")
@click.option("--block-cipher-key", metavar="HEX", help="Global unicast encryption key.")
@click.option("--authentication-key", metavar="HEX", help="Global authentication key.")
@click.option("--system-title", "system_titles", metavar="HEX", multiple=True,
              help="The sender's system title (8 bytes; repeatable). Titles in an "
                   "AARQ/AARE of the input are used too.")
@click.option("-c", "--config", type=click.Path(dir_okay=False, path_type=Path),
              help="Take the keys and system title from this configuration...")
@click.option("--device", metavar="ALIAS", help="...of this device (its device_alias).")
def decode(hex_words: tuple[str, ...], path: Path | None, kind: str, as_json: bool,
           block_cipher_key: str | None, authentication_key: str | None,
           system_titles: tuple[str, ...], config: Path | None, device: str | None) -> None:
    """Decode DLMS/COSEM frames, APDUs or A-XDR data given as hex, or every frame of a
    `dlms -d7 --dlms` log (text or JSON lines).

    Exit status: 0 decoded, 1 the input is bad somewhere (what decoded before is still
    shown), 2 bad usage.
    """
    keys = _keys(block_cipher_key, authentication_key, system_titles, config, device)
    if hex_words and path is not None:
        raise click.UsageError("give the input as arguments or --file, not both")
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise click.UsageError(f"cannot read {path}: {exc.strerror}") from None
    elif hex_words:
        text = " ".join(hex_words)
    else:
        text = sys.stdin.read()
    try:
        chunks = parse_input(text)
    except InputError as exc:
        click.echo(f"dlmsctl decode: bad input: {exc}", err=True)
        sys.exit(1)
    if not chunks or not any(c.data for c in chunks):
        click.echo("dlmsctl decode: no input (hex, or a dlms -d7 --dlms log)", err=True)
        sys.exit(1)
    results = explain_chunks(chunks, keys, kind)
    many = len(results) > 1
    errors: list[str] = []
    if as_json:
        doc: list[dict[str, Any]] = []
        for chunk, nodes in results:
            item: dict[str, Any] = {"direction": chunk.direction or None,
                                    "device": chunk.device or None,
                                    "line": chunk.line, "hex": chunk.data.hex().upper(),
                                    "decoded": [n.to_json() for n in nodes]}
            doc.append(item)
            errors += _errors(nodes)
        click.echo(mask_secrets(json.dumps(doc if many else doc[0], indent=2,
                                           ensure_ascii=False)))
    else:
        for number, (chunk, nodes) in enumerate(results, 1):
            heading = _heading(number, chunk, many)
            if heading:
                click.echo(heading)
            for node in nodes:
                click.echo(mask_secrets("\n".join(render_text(node, 1 if heading else 0))))
            errors += _errors(nodes)
            if many:
                click.echo("")
    for error in errors:
        click.echo(f"dlmsctl decode: {error}", err=True)
    sys.exit(1 if errors else 0)
