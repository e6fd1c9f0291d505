"""Input arrays for `cerebroc run`: .npy files by position or name, .npz files by name, and the
casts a model's dtype can take without changing a value."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def load_inputs(specs: list[str], signature: list) -> list[np.ndarray]:
    """The arrays named by --input specs (FILE.npy, NAME=FILE.npy or FILE.npz), in signature order and
    cast to each input's dtype where that keeps every value (a note on stderr says so)."""
    names = [t.name for t in signature]
    positional, named = [], {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if sep and not name.endswith((".npy", ".npz")):
            if name not in names:
                raise ValueError(f"--input {spec!r}: the model has no input {name!r} (inputs: {', '.join(names)})")
            named[name] = _load_array(path)
        elif spec.endswith(".npz"):
            named.update(_load_archive(spec, names))
        else:
            positional.append(_load_array(spec))
    if named and positional:
        raise ValueError("give inputs either all by position or all by name (NAME=FILE.npy or FILE.npz)")
    if named:
        missing = [n for n in names if n not in named]
        if missing:
            raise ValueError(f"missing inputs: {', '.join(missing)}")
        arrays = [named[n] for n in names]
    else:
        if len(positional) != len(names):
            raise ValueError(f"the model takes {len(names)} inputs ({', '.join(names)}), got {len(positional)}")
        arrays = positional
    return [cast_input(array, spec.dtype.numpy, spec.name) for array, spec in zip(arrays, signature)]


def _load_array(path: str) -> np.ndarray:
    if not Path(path).is_file():
        raise ValueError(f"{path}: no such file")
    try:
        value = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise ValueError(f"{path}: not a .npy file ({error})") from None
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{path}: an .npz archive; give it as --input {path} (its arrays are taken by name)")
    return value


def _load_archive(path: str, names: list[str]) -> dict[str, np.ndarray]:
    """The archive's arrays whose names are inputs; an array named for no input is an error."""
    if not Path(path).is_file():
        raise ValueError(f"{path}: no such file")
    with np.load(path, allow_pickle=False) as archive:
        unknown = [key for key in archive.files if key not in names]
        if unknown:
            raise ValueError(f"{path}: arrays {', '.join(unknown)} name no input of the model "
                             f"(inputs: {', '.join(names)})")
        return {key: archive[key] for key in archive.files}


def _holds(array: np.ndarray, cast: np.ndarray) -> bool:
    """Whether cast keeps array's values: floats stay finite where they were (float64 -> float32
    rounds, as users expect), everything else survives the round trip exactly."""
    if array.dtype.kind == "f" and cast.dtype.kind == "f":
        return bool(np.array_equal(np.isfinite(array), np.isfinite(cast)))
    with np.errstate(invalid="ignore", over="ignore"):
        back = cast.astype(array.dtype)
    return bool(np.array_equal(back, array))


def cast_input(array: np.ndarray, dtype: np.dtype, name: str) -> np.ndarray:
    """array as dtype, with a one-line note on stderr; ValueError when dtype cannot hold its values."""
    if array.dtype == dtype:
        return array
    if array.dtype.kind not in "biuf":
        raise ValueError(f"input '{name}': {array.dtype} data cannot be given to a {dtype} input")
    with np.errstate(invalid="ignore", over="ignore"):
        cast = array.astype(dtype)
    if not _holds(array, cast):
        raise ValueError(f"input '{name}': the model takes {dtype}, and {dtype} cannot hold these "
                         f"{array.dtype} values (e.g. out of range or not whole numbers); convert them first")
    print(f"cerebroc: note: input '{name}': cast {array.dtype} to the model's {dtype}", file=sys.stderr)
    return cast
