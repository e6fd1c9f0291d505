"""Cerebro: an ahead-of-time model compiler for JAX/Flax, ONNX and TensorFlow models.

`compile` traces with JAX (imported on first use); `load` runs a .cbx with
numpy and the C runtime only, so deployed models never import JAX or TensorFlow.
"""

from pathlib import Path as _Path


def _source_checkout_root() -> _Path | None:
    """The checkout this file lives in, when it is one (pyproject.toml beside compiler/).

    setup.py maps compiler/, frontends/ and loaders/ into this package. An editable install maps them
    to the checkout it was made from, so a second checkout (a git worktree on PYTHONPATH) would run
    its own cerebro/ with the first one's compiler; searching this checkout's root first keeps the
    whole package from one tree. An installed wheel has no pyproject.toml beside it."""
    root = _Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "compiler" / "__init__.py").is_file():
        return root
    return None


if (_root := _source_checkout_root()) is not None:
    __path__.append(str(_root))  # noqa: F821 (a package's __path__)

from cerebro.api import CompiledFunction, Model, compile, compile_onnx, compile_saved_model, load  # noqa: E402

__all__ = ["CompiledFunction", "Model", "compile", "compile_onnx", "compile_saved_model", "load"]
__version__ = "0.1.0"
