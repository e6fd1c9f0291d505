"""SavedModel signatures (tf.Module exports and Keras 3 `model.export()` directories) to IR.

TensorFlow is only needed here, at compile time: the signature is converted to
ONNX with tf2onnx in this process and imported by the ONNX frontend; the
compiled .cbx runs without TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cerebro.compiler.ir import Graph
from cerebro.frontends import binding
from cerebro.frontends.onnx import import_onnx
from cerebro.frontends.onnx.table import OnnxImportError

OPSET = 17

# TensorFlow's C++ start-up lines (absl's pre-InitializeLog warning, CPU instructions, GPU probing,
# grappler sessions) are noise in a compile's output; level 2 keeps errors. Set before TensorFlow is
# first imported (this module is imported before any `import tensorflow` of the frontend); a user who
# wants the lines sets TF_CPP_MIN_LOG_LEVEL=0. On CPUs where TensorFlow turns oneDNN on (AVX-512 hosts) it
# says so before absl's logging starts, whatever the level, unless TF_ENABLE_ONEDNN_OPTS is set: a compile
# only traces and converts the graph, so oneDNN's kernels (and their round-off) are off unless asked for.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

class SavedModelError(OnnxImportError):
    """A SavedModel Cerebro cannot read: missing directory or signature, unbound dims."""

def _signature(path: str | os.PathLike, signature: str | None):
    import tensorflow as tf

    if not Path(path, "saved_model.pb").is_file():
        raise SavedModelError(f"{os.fspath(path)!r} is not a SavedModel directory (no saved_model.pb)")
    try:
        loaded = tf.saved_model.load(os.fspath(path))
    except Exception as e:  # noqa: BLE001 (TensorFlow raises protobuf, OS and its own errors alike)
        raise SavedModelError(f"SavedModel {os.fspath(path)!r}: loading it with TensorFlow failed: "
                              f"{_one_line(e)}") from e
    signatures = dict(loaded.signatures)
    if not signatures:
        raise SavedModelError(f"SavedModel {os.fspath(path)!r} has no signatures")
    name = signature or ("serving_default" if "serving_default" in signatures else sorted(signatures)[0])
    if name not in signatures:
        raise SavedModelError(f"SavedModel {os.fspath(path)!r} has no signature {name!r}; "
                              f"it has {sorted(signatures)}")
    return loaded, name, signatures[name]

def _bound_specs(fn, shapes: dict | None) -> list:
    """The signature's inputs with every unknown dim bound from shapes (by input name)."""
    import tensorflow as tf

    shapes = dict(shapes or {})
    _, kwargs = fn.structured_input_signature
    specs = []
    for key in sorted(kwargs):
        spec = kwargs[key]
        dims = spec.shape.as_list()
        if key in shapes:
            given = tuple(int(d) for d in shapes.pop(key))
            if len(given) != len(dims) or any(d is not None and d != g for d, g in zip(dims, given)):
                raise SavedModelError(f"input '{key}' has shape {dims}, which {binding.option()} "
                                      f"{binding.given(given)} does not fit")
            dims = list(given)
        unknown = [i for i, d in enumerate(dims) if d is None]
        if unknown:
            raise SavedModelError(f"input '{key}' has unknown dimension(s) at axis {unknown} (shape {dims}); "
                                  f"bind them with {binding.bind_input(key, dims)}")
        specs.append(tf.TensorSpec(dims, spec.dtype, name=key))
    if shapes:
        raise SavedModelError(f"{binding.option()} given for unknown inputs {sorted(shapes)}; "
                              f"the inputs are {sorted(kwargs)}")
    return specs

def saved_model_to_onnx(path: str | os.PathLike, signature: str | None = None, shapes: dict | None = None):
    """(onnx.ModelProto, output names): one SavedModel signature converted by tf2onnx."""
    import tensorflow as tf
    import tf2onnx

    loaded, name, fn = _signature(path, signature)
    specs = _bound_specs(fn, shapes)
    names = [s.name for s in specs]
    output_keys = sorted(fn.structured_outputs)

    @tf.function(input_signature=specs)
    def call(*args):
        results = fn(**dict(zip(names, args)))
        return [results[k] for k in output_keys]

    where = f"SavedModel {os.fspath(path)!r}, signature {name!r}"
    try:
        with _inlining_xla_functions():
            try:
                model, _ = tf2onnx.convert.from_function(call, input_signature=specs, opset=OPSET,
                                                         custom_op_handlers=HANDLERS)
            except ValueError:
                # tf2onnx's transpose optimizer fails on a Conv followed by a scalar Add (EfficientNet);
                # the conversion is still correct without that optimisation.
                with _without_optimizer("optimize_transpose"):
                    model, _ = tf2onnx.convert.from_function(call, input_signature=specs, opset=OPSET,
                                                             custom_op_handlers=HANDLERS)
    except Exception as e:  # noqa: BLE001 (tf2onnx and TensorFlow raise anything; the user gets one line)
        raise SavedModelError(f"{where}: converting to ONNX (tf2onnx) failed: {_one_line(e)}") from e
    _freeze_captures(model, call.get_concrete_function())
    del loaded
    return model, output_keys


def _freeze_captures(model, concrete) -> None:
    """Tensors the function captured by value (not variables) can reach the ONNX graph as
    extra inputs; they are constants of the model, so make them initializers."""
    from onnx import numpy_helper

    values = {}
    for external, internal in concrete.graph.captures:
        if external.dtype.name != "resource" and hasattr(external, "numpy"):
            values[internal.name] = external.numpy()
    for info in list(model.graph.input):
        if info.name in values:
            model.graph.initializer.append(numpy_helper.from_array(values[info.name], info.name))
            model.graph.input.remove(info)


def _erfc(graph, node, name: str, args: list) -> None:
    """Erfc (Keras' exact GELU, as in ConvNeXt), which tf2onnx does not convert, as 1 - Erf(x)."""
    import numpy as np
    from tf2onnx import utils

    dtype = utils.map_onnx_to_numpy_type(graph.get_dtype(node.input[0]))
    erf = graph.make_node("Erf", [node.input[0]])
    one = graph.make_const(utils.make_name(f"{name}_one"), np.array(1, dtype))
    node.type = "Sub"
    graph.replace_inputs(node, [one.output[0], erf.output[0]])


HANDLERS = {"Erfc": (_erfc, [])}  # tf2onnx custom op handlers for TensorFlow ops it leaves unconverted


def _one_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}" + (" ..." if len(lines) > 1 else "")


XLA_MARKS = ("_XlaMustCompile", "_noinline")


def _drop_xla_marks(graph_def) -> bool:
    """Unmark functions that must be XLA-compiled (Keras builds Conv2D(groups > 1) on CPU as one):
    grappler never inlines them, so tf2onnx would leave StatefulPartitionedCall nodes it cannot
    convert. Returns whether any mark was dropped."""
    functions = graph_def.library.function
    attr_maps = ([n.attr for n in graph_def.node] + [f.attr for f in functions]
                 + [n.attr for f in functions for n in f.node_def])
    dropped = False
    for attrs in attr_maps:
        for mark in XLA_MARKS:
            if mark in attrs:
                del attrs[mark]
                dropped = True
    return dropped


@contextlib.contextmanager
def _inlining_xla_functions():
    """tf2onnx's freezing step, followed by inlining the functions XLA marks kept apart."""
    import tensorflow as tf
    from tf2onnx import tf_loader

    freeze = tf_loader.from_function

    def freeze_and_inline(func, input_names, output_names, large_model=False):
        graph_def = freeze(func, input_names, output_names, large_model=large_model)
        if _drop_xla_marks(graph_def):
            with tf.Graph().as_default() as graph, tf_loader.tf_session(graph=graph):
                tf.import_graph_def(graph_def, name="")  # grappler runs on a graph, not eagerly
                graph_def = tf_loader.tf_optimize(input_names, output_names, graph_def)
        return graph_def

    tf_loader.from_function = freeze_and_inline
    try:
        yield
    finally:
        tf_loader.from_function = freeze


@contextlib.contextmanager
def _without_optimizer(name: str):
    from tf2onnx import optimizer

    saved = optimizer._optimizers.copy()
    optimizer._optimizers.pop(name, None)
    try:
        yield
    finally:
        optimizer._optimizers.clear()
        optimizer._optimizers.update(saved)

def import_saved_model(path: str | os.PathLike, signature: str | None = None, shapes: dict | None = None) -> Graph:
    """Import one signature of a SavedModel (default: serving_default) as an IR graph.

    shapes binds unknown dims by input name, e.g. {"inputs": (1, 224, 224, 3)}.
    """
    model, output_keys = saved_model_to_onnx(path, signature, shapes)
    try:
        graph = import_onnx(model)
    except OnnxImportError as e:
        raise SavedModelError(f"SavedModel {os.fspath(path)!r}, importing its ONNX form: {e}") from e
    graph.output_names = list(output_keys)
    graph.name = Path(path).name or "saved_model"
    return graph

