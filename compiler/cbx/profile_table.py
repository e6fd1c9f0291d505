"""The .note.cerebro.profile section: what each stage of a profiling build runs, and where it came from.

build(graph, profile=True) gives every node (after fusion) a stage of its own and stores this table,
as JSON in the descriptor of one ELF note (owner "Cerebro", type NOTE_TYPE):

    {"format": "cerebro.profile/1",
     "stages": [[NODE, ...], ...]}     # one list per stage, in stage order: meta.num_stages of them

NODE is {"op": "matmul", "label": "matmul+[add,max]", "shapes": "1x784 784x512 -> 1x512",
"where": ["model.py:12 (in predict)", ...], "flops": 803840}: the node's op; the op with the ops fused
into it ("[...]" a fused body, "+[...]" a matmul/conv epilogue); its input and output shapes; the
source locations of the node and of every node fused into it (distinct, in graph order: JAX
file:line, ONNX node name); its estimated flops (node_flops, fused work included). A stage holds one
node and the free ones (reshapes) that follow it.
Like .note.cerebro.tree the section is not allocated: the C runtime and the kernel never map it, so
a profiling build loads wherever its plain twin does (profiles are taken in user space).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from cerebro.compiler.cbx.format import CbxError, Meta
from cerebro.compiler.cbx.tree import add_note, note_desc, note_json

if TYPE_CHECKING:  # the runtime reads tables without the IR
    from cerebro.compiler.ir import Node

PROFILE_SECTION = ".note.cerebro.profile"
NOTE_TYPE = 2  # .note.cerebro.tree is 1
FORMAT = "cerebro.profile/1"
MAX_BYTES = 64 << 20  # 65,536 stages of long fused chains stay well below
_FIELDS = {"op": str, "label": str, "shapes": str, "where": list, "flops": int}


@dataclass(frozen=True)
class NodeInfo:
    """One node of a stage, as a profile reports it."""

    op: str
    label: str
    shapes: str
    where: tuple[str, ...]
    flops: int


def node_info(node: Node, flops: int) -> NodeInfo:
    """The table's entry for an optimised graph's node whose estimated cost is flops."""
    body = tuple(node.attrs.get("nodes", ()))
    epilogue = node.attrs.get("epilogue")
    tail = tuple(epilogue.nodes) if epilogue is not None else ()
    label = node.op + (f"[{_ops(body)}]" if body else "") + _narrowed(node) + (f"+[{_ops(tail)}]" if tail else "")
    shapes = " ".join(_shape(v.shape) for v in node.inputs) + " -> " + " ".join(_shape(v.shape) for v in node.outputs)
    sources = [inner.loc for inner in body] if body else [node.loc]
    sources += [inner.loc for inner in tail]
    return NodeInfo(node.op, label, shapes, tuple(dict.fromkeys(s for s in sources if s)), int(flops))


def _narrowed(node: Node) -> str:
    """"<i8 weights>" (or bf16, f16) where a matmul's constant weights are stored narrower than it computes
    (passes/int8_weights.py, half_weights.py)."""
    weights = node.inputs[1] if node.op == "matmul" else None
    narrow = weights is not None and weights.is_const and weights.dtype is not node.outputs[0].dtype
    return f"<{weights.dtype.name} weights>" if narrow else ""


def _ops(nodes: tuple[Node, ...]) -> str:
    return ",".join(inner.op for inner in nodes)


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) or "()"


def attach_profile(cbx: bytes, stages: list[list[NodeInfo]]) -> bytes:
    """cbx with the stage table stored in its .note.cerebro.profile section (and resealed)."""
    payload = {"format": FORMAT, "stages": [[asdict(info) for info in stage] for stage in stages]}
    return add_note(cbx, PROFILE_SECTION, json.dumps(payload, separators=(",", ":")).encode(), NOTE_TYPE)


def read_profile(cbx: bytes, meta: Meta) -> list[list[NodeInfo]] | None:
    """The stage table stored in cbx, None for a file built without profile=True; CbxError if malformed."""
    payload = note_desc(cbx, PROFILE_SECTION, NOTE_TYPE, "profile")
    if payload is None:
        return None
    raw = note_json(payload, PROFILE_SECTION, MAX_BYTES)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or not isinstance(raw.get("stages"), list):
        raise CbxError(f"bad {PROFILE_SECTION}: not a {FORMAT} table")
    stages = raw["stages"]
    if len(stages) != meta.num_stages:
        raise CbxError(f"bad {PROFILE_SECTION}: {len(stages)} stages, the model has {meta.num_stages}")
    return [[_entry(entry, k) for entry in _stage(stage, k)] for k, stage in enumerate(stages)]


def _stage(stage: object, k: int) -> list:
    if not isinstance(stage, list) or not stage:
        raise CbxError(f"bad {PROFILE_SECTION}: stage {k} must be a non-empty list of nodes")
    return stage


def _entry(entry: object, k: int) -> NodeInfo:
    """A NodeInfo from its JSON, every field present with its type (bool is not an int here)."""
    if (not isinstance(entry, dict) or set(entry) != set(_FIELDS)
            or any(type(entry[name]) is not kind for name, kind in _FIELDS.items())
            or not all(isinstance(w, str) for w in entry["where"]) or entry["flops"] < 0):
        raise CbxError(f"bad {PROFILE_SECTION}: stage {k} has a malformed node (fields: {', '.join(_FIELDS)})")
    return NodeInfo(entry["op"], entry["label"], entry["shapes"], tuple(entry["where"]), entry["flops"])
