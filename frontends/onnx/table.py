"""The rule table: ONNX op type -> IR builder, chosen by the model's opset (since-version)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cerebro.compiler.ir import Graph, Value
from cerebro.compiler.ir.builder import Builder
from cerebro.frontends import binding


class OnnxImportError(ValueError):
    """A model Cerebro cannot import; the message names the node and op type."""


class DynamicShapeError(OnnxImportError):
    """A shape (or shape-like parameter, or an If whose branches cannot both compile) depends on
    runtime values; fixing the inputs it comes from (constants={...}, --const) specialises the
    model and resolves it. The message ends with that binding, in the caller's syntax."""

    def __init__(self, message: str, value: Value | None = None) -> None:
        self.value = value
        names = self.input_names()
        if names:
            example = _example_value(value)
            message += f"; specialise the model with {binding.bind_constants({n: example for n in names})}"
        super().__init__(message)

    def input_names(self) -> list[str]:
        """The graph inputs the offending value is computed from."""
        return [v.name for v in _sources(self.value) if v.producer is None and not v.is_const]


def _sources(value: Value | None) -> list[Value]:
    """value and every value it is computed from (constants included), each once."""
    found, stack, seen = [], [value] if value is not None else [], set()
    while stack:
        v = stack.pop()
        if v.id in seen:
            continue
        seen.add(v.id)
        found.append(v)
        if v.producer is not None:
            stack.extend(v.producer.inputs)
    return found


def _example_value(value: Value | None) -> str:
    """The scalar constant the value is computed against (If(sr == 16000) -> '16000') when there
    is exactly one, as the value to suggest; else a placeholder."""
    scalars = {v.data.item() for v in _sources(value) if v.is_const and v.size == 1}
    return str(scalars.pop()) if len(scalars) == 1 else "VALUE"


@dataclass
class Ctx(Builder):
    """What a rule sees: a Builder on the graph under construction at this node, the node's attributes
    and its opset."""

    graph: Graph
    op_type: str
    name: str
    attrs: dict
    version: int
    importer: object = None
    n_outputs: int = 1
    extras: dict = field(default_factory=dict)

    @property
    def loc(self) -> str:
        return f"node '{self.name}' ({self.op_type})"

    def error(self, message: str) -> OnnxImportError:
        return OnnxImportError(f"{self.loc}: {message}")

    def dynamic(self, what: str, value: Value) -> DynamicShapeError:
        return DynamicShapeError(f"{self.loc}: {what} must be a constant (Cerebro compiles static shapes), "
                                 "but it is computed from runtime values", value)

    def attr(self, name: str, default: object = None) -> object:
        value = self.attrs.get(name)
        return default if value is None else value


Rule = Callable[..., Value | list[Value] | tuple]
RULES: dict[str, list[tuple[int, Rule]]] = {}


def rule(*op_types: str, since: int = 1, domain: str = "") -> Callable[[Rule], Rule]:
    """Register fn for op_types of @domain ('' is ai.onnx) from opset `since` on (until a later registration)."""

    def register(fn: Rule) -> Rule:
        for op_type in op_types:
            key = rule_key(op_type, domain)
            RULES.setdefault(key, []).append((since, fn))
            RULES[key].sort(key=lambda entry: entry[0])
        return fn

    return register


def rule_key(op_type: str, domain: str = "") -> str:
    """RULES' key: the op type in the default domain, else qualified by its domain (ai.onnx.ml.Binarizer)."""
    return f"{domain}.{op_type}" if domain else op_type


def lookup(op_type: str, version: int, domain: str = "") -> Rule | None:
    """The rule registered for the newest since-version not above the model's opset of @domain."""
    chosen = None
    for since, fn in RULES.get(rule_key(op_type, domain), ()):
        if since <= version:
            chosen = fn
    return chosen
