"""The public API: cerebro.compile (jit-like, per input signature) and cerebro.load.

The compiling layer: frontends (cerebro.frontends.*) only build IR graphs; every compile of one,
for JAX, ONNX, SavedModel or the ONNX backend (cerebro/onnx_backend.py), happens here.
"""

from __future__ import annotations

import functools
import operator
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cerebro import runtime

if TYPE_CHECKING:
    from cerebro.compiler.cbx.writer import Sealed


class Model:
    """A loaded .cbx, called like the function it was exported from.

    A file that keeps its calling convention (.cerebro.tree, written by CompiledFunction.export)
    takes the same positional and keyword pytrees (static arguments may be left out) and returns
    the same tree of numpy arrays; one array per input in signature order is accepted too.
    Other files take arrays in signature order and return one array or a tuple.
    `flat(*arrays)` is the flat form for any file."""

    def __init__(self, loaded: runtime.LoadedModel) -> None:
        self._loaded = loaded
        self.signature = loaded.signature
        self.threads = loaded.threads
        self.tree = loaded.tree

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.tree is None:
            if kwargs:
                names = ", ".join(t.name for t in self.signature.inputs)
                raise TypeError(f"this .cbx keeps no calling convention: pass its inputs ({names}) positionally")
            outputs = self._loaded(*args)
            return outputs[0] if len(outputs) == 1 else tuple(outputs)
        leaves = self._leaves(args, kwargs)
        return self.tree.unflatten(self._loaded(*map(_weak, leaves, self.signature.inputs)))

    def profile(self, *args: Any, repeats: int = 100, **kwargs: Any) -> Any:
        """Time every node on these inputs (taken as a call takes them): a cerebro.profiling.Profile,
        printed as a table slowest first, with .write_trace(path) for Perfetto. Needs a file built for
        profiling (build(graph, profile=True) or `cerebroc profile SOURCE --save FILE.cbx`)."""
        from cerebro.profiling import measure

        if self.tree is None and kwargs:
            raise TypeError("this .cbx keeps no calling convention: pass its inputs positionally")
        arrays = args if self.tree is None else tuple(map(_weak, self._leaves(args, kwargs), self.signature.inputs))
        return measure(self._loaded, arrays, repeats)

    def flat(self, *arrays: Any) -> tuple[np.ndarray, ...]:
        """Run on one array per input in signature order; the outputs in signature order."""
        return tuple(self._loaded(*arrays))

    def _leaves(self, args: tuple, kwargs: dict) -> list[Any]:
        """The call's leaves by the tree, or args themselves when they are one array per input."""
        from cerebro.compiler.cbx.tree import TreeMismatch

        try:
            return self.tree.flatten(args, kwargs)
        except TreeMismatch:
            if kwargs or len(args) != len(self.signature.inputs) or any(_is_container(a) for a in args):
                raise
            return list(args)

    def __repr__(self) -> str:
        return f"<cerebro.Model {self.signature}>"


def load(path: str | os.PathLike | bytes, threads: int = 1) -> Model:
    """Load a .cbx file (or its bytes) into the user-space runtime; threads > 1 splits each call."""
    return Model(runtime.load(path, threads))


class CompiledFunction:
    """What cerebro.compile returns: compiles on the first call for each input signature."""

    def __init__(self, fn: Callable, target: str, name: str | None, cache: bool | None = None,
                 static_argnums: int | Sequence[int] | None = None,
                 static_argnames: str | Sequence[str] | None = None, quantize: str | None = None,
                 calibration: Any = None, calibration_method: str | None = None) -> None:
        from cerebro.frontends.jax.calls import StaticArgs

        self.fn = fn
        self.static = StaticArgs.of(fn, static_argnums, static_argnames)
        self.target = target
        self.quantize = quantize
        self.calibration = calibration
        self.calibration_method = calibration_method
        self.name = name or getattr(fn, "__name__", "model")
        self.cache = cache  # the persistent compile cache: None follows $CEREBRO_COMPILE_CACHE, False skips it
        self._cache: dict[tuple, tuple[runtime.LoadedModel, Any]] = {}
        self._lock = threading.Lock()
        # (loaded, unflatten) of the last call made of arrays alone: a call whose arguments fit it exactly
        # (dtype, shape, C order, aligned; checked in C by LoadedModel.fast) skips tracing and the cache key.
        self._last: tuple[runtime.LoadedModel, Callable] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        last = self._last
        if last is not None and not kwargs:
            outputs = last[0].fast(*args)
            if outputs is not None:
                return last[1](outputs)
        return self._call(args, kwargs)

    def _call(self, args: tuple, kwargs: dict) -> Any:
        import jax

        call = self.static.split(args, kwargs)
        leaves, treedef = jax.tree_util.tree_flatten((call.args, call.kwargs))
        arrays = [_canonical(leaf) for leaf in leaves]
        key = (call.key, treedef, tuple((a.shape, a.dtype.str) for a in arrays))
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                captured = self._capture(args, kwargs)
                entry = (runtime.load(self._build(captured, self.target)), captured.out_tree)
                self._cache[key] = entry
        loaded, out_tree = entry
        if not kwargs and not self.static.argnums and len(leaves) == len(args) and all(map(_same, leaves, args)):
            self._last = (loaded, _unflattener(out_tree))
        return jax.tree_util.tree_unflatten(out_tree, loaded(*arrays))

    def lower(self, *args: Any, **kwargs: Any) -> Any:
        """The traced IR graph for these example arguments (for inspection)."""
        from cerebro.frontends.jax.tracer import lower

        return lower(self._capture(args, kwargs)).graph

    def export(self, path: str | os.PathLike, *example_args: Any, target: str | None = None,
               **example_kwargs: Any) -> Path:
        """Compile for the example arguments' shapes (and static values) and write a .cbx file that
        keeps the function's calling convention (cerebro.load takes and returns the same pytrees)."""
        from cerebro.compiler.cbx.tree import attach_tree

        captured = self._capture(example_args, example_kwargs)
        data = attach_tree(bytes(self._build(captured, target or self.target)), captured.call_tree)
        path = Path(path)
        path.write_bytes(data)
        return path

    def _capture(self, args: tuple, kwargs: dict) -> Any:
        from cerebro.frontends.jax.tracer import capture

        captured = capture(self.fn, *args, kwargs=kwargs, static=self.static)
        captured.name = self.name
        return captured

    def _build(self, captured: Any, target: str) -> Sealed:
        """The .cbx for a captured jaxpr; the compile cache is keyed by the jaxpr, so a hit never lowers it."""
        from cerebro.cache import cached_lower
        from cerebro.calibration import quantized_lowering
        from cerebro.frontends.jax.tracer import lower

        source, lowered, quantize = quantized_lowering(lambda: "jaxpr:" + captured.fingerprint(),
                                                       lambda: lower(captured).graph, self.quantize, self.calibration,
                                                       self.calibration_method)
        return cached_lower(source, lowered, target, cache=self.cache, quantize=quantize)


def compile(fn: Callable, target: str = "host", *, name: str | None = None,  # noqa: A001
            cache: bool | None = None, static_argnums: int | Sequence[int] | None = None,
            static_argnames: str | Sequence[str] | None = None, quantize: str | None = None,
            calibration: Any = None, calibration_method: str | None = None) -> CompiledFunction:
    """Compile a JAX/Flax function ahead of time, like jax.jit but to native .cbx code.

    cache=False skips the persistent compile cache (cerebro/cache.py); None follows $CEREBRO_COMPILE_CACHE.
    static_argnums/static_argnames as jax.jit's: hashable values compiled in, one function per value
    (given one of them, the other follows from fn's signature).
    quantize="int8-weights": constant dense weights stored int8 with a scale per output column,
    activations f32 (docs/architecture.md, Quantization); quantize="int8": static int8, matmuls as integer
    products with activation scales calibrated on `calibration` (a list of sample arguments: an array, or
    a tuple of one array per input, each; or a .npz file), each activation's range chosen by
    calibration_method (compiler/quantize.py's CALIBRATION_METHODS; default minmax).
    """
    from cerebro.compiler.quantize import check_quantize

    check_quantize(quantize, calibration, calibration_method)
    return CompiledFunction(fn, target, name, cache, static_argnums, static_argnames, quantize, calibration,
                            calibration_method)


_WEAK_KINDS = {bool: "b", int: "iuf", float: "f"}  # dtype kinds a Python scalar may take, as under jax.jit


def _weak(leaf: Any, spec: runtime.TensorSpec) -> Any:
    """A Python scalar leaf in its input's dtype, as jax.jit takes it (weakly typed); anything else as is."""
    if type(leaf) in _WEAK_KINDS and spec.shape == () and spec.dtype.numpy.kind in _WEAK_KINDS[type(leaf)]:
        return np.asarray(leaf, spec.dtype.numpy)
    return leaf


def _same(leaf: Any, arg: Any) -> bool:
    return leaf is arg


def _unflattener(out_tree: Any) -> Callable[[list], Any]:
    """The outputs list to the function's result: the one array itself when the result is a bare array."""
    import jax

    if jax.tree_util.treedef_is_leaf(out_tree):
        return operator.itemgetter(0)
    return functools.partial(jax.tree_util.tree_unflatten, out_tree)


def _is_container(value: Any) -> bool:
    return value is None or isinstance(value, (Mapping, list, tuple))


def _canonical(leaf: Any) -> np.ndarray:
    """JAX's view of an argument's type: float64/int64 become float32/int32 unless x64 is on; a typed
    PRNG key array is its key data."""
    import jax

    from cerebro.frontends.jax.rules_random import key_data

    array = np.asarray(key_data(leaf))
    return np.asarray(array, dtype=jax.dtypes.canonicalize_dtype(array.dtype), order="C")


def compile_saved_model(path: str | os.PathLike, signature: str | None = None, *, shapes: dict | None = None,
                        target: str = "host", output: str | os.PathLike | None = None) -> bytes:
    """Compile a TensorFlow SavedModel signature (tf.Module or Keras export) to .cbx bytes.

    Writes them to `output` when given; run them with cerebro.load(...), which needs no TensorFlow.
    """
    from cerebro.frontends.tensorflow import import_saved_model

    return _build_graph(import_saved_model(path, signature, shapes), target, output)


def compile_onnx(model: Any, *, shapes: dict | None = None, constants: dict | None = None, target: str = "host",
                 output: str | os.PathLike | None = None, cache: bool | None = None,
                 quantize: str | None = None, calibration: Any = None, calibration_method: str | None = None
                 ) -> bytes:
    """Compile an ONNX model (path or ModelProto) to .cbx bytes; `shapes` binds symbolic input dims,
    `constants` fixes inputs to values ({'sr': 16000}; they stop being inputs of the .cbx); quantize and
    calibration as cerebro.compile's."""
    from cerebro.calibration import quantize_graph
    from cerebro.compiler.quantize import check_quantize
    from cerebro.frontends.onnx import import_onnx

    check_quantize(quantize, calibration, calibration_method)
    graph, quantize = quantize_graph(import_onnx(model, shapes=shapes, constants=constants), quantize, calibration,
                                     calibration_method)
    return _build_graph(graph, target, output, cache, quantize)


def compile_graph(graph: Any, target: str = "host", *, cache: bool | None = False) -> runtime.LoadedModel:
    """A frontend's IR graph compiled and loaded: a function from arrays in graph.inputs order to the
    list of outputs (the ONNX backend's unit; cache=False compiles afresh, as tests of a compile want)."""
    return runtime.load(_build_graph(graph, target, None, cache))


def _build_graph(graph: Any, target: str, output: str | os.PathLike | None, cache: bool | None = None,
                 quantize: str | None = None) -> bytes:
    """.cbx bytes for an IR graph (through the compile cache unless cache=False), also written to output."""
    from cerebro.cache import cached_build

    data = cached_build(graph, target, cache=cache, quantize=quantize)
    if output is not None:
        Path(output).write_bytes(data)
    return data
