"""SavedModels that real Keras exports produce (issue 13): Conv2D(groups > 1), which Keras builds
on CPU as an XLA-compiled inner function, and exact GELU's Erfc (both in ConvNeXt); errors that
stay one line naming model, node and step. Compared with TensorFlow: |ours - tf| <= 1e-5 * max|tf|."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")
keras = pytest.importorskip("keras")

from cerebro import compile_saved_model  # noqa: E402
from cerebro.api import load  # noqa: E402
from cerebro.frontends.tensorflow.saved_model import SavedModelError  # noqa: E402

RNG = np.random.default_rng(13)


def test_grouped_conv_matches_tensorflow(tmp_path) -> None:
    """tf2onnx used to leave the XLA function as a StatefulPartitionedCall node, whose binary
    config_proto attribute crashed the import with UnicodeDecodeError."""
    inputs = keras.Input((9, 9, 6))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, groups=2, padding="same", name="grouped")(inputs))
    model.export(str(tmp_path / "grouped"), verbose=False)
    x = RNG.normal(size=(2, 9, 9, 6)).astype(np.float32)
    loaded = tf.saved_model.load(str(tmp_path / "grouped"))
    (ref,) = loaded.signatures["serving_default"](keras_tensor=tf.constant(x)).values()
    ours = load(compile_saved_model(tmp_path / "grouped", shapes={"keras_tensor": (2, 9, 9, 6)}))(x)
    scale = float(np.max(np.abs(ref.numpy())))
    assert scale > 0 and float(np.max(np.abs(ours - ref.numpy()))) <= 1e-5 * scale


class ExactGelu(tf.Module):
    """Keras' exact GELU (ConvNeXt's) computes erfc, a TensorFlow op tf2onnx does not convert."""

    @tf.function(input_signature=[tf.TensorSpec([4, 16], tf.float32, name="x")])
    def __call__(self, x):
        return {"y": keras.activations.gelu(x, approximate=False), "tail": tf.math.erfc(x)}


def test_erfc_matches_tensorflow(tmp_path) -> None:
    """Before the Erfc handler, tf2onnx left the node and the import failed naming op type 'Erfc'."""
    module = ExactGelu()
    tf.saved_model.save(module, str(tmp_path / "gelu"), signatures={"serving_default": module.__call__})
    x = (RNG.normal(size=(4, 16)) * 3).astype(np.float32)
    ref = module(tf.constant(x))
    tail, y = load(compile_saved_model(tmp_path / "gelu"))(x)  # outputs sorted by name
    for ours, expected in ((y, ref["y"].numpy()), (tail, ref["tail"].numpy())):
        assert float(np.max(np.abs(ours - expected))) <= 1e-5 * float(np.max(np.abs(expected)))


class Unsupported(tf.Module):
    """Igamma has no ONNX conversion: tf2onnx keeps the TensorFlow node as it is."""

    @tf.function(input_signature=[tf.TensorSpec([2, 3], tf.float32, name="x")])
    def __call__(self, x):
        return {"y": tf.math.igamma(tf.abs(x) + 1.0, tf.abs(x))}


def test_unconvertible_op_is_one_line_naming_model_node_and_step(tmp_path) -> None:
    module = Unsupported()
    tf.saved_model.save(module, str(tmp_path / "igamma"), signatures={"serving_default": module.__call__})
    with pytest.raises(SavedModelError) as info:
        compile_saved_model(tmp_path / "igamma")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"SavedModel '{tmp_path / 'igamma'}', importing its ONNX form: node '")
    assert "(Igamma): op type 'Igamma'" in message


def test_unreadable_saved_model_is_one_line(tmp_path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"\x0a\xff\xff\xff\xff\x0fnot a protobuf")
    with pytest.raises(SavedModelError) as info:
        compile_saved_model(tmp_path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"SavedModel '{tmp_path}': loading it with TensorFlow failed: ")
