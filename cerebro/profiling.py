"""A per-node profile of a .cbx built for profiling: a table to read and a trace to look at.

A file built with build(graph, profile=True) (or by `cerebroc profile SOURCE`) runs every node in a
stage of its own and names each stage's node, op and source locations (.note.cerebro.profile). The
runtime times each stage call on its own (LoadedModel.profile); here those times become one row per
node (median over the repeats, share of the total, op, source location), printed sorted by time,
and a Chrome/Perfetto trace (JSON, one track: each call with its nodes back to back in their measured
durations; the ~20 ns between two stage calls is not measured, so it is left out).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cerebro.compiler.cbx.profile_table import NodeInfo

NO_TABLE = ("this .cbx was not built for profiling (no .note.cerebro.profile): build it with "
            "build(graph, profile=True), or run `cerebroc profile` on the model's source")
_SHOWN_PLACES = 2  # source locations a table row lists before "+N more"
_LABEL_WIDTH = 44


@dataclass(frozen=True)
class NodeTime:
    """One node (one stage of the profiling build) and its times over the repeats."""

    index: int  # the stage, in execution order
    op: str
    label: str  # the op with what is fused into it, e.g. matmul+[add,max]
    shapes: str
    where: tuple[str, ...]  # source locations, from the frontend
    flops: int
    times_ns: np.ndarray

    @property
    def median_us(self) -> float:
        return float(np.median(self.times_ns)) / 1e3

    @property
    def p90_us(self) -> float:
        return float(np.percentile(self.times_ns, 90)) / 1e3

    @property
    def place(self) -> str:
        """The source locations, shortened for a table row."""
        shown = ", ".join(self.where[:_SHOWN_PLACES]) or "-"
        more = len(self.where) - _SHOWN_PLACES
        return shown + (f" (+{more} more)" if more > 0 else "")


def _node_time(index: int, nodes: list[NodeInfo], times_ns: np.ndarray) -> NodeTime:
    """A stage's row: its node, with any free node (a reshape, no flops) that joined its stage."""
    main = [n for n in nodes if n.flops] or nodes
    where = tuple(dict.fromkeys(w for n in main for w in n.where))
    return NodeTime(index, main[0].op, "; ".join(n.label for n in main), "; ".join(n.shapes for n in main),
                    where, sum(n.flops for n in nodes), times_ns)


class Profile:
    """Per-node times of one model: str() is the table (slowest first), trace() the Perfetto JSON."""

    def __init__(self, model_name: str, table: list[list[NodeInfo]], times_ns: np.ndarray) -> None:
        if times_ns.ndim != 2 or times_ns.shape[1] != len(table):
            raise ValueError(f"{times_ns.shape} stage times for {len(table)} stages")
        self.model_name = model_name
        self.repeats = times_ns.shape[0]
        self.times_ns = times_ns
        self.nodes = [_node_time(k, stage, times_ns[:, k]) for k, stage in enumerate(table)]

    @property
    def total_us(self) -> float:
        """The sum of the node medians: about one call's latency."""
        return sum(node.median_us for node in self.nodes)

    def slowest(self) -> list[NodeTime]:
        return sorted(self.nodes, key=lambda node: -node.median_us)

    def table(self, top: int | None = None) -> str:
        """The nodes slowest first (the top ones, or all): median us, share, op, source location."""
        total = self.total_us or 1.0
        rows = self.slowest()[:top] if top else self.slowest()
        width = min(max((len(node.label) for node in rows), default=2), _LABEL_WIDTH)
        count = f"{len(self.nodes)} node" + "s" * (len(self.nodes) != 1)
        lines = [f"{_printable(self.model_name)}: {count}, {self.total_us:.2f} us per call "
                 f"(sum of node medians over {self.repeats} runs)", "",
                 f"{'node':>5}  {'median us':>10}  {'share':>6}  {'op':<{width}}  where"]
        for node in rows:
            label = node.label if len(node.label) <= width else node.label[:width - 3] + "..."
            lines.append(f"{node.index:>5}  {node.median_us:>10.2f}  {100 * node.median_us / total:>5.1f}%  "
                         f"{_printable(label):<{width}}  {_printable(node.place)}")
        if len(rows) < len(self.nodes):
            lines.append(f"  ... {len(self.nodes) - len(rows)} faster nodes not shown")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def trace(self) -> dict[str, Any]:
        """Chrome trace-event JSON (Perfetto, chrome://tracing): one track; each run is a 'call' slice
        holding its nodes' slices back to back. Times are microseconds (ts, dur)."""
        track = {"pid": 1, "tid": 1}
        events: list[dict[str, Any]] = [
            {"name": "process_name", "ph": "M", **track, "args": {"name": f"cerebro model {self.model_name}"}},
            {"name": "thread_name", "ph": "M", **track, "args": {"name": "stages (user-space runtime)"}},
        ]
        clock = 0
        for run, times in enumerate(self.times_ns.tolist()):  # a call's slice first: it encloses its nodes'
            events.append({"name": f"call {run}", "cat": "call", "ph": "X", "ts": _us(clock),
                           "dur": _us(sum(times)), **track, "args": {"run": run}})
            for node, took in zip(self.nodes, times):
                events.append({"name": node.label, "cat": node.op, "ph": "X", "ts": _us(clock), "dur": _us(took),
                               **track, "args": {"node": node.index, "where": list(node.where),
                                                 "shapes": node.shapes, "flops": node.flops}})
                clock += took
        return {"traceEvents": events, "displayTimeUnit": "ns",
                "otherData": {"model": self.model_name, "repeats": self.repeats}}

    def write_trace(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.trace(), separators=(",", ":")))
        return path

    def __repr__(self) -> str:
        return f"<cerebro.Profile '{self.model_name}' {len(self.nodes)} nodes {self.total_us:.1f} us>"


def _printable(text: str) -> str:
    """text with control characters escaped: names in a .cbx come from whoever made it (an ONNX node
    name may hold terminal escape sequences)."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def _us(ns: int) -> float:
    """ns as microseconds, a quarter nanosecond high: a reader that truncates ts*1000 to integer
    nanoseconds (Perfetto does) gets ns exactly, so a node's end and the next one's start coincide."""
    return (ns + 0.25) / 1e3


def measure(loaded: Any, arrays: tuple, repeats: int) -> Profile:
    """Profile a runtime.LoadedModel built for profiling on these inputs (one warm-up call first)."""
    if loaded.profile_table is None:
        raise ValueError(NO_TABLE)
    loaded(*arrays)
    return Profile(loaded.meta.model_name, loaded.profile_table, loaded.profile(*arrays, repeats=repeats))
