"""A built .cbx as the pieces of its file (compiler/cbx/writer.Sealed): the compiler's weights go to the file, or
into the runtime's memory, as they are, never joined into one more copy of hundreds of MB (gpt2's 495 MB join
cost 0.35-1.9 s of a 5 s compile on one core), and the file is the same bytes as the joined one."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx_models import mlp

from cerebro import _runtime, runtime
from cerebro.cli import main
from cerebro.compiler.cbx import read_cbx
from cerebro.compiler.cbx.writer import Sealed
from cerebro.compiler.driver import build, build_sealed
from cerebro.frontends.onnx import import_onnx

RNG = np.random.default_rng(20)
LAYERS = [(RNG.standard_normal((256, 512), dtype=np.float32) * 0.05, RNG.standard_normal(512, dtype=np.float32)),
          (RNG.standard_normal((512, 10), dtype=np.float32) * 0.05, RNG.standard_normal(10, dtype=np.float32))]
X = RNG.standard_normal((1, 256), dtype=np.float32)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sealed") / "mlp.onnx"
    onnx.save(mlp(LAYERS), path)
    return path


def ort_reference(path) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": X})[0]


def test_pieces_are_the_file_and_the_weights_are_not_copied_into_one(model_file, tmp_path):
    sealed = build_sealed(import_onnx(str(model_file)))
    weights = [piece for piece in sealed.pieces if memoryview(piece).nbytes >= LAYERS[0][0].nbytes]
    assert weights and all(isinstance(piece, memoryview) for piece in weights)  # the plan's own arrays
    assert len(sealed.pieces) > 2 and sealed.nbytes == sum(memoryview(p).nbytes for p in sealed.pieces)
    path = tmp_path / "m.cbx"
    with path.open("wb") as file:
        sealed.write_to(file)
    data = path.read_bytes()
    assert data == bytes(sealed) == build(import_onnx(str(model_file)))  # and the build is deterministic
    read_cbx(data)  # the hash covers every piece
    (got,) = runtime.load(path)(X)
    np.testing.assert_allclose(got, ort_reference(model_file), rtol=1e-5, atol=1e-5)


def test_cli_compile_writes_pieces_without_joining_them(model_file, tmp_path, monkeypatch, capsys):
    """`cerebroc compile` writes the compiler's pieces to the compile cache and the output (a miss), or the
    cache entry's bytes (a hit); neither run joins a .cbx into one bytes."""
    def refuse(self):
        raise AssertionError("the .cbx was joined into one bytes")

    monkeypatch.setattr(Sealed, "__bytes__", refuse)
    monkeypatch.setenv("CEREBRO_COMPILE_CACHE", "1")
    monkeypatch.setenv("CEREBRO_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("miss.cbx", "hit.cbx"):
        assert main(["compile", str(model_file), "-o", str(tmp_path / name), "--quiet"]) == 0
    (entry,) = (tmp_path / "cache").glob("*.cbx")
    assert (tmp_path / "miss.cbx").read_bytes() == (tmp_path / "hit.cbx").read_bytes() == entry.read_bytes()
    (got,) = runtime.load(tmp_path / "hit.cbx")(X)
    np.testing.assert_allclose(got, ort_reference(model_file), rtol=1e-5, atol=1e-5)


def test_dropping_a_big_builds_pieces_frees_its_weights_at_once():
    """A build's graphs are reference cycles that hold the packed weights; past COLLECTED_BUILD_BYTES the
    build collects them, so the weights (72 MB here) go the moment the caller drops the pieces, as a
    worker's load then reuses their pages, not at some later collection."""
    import tracemalloc

    from cerebro.compiler import driver
    from cerebro.compiler.ir import DType, Graph

    graph = Graph("big")
    weights = RNG.standard_normal((4096, 4352), dtype=np.float32)
    assert weights.nbytes > driver.COLLECTED_BUILD_BYTES
    graph.set_outputs([graph.add1("matmul", graph.add_input((64, 4096), DType.f32, "x"), graph.const(weights))])
    tracemalloc.start()
    try:
        sealed = build_sealed(graph)
        held = tracemalloc.get_traced_memory()[0]
        del sealed
        assert held - tracemalloc.get_traced_memory()[0] >= weights.nbytes  # the packed copy, freed now
    finally:
        tracemalloc.stop()


def test_load_joins_the_pieces_once_into_the_models_memory(model_file, monkeypatch):
    """runtime.load takes a build's pieces: joined by the C runtime into the private memory a read file
    gets (_runtime.join_file), whose weights' pages the model then takes; no bytes of the whole file."""
    sealed = build_sealed(import_onnx(str(model_file)))
    joined = _runtime.join_file(sealed.pieces)
    assert bytes(memoryview(joined)) == b"".join(sealed.pieces)
    monkeypatch.setattr(Sealed, "__bytes__", lambda self: pytest.fail("the .cbx was joined into one bytes"))
    (got,) = runtime.load(sealed)(X)
    np.testing.assert_allclose(got, ort_reference(model_file), rtol=1e-5, atol=1e-5)
    with pytest.raises(TypeError):
        _runtime.join_file([b"ok", 3])
    with pytest.raises(TypeError):
        _runtime.join_file(7)
    assert bytes(memoryview(_runtime.join_file([]))) == b""


def test_cerebro_compile_loads_without_joining(monkeypatch):
    """cerebro.compile's in-memory path (trace, build, load) hands the pieces to the runtime."""
    import jax
    import jax.numpy as jnp

    import cerebro

    weights = RNG.standard_normal((256, 10), dtype=np.float32)

    def fn(x):
        return jnp.tanh(x @ weights)

    monkeypatch.setattr(Sealed, "__bytes__", lambda self: pytest.fail("the .cbx was joined into one bytes"))
    np.testing.assert_allclose(cerebro.compile(fn, cache=False)(X), jax.jit(fn)(X), rtol=1e-5, atol=1e-5)
