"""The .note.cerebro.tree section: a function's calling convention (pytrees in and out), read without JAX.

An exported JAX function keeps its argument and result structure here, as JSON in the
descriptor of one ELF note (owner "Cerebro", type NOTE_TYPE):

    {"format": "cerebro.tree/1",
     "args":   [["variables", NODE], ["n", {"static": "3"}], ...],   # positional parameters, in order
     "kwargs": [["scale", NODE], ...],                               # keyword arguments, sorted by name
     "output": NODE}

NODE is "leaf" (one tensor of the signature, in order), null (None), {"tuple": [NODE...]},
{"list": [NODE...]} or {"dict": [[key, NODE]...]} (keys in JAX's flattening order). Containers
of other types (namedtuple, dataclass, flax structs) degrade to dict or tuple and name their type
under "type". Static arguments are compiled in: {"static": repr(value)}.
The section is a non-allocated SHT_NOTE: the C runtime and the kernel never map it, and the
kernel's modpost accepts it (it warns about non-allocated PROGBITS sections, which fails
`cerebroc kmod build`).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cerebro import elf as elfmod
from cerebro.compiler.cbx.format import CbxError, Meta
from cerebro.compiler.cbx.writer import add_section, find_section

TREE_SECTION = ".note.cerebro.tree"
NOTE_OWNER = b"Cerebro\0"
NOTE_TYPE = 1
FORMAT = "cerebro.tree/1"
LEAF = "leaf"
MAX_DEPTH = 64
MAX_BYTES = 1 << 20
_CONTAINERS = {"tuple": tuple, "list": list, "dict": dict}


class TreeMismatch(ValueError):
    """A call's arguments do not have the structure the model was compiled for."""


@dataclass(frozen=True)
class CallTree:
    """The structure of a model's arguments and results, and how to (un)flatten them."""

    args: list[tuple[str, Any]]
    kwargs: list[tuple[str, Any]]
    output: Any

    def to_json(self) -> bytes:
        return json.dumps({"format": FORMAT, "args": self.args, "kwargs": self.kwargs, "output": self.output},
                          separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, payload: bytes, num_inputs: int, num_outputs: int) -> CallTree:
        """Parse and check a section's payload against the signature: CbxError if it does not fit."""
        raw = note_json(payload, TREE_SECTION, MAX_BYTES)
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise CbxError(f"bad {TREE_SECTION}: not a {FORMAT} description")
        args, kwargs = _params(raw.get("args"), "args"), _params(raw.get("kwargs"), "kwargs")
        leaves_in = sum(_leaves(node, 1) for _, node in args + kwargs if not _is_static(node))
        leaves_out = _leaves(raw.get("output"), 1)
        if (leaves_in, leaves_out) != (num_inputs, num_outputs):
            raise CbxError(f"bad {TREE_SECTION}: {leaves_in} input and {leaves_out} output leaves, the signature "
                           f"has {num_inputs} inputs and {num_outputs} outputs")
        return cls(args, kwargs, raw["output"])

    def flatten(self, args: tuple, kwargs: Mapping[str, Any]) -> list[Any]:
        """The leaves of a call, in signature order; TreeMismatch names what does not fit."""
        dynamic = [(name, node) for name, node in self.args if not _is_static(node)]
        if len(args) == len(self.args):
            given = list(zip(self.args, args))
        elif len(args) == len(dynamic):
            given = list(zip(dynamic, args))
        else:
            names = ", ".join(name for name, _ in self.args)
            statics = len(self.args) - len(dynamic)
            also = f" (or {len(dynamic)} without the static ones)" if statics else ""
            raise TreeMismatch(f"the model takes {len(self.args)} positional arguments ({names}){also}, "
                               f"got {len(args)}")
        unknown = sorted(set(kwargs) - {name for name, _ in self.kwargs})
        if unknown:
            raise TreeMismatch(f"unexpected keyword argument(s) {', '.join(map(repr, unknown))}")
        leaves: list[Any] = []
        for (name, node), value in given:
            _flatten(node, value, f"argument '{name}'", leaves)
        for name, node in self.kwargs:
            if name not in kwargs and not _is_static(node):
                raise TreeMismatch(f"missing keyword argument '{name}'")
            if name in kwargs:
                _flatten(node, kwargs[name], f"keyword argument '{name}'", leaves)
        return leaves

    def unflatten(self, outputs: list[Any]) -> Any:
        """The model's results in the function's structure."""
        return _build(self.output, iter(outputs))


def _is_static(node: Any) -> bool:
    return isinstance(node, dict) and "static" in node


def _params(raw: Any, what: str) -> list[tuple[str, Any]]:
    if not isinstance(raw, list) or not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)
                                            for p in raw):
        raise CbxError(f"bad {TREE_SECTION}: '{what}' must be a list of [name, node] pairs")
    if any(_is_static(node) and not isinstance(node["static"], str) for _, node in raw):
        raise CbxError(f"bad {TREE_SECTION}: a static argument's value must be a string")
    return [(name, node) for name, node in raw]


def _leaves(node: Any, depth: int) -> int:
    """How many tensors node stands for; CbxError if it is not a well-formed node."""
    if depth > MAX_DEPTH:
        raise CbxError(f"bad {TREE_SECTION}: nested deeper than {MAX_DEPTH}")
    if node == LEAF:
        return 1
    if node is None:
        return 0
    kind = _kind(node)
    if kind is None:
        raise CbxError(f"bad {TREE_SECTION}: unknown node {str(node)[:60]}")
    children = node[kind]
    if kind == "dict":
        if not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], (str, int)) for p in children):
            raise CbxError(f"bad {TREE_SECTION}: a dict node needs [key, node] pairs")
        children = [child for _, child in children]
    return sum(_leaves(child, depth + 1) for child in children)


def _kind(node: Any) -> str | None:
    """'tuple', 'list' or 'dict' for a container node, None for anything else."""
    if not isinstance(node, dict):
        return None
    kinds = set(node) - {"type"}
    kind = kinds.pop() if len(kinds) == 1 else None
    return kind if kind in _CONTAINERS and isinstance(node[kind], list) else None


def _flatten(node: Any, value: Any, where: str, leaves: list[Any]) -> None:
    if _is_static(node):
        if repr(value) != node["static"]:
            raise TreeMismatch(f"{where} is static: the model was compiled for {node['static']}, got {value!r}")
        return
    if node == LEAF:
        leaves.append(value)
        return
    if node is None:
        if value is not None:
            raise TreeMismatch(f"{where}: expected None, got {type(value).__name__}")
        return
    kind = _kind(node)
    if kind == "dict":
        for key, child in _items(node, value, where):
            _flatten(child, _get(value, key), f"{where}[{key!r}]", leaves)
        return
    if not isinstance(value, (tuple, list)) or len(value) != len(node[kind]):
        got = f"{type(value).__name__} of {len(value)}" if isinstance(value, (tuple, list)) else type(value).__name__
        raise TreeMismatch(f"{where}: expected a {kind} of {len(node[kind])}, got {got}")
    for index, (child, item) in enumerate(zip(node[kind], value)):
        _flatten(child, item, f"{where}[{index}]", leaves)


def _items(node: dict, value: Any, where: str) -> list[tuple[Any, Any]]:
    """node's [key, child] pairs after checking that value has exactly those keys."""
    pairs = node["dict"]
    if not isinstance(value, Mapping):
        if "type" in node and all(isinstance(k, str) and hasattr(value, k) for k, _ in pairs):
            return pairs  # the original namedtuple/dataclass: read its fields
        raise TreeMismatch(f"{where}: expected a dict with keys {[k for k, _ in pairs]}, "
                           f"got {type(value).__name__}")
    keys = [k for k, _ in pairs]
    missing = [k for k in keys if k not in value]
    extra = [k for k in value if k not in keys]
    if missing or extra:
        parts = [f"missing key(s) {missing}"] * bool(missing) + [f"unexpected key(s) {extra}"] * bool(extra)
        raise TreeMismatch(f"{where}: {'; '.join(parts)}")
    return pairs


def _get(value: Any, key: Any) -> Any:
    return value[key] if isinstance(value, Mapping) else getattr(value, key)


def _build(node: Any, outputs: Iterator[Any]) -> Any:
    if node == LEAF:
        return next(outputs)
    if node is None:
        return None
    kind = _kind(node)
    if kind == "dict":
        return {key: _build(child, outputs) for key, child in node["dict"]}
    return _CONTAINERS[kind](_build(child, outputs) for child in node[kind])


def attach_tree(cbx: bytes, tree: CallTree) -> bytes:
    """cbx with tree stored in its .note.cerebro.tree section (and resealed)."""
    return add_note(cbx, TREE_SECTION, tree.to_json())


def add_note(cbx: bytes, name: str, desc: bytes, kind: int = NOTE_TYPE) -> bytes:
    """cbx with a new non-allocated section `name` holding one Cerebro note of type kind (resealed)."""
    return add_section(cbx, name, note(desc, kind), elfmod.SHT_NOTE, 4)


def note(desc: bytes, kind: int = NOTE_TYPE) -> bytes:
    """One ELF note (owner NOTE_OWNER, type kind) holding desc, padded to 4 bytes."""
    return struct.pack("<3I", len(NOTE_OWNER), len(desc), kind) + NOTE_OWNER + desc + bytes(-len(desc) % 4)


def read_tree(cbx: bytes, meta: Meta) -> CallTree | None:
    """The calling convention stored in cbx, None for a file without one; CbxError if it is malformed."""
    payload = note_desc(cbx, TREE_SECTION, NOTE_TYPE, "tree")
    return None if payload is None else CallTree.from_json(payload, len(meta.inputs), len(meta.outputs))


def note_desc(cbx: bytes, name: str, kind: int, what: str) -> bytes | None:
    """The descriptor of the Cerebro note of type kind that section name holds, None for a file without
    the section; CbxError (naming the section and `what` note it should be) if it is malformed."""
    section = find_section(cbx, name)
    if section is None:
        return None
    kind_found, data = section
    head = 12 + len(NOTE_OWNER)
    if kind_found != elfmod.SHT_NOTE or len(data) < head:
        raise CbxError(f"bad {name}: not an ELF note")
    owner_size, desc_size, found = struct.unpack_from("<3I", data)
    if (owner_size, found) != (len(NOTE_OWNER), kind) or data[12:head] != NOTE_OWNER:
        raise CbxError(f"bad {name}: not a Cerebro {what} note")
    if desc_size > len(data) - head:
        raise CbxError(f"bad {name}: the note claims {desc_size} bytes, the section has {len(data) - head}")
    return data[head:head + desc_size]


def note_json(payload: bytes, name: str, max_bytes: int) -> Any:
    """A note's JSON payload parsed; CbxError naming section name if it is over max_bytes or not JSON."""
    if len(payload) > max_bytes:
        raise CbxError(f"bad {name}: {len(payload)} bytes (at most {max_bytes})")
    try:
        return json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise CbxError(f"bad {name}: not JSON ({str(exc)[:80]})") from None
