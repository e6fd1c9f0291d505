"""The one way `run` and `inspect` read a .cbx, so the same broken file gets the same message."""

from __future__ import annotations

from pathlib import Path

from cerebro.compiler.cbx.format import CbxError
from cerebro.compiler.cbx.reader import CbxFile, read_cbx


def read_model_file(path: str | Path) -> tuple[bytes, CbxFile]:
    """The file's bytes and their parse (structure, meta, content hash); ValueError naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, not a .cbx file") from None
    try:
        return data, read_cbx(data)
    except CbxError as error:
        raise ValueError(f"{path}: {error}") from None
