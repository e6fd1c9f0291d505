"""The compared runtimes, one function each: build a workload, return a ready-to-time call.

Every backend gets the same inputs as numpy arrays and the weights as constants. Each
function raises Unavailable (with the reason) when it cannot run a workload; anything else
that goes wrong propagates and is reported as an error for that backend only.
"""

from __future__ import annotations

import gc
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.models import Workload

REPO = Path(__file__).resolve().parent.parent


class Unavailable(RuntimeError):
    """This backend cannot run this workload (yet); the message says why."""


@dataclass
class Prepared:
    """A compiled workload: `call()` is what gets timed, `output()` is checked against the reference."""

    compile_s: float
    call: Callable[[], Any]
    output: Callable[[], np.ndarray]
    info: dict = field(default_factory=dict)
    close: Callable[[], None] = lambda: None


def _timed(build: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = build()
    return result, time.perf_counter() - start


def xla(w: Workload, threads: int | None, workdir: Path) -> Prepared:
    """jax.jit with inputs already on the device; a call waits for the result (block_until_ready)."""
    import jax

    if w.fn is None:
        raise Unavailable(f"{w.name} exists only as ONNX; there is no JAX version to jit")
    args = [jax.device_put(a) for a in w.inputs]
    compiled, seconds = _timed(lambda: jax.jit(w.fn).lower(*args).compile())

    def call():
        return jax.block_until_ready(compiled(*args))

    return Prepared(seconds, call, lambda: np.asarray(call()), {"jax": jax.__version__})


def ort(w: Workload, threads: int | None, workdir: Path) -> Prepared:
    """ONNX Runtime CPU session with all graph optimisations; threads=1 pins both pools to one thread."""
    import onnxruntime

    from benchmarks import to_onnx

    export_s = 0.0
    model = w.onnx
    if model is None:
        proto, export_s = _timed(lambda: to_onnx.export(w.fn, w.inputs, w.name))
        model = proto.SerializeToString()
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads == 1:
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
    session, seconds = _timed(lambda: onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"]))
    feeds = {meta.name: a for meta, a in zip(session.get_inputs(), w.inputs)}
    outputs = [session.get_outputs()[0].name]

    def call():
        return session.run(outputs, feeds)

    def close():
        nonlocal session
        session = None  # its thread pool must not spin while the next backend is timed
        gc.collect()

    info = {"onnxruntime": onnxruntime.__version__, "export_s": export_s}
    return Prepared(seconds, call, lambda: call()[0], info, close)


def _cerebro_loaded(w: Workload, threads: int | None, workdir: Path) -> tuple[Any, float, Path, list[np.ndarray]]:
    """cerebro.compile(...).export() to a .cbx, loaded with `threads` threads per call (default: one per usable
    CPU, as XLA and ORT do); its compile seconds, its path, and the inputs in 64-byte aligned buffers."""
    try:
        import cerebro as cb
        from cerebro import runtime
    except Exception as error:  # the package is importable only once its runtime module exists
        raise Unavailable(f"cannot import cerebro: {type(error).__name__}: {error}") from error

    path = workdir / f"{w.name}.cbx"

    def build():
        if w.onnx is not None:
            path.write_bytes(_cerebro_from_onnx(w.onnx))
        else:
            cb.compile(w.fn, name=w.name, cache=False).export(path, *w.inputs)  # a cold compile: no cache
        return runtime.load(path, threads=threads or runtime.usable_cpus())

    loaded, seconds = _timed(build)
    inputs = [runtime.aligned_empty(a.shape, a.dtype) for a in w.inputs]  # like XLA's device_put: the
    for buffer, a in zip(inputs, w.inputs):  # input already where the runtime takes it without a copy
        buffer[...] = a
    return loaded, seconds, path, inputs


def cerebro(w: Workload, threads: int | None, workdir: Path) -> Prepared:
    """The .cbx loaded by the user-space runtime, called directly (LoadedModel) on inputs already in
    64-byte aligned buffers (unaligned ones would be copied on every call)."""
    loaded, seconds, path, inputs = _cerebro_loaded(w, threads, workdir)

    def call():
        return loaded(*inputs)

    return Prepared(seconds, call, lambda: call()[0], {"cbx_bytes": path.stat().st_size, "threads": loaded.threads})


def cerebro_out(w: Workload, threads: int | None, workdir: Path) -> Prepared:
    """The same call with out= buffers made once: no allocation per call."""
    from cerebro import runtime

    loaded, seconds, path, inputs = _cerebro_loaded(w, threads, workdir)
    outs = tuple(runtime.aligned_empty(spec.shape, spec.dtype.numpy) for spec in loaded.signature.outputs)

    def call():
        return loaded(*inputs, out=outs)

    return Prepared(seconds, call, lambda: call()[0], {"cbx_bytes": path.stat().st_size, "threads": loaded.threads})


def cerebro_compile(w: Workload, threads: int | None, workdir: Path) -> Prepared:
    """The function cerebro.compile returns, called as jax.jit's is (compiled on the first call)."""
    import cerebro as cb
    from cerebro import runtime

    if w.fn is None:
        raise Unavailable(f"{w.name} exists only as ONNX; there is no JAX function to compile")
    inputs = [runtime.aligned_empty(a.shape, a.dtype) for a in w.inputs]
    for buffer, a in zip(inputs, w.inputs):
        buffer[...] = a
    compiled = cb.compile(w.fn, name=w.name, cache=False)
    _, seconds = _timed(lambda: compiled(*inputs))

    def call():
        return compiled(*inputs)

    return Prepared(seconds, call, call, {})


def _cerebro_from_onnx(model: bytes) -> bytes:
    """HOOK (MiniLM): ONNX models go through cerebro.frontends.onnx and the compiler.

    Until that path can take a model, this raises Unavailable (the row says 'skipped' with
    the reason and where it failed) instead of failing the whole configuration.
    """
    try:
        from cerebro.compiler.driver import build
        from cerebro.frontends.onnx.importer import import_onnx

        return build(import_onnx(model), target="host")
    except Exception as error:
        raise Unavailable(f"Cerebro cannot compile this ONNX model yet: {describe_error(error)}") from error


def describe_error(error: BaseException) -> str:
    """'Type: first line of message (at file:line in function)', the place being the deepest project frame."""
    message = str(error).splitlines()[0] if str(error) else ""
    where = ""
    for frame in traceback.extract_tb(error.__traceback__):
        path = Path(frame.filename)
        if REPO in path.parents and ".venv" not in path.parts:
            where = f" (at {path.relative_to(REPO)}:{frame.lineno} in {frame.name})"
    return f"{type(error).__name__}: {message[:240]}{where}"


def numpy_blas(w: Workload, threads: int | None, workdir: Path) -> Prepared:
    """The workload's function run by numpy itself (for x @ w: OpenBLAS sgemm)."""
    if w.fn is None:
        raise Unavailable(f"{w.name} has no numpy form")
    info = {"blas": _numpy_blas()}

    def call():
        return w.fn(*w.inputs)

    return Prepared(0.0, call, call, info)


def _numpy_blas() -> dict | str:
    """Which BLAS numpy itself loaded, and which kernel (architecture) OpenBLAS picked."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed: OpenBLAS kernel unknown"
    numpy_dir = Path(np.__file__).resolve().parent.parent
    for lib in threadpool_info():
        if lib.get("user_api") == "blas" and Path(lib["filepath"]).resolve().is_relative_to(numpy_dir / "numpy.libs"):
            return {k: lib.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
    return "threadpoolctl found no BLAS loaded by numpy"


BACKENDS: dict[str, Callable[[Workload, int | None, Path], Prepared]] = {
    "cerebro": cerebro,
    "xla": xla,
    "ort": ort,
    "numpy": numpy_blas,
    "cerebro-out": cerebro_out,
    "cerebro-compile": cerebro_compile,
}
