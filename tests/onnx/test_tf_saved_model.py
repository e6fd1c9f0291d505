"""TensorFlow SavedModels (tf.Module and Keras 3 model.export()) through tf2onnx into
Cerebro, compiled, compared with TensorFlow; the .cbx then runs where TensorFlow is absent."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")
keras = pytest.importorskip("keras")

from cerebro import compile_saved_model  # noqa: E402
from cerebro.frontends.tensorflow import import_saved_model  # noqa: E402
from cerebro.frontends.tensorflow.saved_model import SavedModelError  # noqa: E402
from cerebro.runtime import load  # noqa: E402

RNG = np.random.default_rng(0)


class Net(tf.Module):
    """A small tf.Module: dense layer, softmax, a reduction; two named outputs."""

    def __init__(self) -> None:
        self.w = tf.Variable(RNG.normal(size=(8, 4)).astype(np.float32))
        self.b = tf.Variable(RNG.normal(size=(4,)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
    def __call__(self, x):
        h = tf.nn.relu(tf.matmul(x, self.w) + self.b)
        return {"probs": tf.nn.softmax(h, axis=-1), "total": tf.reduce_sum(x * x, axis=1)}


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tf_module") / "net"
    net = Net()
    tf.saved_model.save(net, str(path), signatures={"serving_default": net.__call__})
    return path


def _close(ours: np.ndarray, ref: np.ndarray, rel: float = 1e-3) -> None:
    """|ours - ref| <= rel * max|ref| everywhere (float32 through a deep network; random
    weights make the logits' scale arbitrary, so the bound is relative to it)."""
    assert ours.shape == ref.shape
    scale = float(np.max(np.abs(ref)))
    assert scale > 0
    assert float(np.max(np.abs(ours - ref))) <= rel * scale, (np.max(np.abs(ours - ref)), scale)


def test_tf_module_matches_tensorflow(module_dir) -> None:
    x = RNG.normal(size=(3, 8)).astype(np.float32)
    model = load(compile_saved_model(module_dir, shapes={"x": (3, 8)}))
    expected = tf.saved_model.load(str(module_dir)).signatures["serving_default"](x=tf.constant(x))
    assert [s.name for s in model.signature.outputs] == ["probs", "total"]
    probs, total = model(x)
    np.testing.assert_allclose(probs, expected["probs"].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(total, expected["total"].numpy(), rtol=1e-5, atol=1e-6)


def test_unbound_dims_and_bad_signature_are_clear_errors(module_dir, tmp_path) -> None:
    with pytest.raises(SavedModelError, match=r"input 'x' has unknown dimension\(s\) at axis \[0\]"):
        import_saved_model(module_dir)
    with pytest.raises(SavedModelError, match="no signature 'predict'.*serving_default"):
        import_saved_model(module_dir, signature="predict", shapes={"x": (1, 8)})
    with pytest.raises(SavedModelError, match="not a SavedModel directory"):
        import_saved_model(tmp_path)


def test_compiled_model_runs_without_tensorflow(module_dir, tmp_path) -> None:
    x = RNG.normal(size=(2, 8)).astype(np.float32)
    compile_saved_model(module_dir, shapes={"x": (2, 8)}, output=tmp_path / "net.cbx")
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(f"""
        import sys
        sys.modules["tensorflow"] = None  # any import of TensorFlow now fails
        sys.modules["tf2onnx"] = None
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            pass
        else:
            raise SystemExit("tensorflow is importable")
        import numpy as np
        from cerebro.runtime import load
        probs, total = load({str(tmp_path / 'net.cbx')!r})(np.load({str(tmp_path / 'x.npy')!r}))
        np.save({str(tmp_path / 'probs.npy')!r}, probs)
        assert "tensorflow" not in sys.modules or sys.modules["tensorflow"] is None
    """)
    subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ, "PYTHONPATH": ""})
    expected = tf.saved_model.load(str(module_dir)).signatures["serving_default"](x=tf.constant(x))["probs"]
    np.testing.assert_allclose(np.load(tmp_path / "probs.npy"), expected.numpy(), rtol=1e-5, atol=1e-6)


APPLICATIONS = {
    "MobileNetV2": lambda: keras.applications.MobileNetV2(input_shape=(96, 96, 3), weights=None,
                                                          classifier_activation=None),
    "MobileNetV3Small": lambda: keras.applications.MobileNetV3Small(input_shape=(96, 96, 3), weights=None,
                                                                    classifier_activation=None),
    "EfficientNetB0": lambda: keras.applications.EfficientNetB0(input_shape=(96, 96, 3), weights=None,
                                                                classifier_activation=None),
}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", sorted(APPLICATIONS))
def test_keras_application_matches_tensorflow(name, tmp_path) -> None:
    keras.utils.set_random_seed(0)
    net = APPLICATIONS[name]()
    path = tmp_path / name
    net.export(str(path), verbose=False)
    x = RNG.uniform(0, 255, size=(1, 96, 96, 3)).astype(np.float32)
    reference = np.asarray(net(x, training=False))
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    (input_name,) = serve.structured_input_signature[1]
    model = load(compile_saved_model(path, shapes={input_name: x.shape}))
    (ours,) = model(x)
    _close(ours, reference)
