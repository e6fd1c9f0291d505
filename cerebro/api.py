"""The public API: cerebro.compile (jit-like, per input signature) and cerebro.load."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cerebro import runtime


class Model:
    """A loaded .cbx: call it with numpy arrays in signature order."""

    def __init__(self, loaded: runtime.LoadedModel) -> None:
        self._loaded = loaded
        self.signature = loaded.signature
        self.threads = loaded.threads

    def __call__(self, *arrays: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        outputs = self._loaded(*arrays)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def __repr__(self) -> str:
        return f"<cerebro.Model {self.signature}>"


def load(path: str | os.PathLike | bytes, threads: int = 1) -> Model:
    """Load a .cbx file (or its bytes) into the user-space runtime; threads > 1 splits each call."""
    return Model(runtime.load(path, threads))


class CompiledFunction:
    """What cerebro.compile returns: compiles on the first call for each input signature."""

    def __init__(self, fn: Callable, target: str, name: str | None, cache: bool | None = None) -> None:
        self.fn = fn
        self.target = target
        self.name = name or getattr(fn, "__name__", "model")
        self.cache = cache  # the persistent compile cache: None follows $CEREBRO_COMPILE_CACHE, False skips it
        self._cache: dict[tuple, tuple[runtime.LoadedModel, Any]] = {}
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> Any:
        import jax

        leaves, treedef = jax.tree_util.tree_flatten(args)
        arrays = [_canonical(leaf) for leaf in leaves]
        key = (treedef, tuple((a.shape, a.dtype.str) for a in arrays))
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                traced = self._trace(args)
                entry = (runtime.load(self._build(traced.graph, self.target)), traced.out_tree)
                self._cache[key] = entry
        loaded, out_tree = entry
        return jax.tree_util.tree_unflatten(out_tree, loaded(*arrays))

    def lower(self, *args: Any) -> Any:
        """The traced IR graph for these example arguments (for inspection)."""
        return self._trace(args).graph

    def export(self, path: str | os.PathLike, *example_args: Any, target: str | None = None) -> Path:
        """Compile for example_args' shapes and write a .cbx file; returns its path."""
        data = self._build(self._trace(example_args).graph, target or self.target)
        path = Path(path)
        path.write_bytes(data)
        return path

    def _trace(self, args: tuple) -> Any:
        from cerebro.frontends.jax import trace

        traced = trace(self.fn, *args)
        traced.graph.name = self.name
        return traced

    def _build(self, graph: Any, target: str) -> bytes:
        from cerebro.cache import cached_build

        return cached_build(graph, target, cache=self.cache)


def compile(fn: Callable, target: str = "host", *, name: str | None = None,  # noqa: A001
            cache: bool | None = None) -> CompiledFunction:
    """Compile a JAX/Flax function ahead of time, like jax.jit but to native .cbx code.

    cache=False skips the persistent compile cache (cerebro/cache.py); None follows $CEREBRO_COMPILE_CACHE.
    """
    return CompiledFunction(fn, target, name, cache)


def _canonical(leaf: Any) -> np.ndarray:
    """JAX's view of an argument's type: float64/int64 become float32/int32 unless x64 is on."""
    import jax

    array = np.asarray(leaf)
    return np.asarray(array, dtype=jax.dtypes.canonicalize_dtype(array.dtype), order="C")


def compile_saved_model(path: str | os.PathLike, signature: str | None = None, *, shapes: dict | None = None,
                        target: str = "host", output: str | os.PathLike | None = None) -> bytes:
    """Compile a TensorFlow SavedModel signature (tf.Module or Keras export) to .cbx bytes.

    Writes them to `output` when given; run them with cerebro.load(...), which needs no TensorFlow.
    """
    from cerebro.frontends.tensorflow import compile_saved_model as compile_tf

    return compile_tf(path, signature, shapes, target=target, output=output)


def compile_onnx(model: Any, *, shapes: dict | None = None, target: str = "host",
                 output: str | os.PathLike | None = None, cache: bool | None = None) -> bytes:
    """Compile an ONNX model (path or ModelProto) to .cbx bytes; `shapes` binds symbolic input dims."""
    from cerebro.cache import cached_build
    from cerebro.frontends.onnx import import_onnx

    data = cached_build(import_onnx(model, shapes=shapes), target, cache=cache)
    if output is not None:
        Path(output).write_bytes(data)
    return data
