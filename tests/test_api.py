"""cerebro.compile / export / load against jax.jit (float32: rtol 1e-5, atol 1e-6)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cerebro

RTOL, ATOL = 1e-5, 1e-6


class Mlp(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(4)(nn.relu(nn.Dense(16)(x)))


@pytest.fixture(scope="module")
def mlp():
    model = Mlp()
    x = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    params = model.init(jax.random.PRNGKey(0), x)
    return model, params, x


def test_compile_takes_pytrees_and_matches_jax(mlp):
    model, params, x = mlp

    def fn(params, x):
        return {"logits": model.apply(params, x), "mean": jnp.mean(x)}

    ours = cerebro.compile(fn)(params, x)
    ref = jax.jit(fn)(params, x)
    assert set(ours) == {"logits", "mean"}
    np.testing.assert_allclose(ours["logits"], ref["logits"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(ours["mean"], ref["mean"], rtol=RTOL, atol=ATOL)


def test_compile_caches_per_input_signature(mlp):
    model, params, x = mlp
    compiled = cerebro.compile(lambda x: model.apply(params, x))
    compiled(x)
    compiled(x + 1)
    assert len(compiled._cache) == 1
    wide = np.ones((5, 8), np.float32)
    np.testing.assert_allclose(compiled(wide), model.apply(params, wide), rtol=RTOL, atol=ATOL)
    assert len(compiled._cache) == 2


def test_python_scalars_and_float64_follow_jax_types():
    compiled = cerebro.compile(lambda x, s: x * s)
    out = compiled(np.arange(4, dtype=np.float64), 3.0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.arange(4) * 3.0)


def test_export_and_load_roundtrip(tmp_path, mlp):
    model, params, x = mlp
    path = cerebro.compile(lambda x: model.apply(params, x), name="mlp").export(tmp_path / "mlp.cbx", x)
    loaded = cerebro.load(path)
    (spec,) = loaded.signature.inputs
    assert tuple(spec.shape) == (2, 8) and spec.dtype.numpy == np.float32
    np.testing.assert_allclose(loaded(x), model.apply(params, x), rtol=RTOL, atol=ATOL)
    assert cerebro.load(path.read_bytes()).signature.outputs[0].shape == (2, 4)


def test_wrong_input_shape_and_dtype_are_clear_errors(tmp_path, mlp):
    model, params, x = mlp
    path = cerebro.compile(lambda x: model.apply(params, x)).export(tmp_path / "m.cbx", x)
    loaded = cerebro.load(path)
    with pytest.raises(ValueError, match=r"2, ?8|2x8|\[2,8\]"):
        loaded(np.ones((3, 8), np.float32))
    with pytest.raises((TypeError, ValueError), match="float32"):
        loaded(x.astype(np.float64))
    with pytest.raises((TypeError, ValueError), match="1"):
        loaded(x, x)


def test_foreign_target_is_refused_at_load(tmp_path):
    path = cerebro.compile(lambda x: x + 1).export(tmp_path / "arm.cbx", np.ones(3, np.float32), target="aarch64")
    with pytest.raises(ValueError, match="aarch64"):
        cerebro.load(path)


def test_running_a_model_never_imports_jax_or_tensorflow(tmp_path, mlp):
    model, params, x = mlp
    path = cerebro.compile(lambda x: model.apply(params, x)).export(tmp_path / "m.cbx", x)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "ref.npy", np.asarray(model.apply(params, x)))
    script = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("jax", "jaxlib", "flax", "tensorflow"):
                    raise ImportError("blocked for this test: " + name)
        sys.meta_path.insert(0, Block())
        import numpy as np, cerebro
        y = cerebro.load({str(path)!r})(np.load({str(tmp_path / 'x.npy')!r}))
        np.testing.assert_allclose(y, np.load({str(tmp_path / 'ref.npy')!r}), rtol={RTOL}, atol={ATOL})
        assert not any(m.split(".")[0] in ("jax", "tensorflow") for m in sys.modules)
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_compile_onnx_matches_onnxruntime(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(2).standard_normal((8, 4)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Softmax", ["h"], ["y"], axis=-1)],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = np.random.default_rng(3).standard_normal((3, 8)).astype(np.float32)
    cerebro.compile_onnx(model, shapes={"x": (3, 8)}, output=tmp_path / "tiny.cbx")
    ours = cerebro.load(tmp_path / "tiny.cbx")(x)
    (ref,) = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=ATOL)
    assert onnx.checker.check_model(model) is None
