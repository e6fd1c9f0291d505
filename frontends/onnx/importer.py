"""ONNX model -> IR graph: initializers become constants, shapes are bound, constants fold.

Every node is (1) folded when all its inputs are constants, by running its rule's IR
through the IR interpreter (onnx's reference evaluator for ops without a rule); this is
how Shape -> Gather -> Concat -> Reshape chains disappear: Shape of a static tensor is a
constant. Else (2) built by the rule registered
for its op type and opset, else (3) expanded into the function body its schema
defines (LayerNormalization, Attention, Gelu, ...), else rejected by name.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections import ChainMap
from collections.abc import MutableMapping
from pathlib import Path

import numpy as np
import onnx
from onnx import AttributeProto, helper, numpy_helper
from onnx.external_data_helper import load_external_data_for_model

from cerebro.compiler.ir import DType, Graph, IRError, Value, dtype_from_numpy
from cerebro.compiler.ir.builder import constant as make_const
from cerebro.frontends import binding
from cerebro.frontends.onnx import rules  # noqa: F401  (registers the rule table)
from cerebro.frontends.onnx.raw_weights import split_raw_weights
from cerebro.frontends.onnx.table import Ctx, OnnxImportError, lookup
from cerebro.frontends.onnx.types import DTYPE_TO_ELEM, elem_dtype

NONDETERMINISTIC = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
                    "Bernoulli"}
Env = MutableMapping[str, Value]
MALFORMED = (ValueError, TypeError, IndexError, KeyError, AttributeError)  # what a rule raises on a bad node


def attribute_value(attr: AttributeProto) -> object:
    """A plain Python value; tensors become numpy arrays, graphs stay GraphProto."""
    value = helper.get_attribute_value(attr)
    if attr.type == AttributeProto.TENSOR:
        return numpy_helper.to_array(value)
    if attr.type == AttributeProto.STRING:
        return _text(value)
    if attr.type == AttributeProto.STRINGS:
        return [_text(v) for v in value]
    if attr.type in (AttributeProto.INTS, AttributeProto.FLOATS):
        return list(value)
    return value


def _text(value: bytes) -> str | bytes:
    """A string attribute as text; binary ones (TensorFlow's serialized config_proto) stay bytes."""
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value


def load_model(model_or_path: object) -> onnx.ModelProto:
    """The whole model, every initializer in it (read_model without the views)."""
    return read_model(model_or_path, views=False)[0]


def read_model(model_or_path: object, views: bool = True) -> tuple[onnx.ModelProto, dict[int, np.ndarray]]:
    """(the model, its main-graph initializers' arrays by index where they are plain numeric raw data):
    a path or bytes is parsed once, with those arrays as read-only views of the bytes instead of two
    copies each (raw_weights.py; left out of the parsed model, so only import_onnx can use it: views=False
    keeps them in); a file's external data is loaded from beside it, as onnx.load does."""
    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path, {}
    base_dir = None
    if isinstance(model_or_path, (str, os.PathLike)):
        where, base_dir = repr(os.fspath(model_or_path)), os.path.dirname(os.path.abspath(model_or_path))
        if not os.path.isfile(model_or_path):
            raise OnnxImportError(f"no ONNX file at {where}")
        try:
            data = Path(model_or_path).read_bytes()
        except OSError as e:
            raise OnnxImportError(f"{where} is not a readable ONNX model: {e}") from e
    elif isinstance(model_or_path, bytes):
        where, data = "this byte string", model_or_path
    else:
        raise OnnxImportError(f"expected an onnx.ModelProto, bytes or a path, got {type(model_or_path).__name__}")
    stripped, raw_weights = split_raw_weights(data) if views else (data, {})
    try:
        model = onnx.load_from_string(stripped)
        if base_dir is not None:
            load_external_data_for_model(model, base_dir)
    except Exception as e:
        raise OnnxImportError(f"{where} is not a readable ONNX model: {e}") from e
    return model, raw_weights


def _opsets(imports: object) -> dict[str, int]:
    table = {(d.domain or ""): d.version for d in imports}
    if "ai.onnx" in table:
        table.setdefault("", table["ai.onnx"])
    return table


def _static(dim: onnx.TensorShapeProto.Dimension) -> bool:
    """A dimension with a size; exporters (Paddle) write -1 for an unknown one instead of a dim_param."""
    return dim.HasField("dim_value") and dim.dim_value >= 0


@functools.cache  # a model of thousands of small nodes asks for the same few schemas (swin_t: 6261 nodes)
def _schema(op_type: str, version: int, domain: str) -> onnx.defs.OpSchema | None:
    try:
        return onnx.defs.get_schema(op_type, version, domain)
    except onnx.defs.SchemaError:
        return None


@functools.cache  # reading schema.attributes builds every attribute's Python object anew
def _default_protos(schema: onnx.defs.OpSchema) -> dict[str, AttributeProto]:
    """The attributes with a default, as the schema's AttributeProtos (callers copy; never change them)."""
    return {name: a.default_value for name, a in schema.attributes.items()
            if a.default_value.type != AttributeProto.UNDEFINED}


class Importer:
    """Walks one model's nodes in order, keeping an environment from ONNX names to IR values."""

    def __init__(self, model: onnx.ModelProto, shapes: dict | None = None, constants: dict | None = None,
                 raw_weights: dict[int, np.ndarray] | None = None) -> None:
        self.model = model
        self.raw_weights = raw_weights or {}  # main-graph initializer index -> its array (raw_weights.py)
        self.shapes = dict(shapes or {})
        self.constants = dict(constants or {})
        self.graph = Graph(model.graph.name or "model")

    # -- the model -------------------------------------------------------
    def run(self) -> Graph:
        g = self.model.graph
        env: dict[str, Value] = {}
        for index, init in enumerate(g.initializer):
            array = self.raw_weights[index] if index in self.raw_weights else numpy_helper.to_array(init)
            env[init.name] = self.constant(array, f"initializer '{init.name}'")
        unused = set(self.shapes) - {i.name for i in g.input} - self._dim_params(g)
        if unused:
            raise OnnxImportError(f"{binding.option()} given for unknown inputs {sorted(unused)}; "
                                  f"the model's inputs are {[i.name for i in g.input if i.name not in env]}")
        declared = {i.name: i for i in g.input}
        for name, array in self.constants.items():
            if name not in declared:
                raise OnnxImportError(f"constants given for unknown input '{name}'; the model's inputs are "
                                      f"{[i.name for i in g.input if i.name not in env]}")
            env[name] = self.constant(self.constant_value(declared[name], array), f"input '{name}'")
        for info in g.input:
            if info.name not in env:
                env[info.name] = self.graph.add_input(self.input_shape(info), self.value_dtype(info), info.name)
        self.import_nodes(g.node, env, _opsets(self.model.opset_import), {})
        outputs = [self.output(env, info.name) for info in g.output]
        self.graph.set_outputs(outputs, [info.name for info in g.output])
        return self.graph

    def _dim_params(self, g: onnx.GraphProto) -> set[str]:
        return {d.dim_param for i in g.input for d in i.type.tensor_type.shape.dim if d.dim_param}

    def value_dtype(self, info: onnx.ValueInfoProto) -> DType:
        if not info.type.HasField("tensor_type"):
            raise OnnxImportError(f"input '{info.name}' is not a tensor ({info.type.WhichOneof('value')})")
        return elem_dtype(info.type.tensor_type.elem_type, f"input '{info.name}'")

    def constant_value(self, info: onnx.ValueInfoProto, given: object) -> np.ndarray:
        """A value fixing an input, in the input's element type (16000 for an int64 'sr')."""
        dtype = self.value_dtype(info).numpy
        array = np.asarray(given)
        with np.errstate(invalid="ignore", over="ignore"):
            cast = array.astype(dtype)
            kept = array.dtype.kind in "biuf" and (cast.dtype.kind == "f"  # floats round, as users expect
                                                   or np.array_equal(cast.astype(array.dtype), array))
        if not kept:
            raise OnnxImportError(f"constants['{info.name}'] = {given!r} is not a {dtype} value "
                                  f"(the input's element type)")
        return cast

    def input_shape(self, info: onnx.ValueInfoProto) -> tuple[int, ...]:
        """The static shape: given by the user (by input name or symbolic dim name) or in the model."""
        if info.name in self.shapes:
            given = self.shapes[info.name]
            if not isinstance(given, (tuple, list)) or any(not isinstance(d, (int, np.integer)) or d < 0
                                                           for d in given):
                raise OnnxImportError(f"shapes['{info.name}'] must be a tuple of non-negative ints, got {given!r}")
            shape = tuple(int(d) for d in given)
            dims = info.type.tensor_type.shape.dim
            if info.type.tensor_type.HasField("shape") and len(dims) != len(shape):
                raise OnnxImportError(f"input '{info.name}' has rank {len(dims)}, but {binding.option()} gives "
                                      f"{binding.given(shape)}")
            for i, (d, given) in enumerate(zip(dims, shape)):
                if _static(d) and d.dim_value != given:
                    raise OnnxImportError(f"input '{info.name}' has dim {d.dim_value} at axis {i}, "
                                          f"but {binding.option()} gives {given}")
            return shape
        if not info.type.tensor_type.HasField("shape"):
            raise OnnxImportError(f"input '{info.name}' has no shape in the model; "
                                  f"pass {binding.bind_input(info.name)}")
        shape = []
        for i, d in enumerate(info.type.tensor_type.shape.dim):
            if _static(d):
                shape.append(d.dim_value)
            elif d.dim_param and d.dim_param in self.shapes:
                size = self.shapes[d.dim_param]
                if not isinstance(size, (int, np.integer)) or size < 0:
                    raise OnnxImportError(f"{binding.option()} for dimension '{d.dim_param}' must be a "
                                          f"non-negative int, got {binding.given(size)}")
                shape.append(int(size))
            else:
                label = f"symbolic dimension '{d.dim_param}'" if d.dim_param else "an unknown dimension"
                dims = [d.dim_value if _static(d) else None for d in info.type.tensor_type.shape.dim]
                raise OnnxImportError(f"input '{info.name}' has {label} at axis {i}; bind it with "
                                      f"{binding.bind_input(info.name, dims)}" +
                                      (f" or {binding.bind_dim(d.dim_param)}" if d.dim_param else ""))
        return tuple(shape)

    def output(self, env: Env, name: str) -> Value:
        value = self.lookup(env, name, f"graph output '{name}'")
        if value.is_const or value.producer is None:
            # outputs are always written by a node (constants and inputs are copied)
            value = self.graph.add1("reshape", value, loc=f"graph output '{name}'", shape=value.shape)
        return value

    # -- values ----------------------------------------------------------
    def constant(self, array: np.ndarray, where: str) -> Value:
        try:
            dtype = dtype_from_numpy(array.dtype)
        except ValueError as e:
            raise OnnxImportError(f"{where}: {e}") from None
        return make_const(array, dtype)

    def lookup(self, env: Env, name: str, where: str) -> Value:
        if name not in env:
            raise OnnxImportError(f"{where}: value '{name}' is not defined (or is an output Cerebro does not produce)")
        return env[name]

    # -- nodes -----------------------------------------------------------
    def import_nodes(self, nodes: object, env: Env, opsets: dict[str, int], fn_attrs: dict) -> None:
        for node in nodes:
            self.import_node(node, env, opsets, fn_attrs)

    def resolve_attrs(self, node: onnx.NodeProto, fn_attrs: dict) -> list[AttributeProto]:
        """Attributes with references into an enclosing function replaced by the caller's values."""
        out = []
        for attr in node.attribute:
            if attr.ref_attr_name:
                if attr.ref_attr_name not in fn_attrs:
                    continue
                resolved = AttributeProto()
                resolved.CopyFrom(fn_attrs[attr.ref_attr_name])
                resolved.name = attr.name
                out.append(resolved)
            else:
                out.append(attr)
        return out

    def import_node(self, node: onnx.NodeProto, env: Env, opsets: dict[str, int], fn_attrs: dict) -> None:
        """Build one node into the graph; whatever goes wrong becomes one OnnxImportError naming it."""
        where = f"node '{node.name or (node.output[0] if node.output else '')}' ({node.op_type})"
        try:
            outputs = self.build_node(node, env, opsets, fn_attrs, where)
        except OnnxImportError:
            raise
        except IRError as e:
            raise OnnxImportError(f"{where}: {e}") from e
        except MALFORMED as e:
            # a malformed node (missing attribute, wrong arity or types): say which one
            raise OnnxImportError(f"{where}: malformed node ({type(e).__name__}: {e})") from e
        except Exception as e:  # noqa: BLE001 (an internal failure still names the node, in one line)
            raise OnnxImportError(f"{where}: importing the node failed ({type(e).__name__}: {e})") from e
        if isinstance(outputs, Value):
            outputs = [outputs]
        for name, value in zip(node.output, outputs):
            if name and value is not None:
                env[name] = value

    def build_node(self, node: onnx.NodeProto, env: Env, opsets: dict[str, int], fn_attrs: dict,
                   where: str) -> Value | list[Value | None]:
        """The node's outputs: folded, built by its rule, or expanded from its function body."""
        domain = "" if node.domain in ("", "ai.onnx") else node.domain
        if domain not in opsets:
            raise OnnxImportError(f"{where}: domain '{domain}' is not imported by the model")
        version = opsets[domain]
        inputs = [self.lookup(env, n, where) if n else None for n in node.input]
        attr_protos = self.resolve_attrs(node, fn_attrs)
        schema = _schema(node.op_type, version, domain)
        attrs = self.defaults(schema)
        attrs.update({a.name: attribute_value(a) for a in attr_protos})
        has_graph = any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for a in attr_protos)
        rule = lookup(node.op_type, version, domain)
        ctx = Ctx(self.graph, node.op_type, node.name or node.output[0], attrs, version, self, len(node.output),
                  {"env": env, "opsets": opsets, "fn_attrs": fn_attrs})
        foldable = (all(v is None or v.is_const for v in inputs) and not has_graph
                    and node.op_type not in NONDETERMINISTIC and schema is not None)
        outputs = self.fold(node, ctx, rule, attr_protos, inputs, domain, version) if foldable else None
        if outputs is not None:
            return outputs
        if rule is not None:
            return rule(ctx, *inputs)
        if schema is not None and (schema.has_function or schema.has_context_dependent_function):
            return self.expand(node, attr_protos, schema, inputs, env, opsets, domain)
        if node.op_type in NONDETERMINISTIC:
            raise OnnxImportError(f"{where}: random ops are not supported (a compiled model is deterministic)")
        raise OnnxImportError(f"{where}: op type '{node.op_type}' (domain '{domain or 'ai.onnx'}', "
                              f"opset {version}) is not supported by Cerebro")

    def defaults(self, schema: onnx.defs.OpSchema | None) -> dict:
        if schema is None:
            return {}
        return {name: attribute_value(proto) for name, proto in _default_protos(schema).items()}

    def default_protos(self, schema: onnx.defs.OpSchema) -> dict[str, AttributeProto]:
        return dict(_default_protos(schema))

    # -- folding ---------------------------------------------------------
    def fold(self, node: onnx.NodeProto, ctx: Ctx, rule: object, attrs: list, inputs: list, domain: str,
             version: int) -> list[Value | None] | None:
        """The outputs of a node whose inputs are all constants, as constants; None when it cannot fold
        (the node is then built like any other, so a failed fold is never fatal).

        A node with a rule folds by running that rule's IR through the IR interpreter, so a folded
        value means exactly what the compiled op computes; only ops without a rule go through onnx's
        ReferenceEvaluator (which gets some cases wrong, e.g. GatherElements with indices shorter
        than the data along the axis)."""
        if rule is None:
            return self.fold_by_onnx(node, attrs, inputs, domain, version)
        try:
            return self.fold_by_rule(rule, ctx, inputs)
        except (IRError, *MALFORMED):
            folded = self.fold_by_onnx(node, attrs, inputs, domain, version)
            if folded is None:
                raise  # the rule's own error names the node; building it would raise the same
            return folded

    def fold_by_rule(self, rule: object, ctx: Ctx, inputs: list) -> list[Value | None]:
        from cerebro.compiler.ir.interpret import run_graph

        scratch = Graph("fold")
        outputs = rule(dataclasses.replace(ctx, graph=scratch), *inputs)
        outputs = [outputs] if isinstance(outputs, Value) else list(outputs)
        computed = [v for v in outputs if v is not None and not v.is_const]
        if not computed:  # the rule's builder folded every node itself (most shape arithmetic)
            return outputs
        scratch.set_outputs(computed)
        with np.errstate(all="ignore"):
            results = dict(zip((v.id for v in computed), run_graph(scratch, [])))
        return [v if v is None or v.is_const else make_const(results[v.id], v.dtype) for v in outputs]

    def fold_by_onnx(self, node: onnx.NodeProto, attrs: list, inputs: list, domain: str,
                     version: int) -> list[Value | None] | None:
        """onnx's reference evaluator on the node alone; None when it fails."""
        from onnx.reference import ReferenceEvaluator

        names = [f"in{i}" if v is not None else "" for i, v in enumerate(inputs)]
        outs = [f"out{i}" if n else "" for i, n in enumerate(node.output)]
        single = helper.make_node(node.op_type, names, outs, domain=domain)
        single.attribute.extend(attrs)
        feeds = {n: v.data for n, v in zip(names, inputs) if v is not None}
        graph_inputs = [helper.make_tensor_value_info(n, DTYPE_TO_ELEM[v.dtype], v.shape) for n, v in
                        zip(names, inputs) if v is not None]
        graph_outputs = [helper.make_value_info(n, onnx.TypeProto()) for n in outs if n]
        model = helper.make_model(helper.make_graph([single], "fold", graph_inputs, graph_outputs),
                                  opset_imports=[helper.make_opsetid(domain, version)])
        try:
            it = iter(ReferenceEvaluator(model).run(None, feeds))
            return [self.constant(np.asarray(next(it)), f"node '{node.name}'") if n else None for n in outs]
        except Exception:  # noqa: BLE001 (any failure of the third-party evaluator means "cannot fold")
            return None

    # -- functions -------------------------------------------------------
    def expand(self, node: onnx.NodeProto, attrs: list, schema: onnx.defs.OpSchema, inputs: list, env: Env,
               opsets: dict[str, int], domain: str) -> list[Value | None]:
        """Import the op's function body (as the ONNX schema defines it) in place of the node."""
        version = opsets[domain]
        resolved = helper.make_node(node.op_type, list(node.input), list(node.output), name=node.name, domain=domain)
        resolved.attribute.extend(attrs)
        fn = onnx.FunctionProto()
        plain = [v for v in schema.function_opset_versions if v <= version]
        contextual = [v for v in schema.context_dependent_function_opset_versions if v <= version]
        if plain:
            fn.ParseFromString(schema.get_function_with_opset_version(max(plain)))
        else:
            types = [helper.make_tensor_type_proto(DTYPE_TO_ELEM[v.dtype], v.shape).SerializeToString()
                     if v is not None else onnx.TypeProto().SerializeToString() for v in inputs]
            fn.ParseFromString(schema.get_context_dependent_function_with_opset_version(
                max(contextual) if contextual else version, resolved.SerializeToString(), types))
        local: dict[str, Value] = {}
        for formal, value in zip(fn.input, inputs):
            if value is not None:
                local[formal] = value
        call_attrs = self.default_protos(schema)
        call_attrs.update({a.name: a for a in attrs})
        fn_opsets = {**opsets, **_opsets(fn.opset_import)}
        self.import_nodes(fn.node, local, fn_opsets, call_attrs)
        return [local.get(formal) for formal in fn.output]

    # -- subgraphs (If, Loop, Scan bodies) -------------------------------
    def run_subgraph(self, body: onnx.GraphProto, outer: Env, bindings: dict[str, Value],
                     opsets: dict[str, int], fn_attrs: dict) -> list[Value]:
        """Import a body graph inline; it sees the enclosing scope's names."""
        local: Env = ChainMap(dict(bindings), outer)
        for init in body.initializer:
            local[init.name] = self.constant(numpy_helper.to_array(init), f"initializer '{init.name}'")
        self.import_nodes(body.node, local, opsets, fn_attrs)
        return [self.lookup(local, o.name, f"subgraph '{body.name}' output") for o in body.output]


def import_onnx(model_or_path: object, shapes: dict[str, tuple] | None = None,
                constants: dict[str, np.ndarray] | None = None, *,
                raw_weights: dict[int, np.ndarray] | None = None) -> Graph:
    """Import an ONNX model (ModelProto, bytes or path) as a static-shape IR graph.

    shapes binds symbolic input dimensions: {"input_ids": (1, 128)} (by input
    name) or {"batch": 1} (by the dim_param's name). constants fixes inputs to
    values (they stop being inputs), which specialises models whose shapes
    depend on an input's value (Resize scales, Range limits, OneHot depth). raw_weights: what read_model
    returned with a ModelProto given here (its initializers as views of the file's bytes).
    """
    model, read = read_model(model_or_path)
    return Importer(model, shapes, constants, raw_weights or read).run()
