"""How the caller binds input shapes, so an import error tells them in their own words: Python
callers pass shapes={...}, `cerebroc compile` users pass --shape NAME=SHAPE (the CLI sets CLI_SYNTAX)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextvars import ContextVar

_CLI: ContextVar[bool] = ContextVar("cerebro_cli_syntax", default=False)


@contextlib.contextmanager
def cli_syntax() -> Iterator[None]:
    """Within this block, binding hints are written as cerebroc options."""
    token = _CLI.set(True)
    try:
        yield
    finally:
        _CLI.reset(token)


def bind_input(name: str, dims: Sequence[object] | None = None) -> str:
    """How to give input @name a shape; @dims (ints, None or names for unknown) fill in the example."""
    known = [d if isinstance(d, int) else None for d in dims] if dims is not None else None
    if _CLI.get():
        return f"--shape {name}=" + ("x".join(str(d) if d is not None else "N" for d in known) if known else "SHAPE")
    example = "(" + ", ".join(str(d) if d is not None else "N" for d in known) + ("," if len(known) == 1 else "") \
        + ")" if known else "(...)"
    return f"shapes={{'{name}': {example}}}"


def bind_dim(name: str) -> str:
    """How to give the symbolic dimension @name a size."""
    return f"--shape {name}=N" if _CLI.get() else f"shapes={{'{name}': N}}"


def bind_constants(values: dict[str, str]) -> str:
    """How to fix inputs to values (written as given, e.g. {'sr': '16000'})."""
    if _CLI.get():
        return " ".join(f"--const {name}={value}" for name, value in values.items())
    return "constants={" + ", ".join(f"'{name}': {value}" for name, value in values.items()) + "}"


def given(shape: Sequence[int] | int) -> str:
    """A shape (or size) the caller gave, as they wrote it."""
    if isinstance(shape, (tuple, list)):
        return "x".join(map(str, shape)) if _CLI.get() else str(tuple(shape))
    return str(shape) if _CLI.get() else repr(shape)


def option() -> str:
    """The name of the binding option: --shape or shapes."""
    return "--shape" if _CLI.get() else "shapes"
