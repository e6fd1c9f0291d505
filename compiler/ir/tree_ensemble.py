"""The `tree_ensemble` op: every row of x walks every decision tree of a table and sums (or averages,
or takes the min/max of) the weights of the leaves it reaches, per target (ONNX ai.onnx.ml TreeEnsemble
and TreeEnsembleRegressor/Classifier).

inputs (the tables are ordinary values: constants from the frontends, anything in tests):
  x        [N, F] f32 or f64
  nodes    i32 [M, 6]  per node: mode, feature, true child, false child, members start, members end.
                       mode & 7 picks the test (MODES: x[feature] <= split, <, >=, >, ==, !=, in
                       members[start:end]; 7 is never true); mode & 8: a NaN feature goes the true way.
                       A child >= 0 is a node; a child < 0 is leaf ~child.
  splits   [M]   x's type
  roots    i32 [R]     each tree's first child (a node, or ~leaf for a tree that is one leaf)
  bounds   i32 [L + 1] leaf l owns entries bounds[l] .. bounds[l + 1] - 1
  targets  i32 [E]     the target each entry adds to
  weights  [E]   x's type
  members  [K]   x's type (the MEMBER tests' sets)
attrs: n_targets (T), aggregate (sum|average|min|max).
output: [N, T] in x's type (ONNX's base values are an add after it: the frontend's).

Per row, trees in order and a leaf's entries in order: sum/average add into score[t] (from +0);
min/max combine as the elementwise max/min (NaN propagates, -0 < +0) from the first weight on.
Then average divides by R; a target no leaf gave is +0. Comparisons are IEEE in x's type (NaN
compares false; != is true).
Malformed tables never read out of bounds: a walk that meets a node index outside [0, M), a feature
outside [0, F) or a leaf outside [0, L), or that has not reached a leaf after M tests, adds nothing;
leaf bounds are clamped into [0, E] and [0, K]; an entry whose target is outside [0, T) is skipped.
"""

from __future__ import annotations

import math

import numpy as np

from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.ir.graph import IRError, Node

MODES = ("leq", "lt", "gte", "gt", "eq", "neq", "member")  # nodes[:, 0] & 7
MISSING_GOES_TRUE = 8  # nodes[:, 0] & 8
NODE_COLUMNS = 6
AGGREGATES = ("sum", "average", "min", "max")
TABLES = ("nodes", "splits", "roots", "bounds", "targets", "weights", "members")  # inputs after x


def _fail(node: Node, message: str) -> IRError:
    return IRError(f"{node.where()}: {message}")


def rule(node: Node) -> list[tuple[tuple[int, ...], DType]]:
    x, nodes, splits, roots, bounds, targets, weights, members = node.inputs
    if x.dtype not in (DType.f32, DType.f64) or x.rank != 2:
        raise _fail(node, f"x must be [rows, features] f32 or f64, got {x.dtype.name}{x.shape}")
    for name, value in (("nodes", nodes), ("roots", roots), ("bounds", bounds), ("targets", targets)):
        if value.dtype is not DType.i32:
            raise _fail(node, f"{name} must be i32, got {value.dtype.name}")
    for name, value in (("splits", splits), ("weights", weights), ("members", members)):
        if value.dtype is not x.dtype or value.rank != 1:
            raise _fail(node, f"{name} must be a vector of {x.dtype.name}, got {value.dtype.name}{value.shape}")
    m = splits.shape[0]
    if nodes.shape != (m, NODE_COLUMNS):
        raise _fail(node, f"nodes must be [{m}, {NODE_COLUMNS}] (one row per split), got {nodes.shape}")
    if roots.rank != 1 or bounds.rank != 1 or bounds.shape[0] < 1 or targets.shape != weights.shape:
        raise _fail(node, f"roots {roots.shape}, bounds {bounds.shape} (L + 1 >= 1), targets {targets.shape} "
                          f"and weights {weights.shape} (equal) do not fit")
    n_targets, aggregate = int(node.attrs["n_targets"]), node.attrs["aggregate"]
    if n_targets < 1 or aggregate not in AGGREGATES:
        raise _fail(node, f"n_targets {n_targets} (>= 1) or aggregate {aggregate!r} (one of {AGGREGATES}) is bad")
    return [((x.shape[0], n_targets), x.dtype)]


def cost(node: Node) -> int:
    """Each row: every tree, about log2(nodes per tree) tests of a few instructions each."""
    x, nodes, _, roots = node.inputs[:4]
    trees = max(roots.size, 1)
    return x.shape[0] * (trees * 4 * math.ceil(math.log2(nodes.shape[0] / trees + 2)) + int(node.attrs["n_targets"]))


def _tests(mode: np.ndarray, v: np.ndarray, split: np.ndarray, members: np.ndarray, lo: np.ndarray,
           hi: np.ndarray) -> np.ndarray:
    """Each row's test at its node: the comparison mode & 7 names, then NaN's way."""
    compare = [v <= split, v < split, v >= split, v > split, v == split, v != split,
               np.array([np.any(members[a:b] == value) for value, a, b in zip(v, lo, hi)], bool)]
    test = np.select([(mode & 7) == k for k in range(len(MODES))], compare, False)
    return test | ((mode & MISSING_GOES_TRUE) != 0) & np.isnan(v)


def _leaves(x: np.ndarray, nodes: np.ndarray, splits: np.ndarray, members: np.ndarray, root: int) -> np.ndarray:
    """Every row's walk of one tree, all rows at once: the child each ends on (< 0: a leaf; else none)."""
    rows, features = x.shape
    m = nodes.shape[0]
    at = np.full(rows, root, np.int64)
    for _ in range(m):
        walking = (at >= 0) & (at < m)
        if not walking.any():
            break
        mode, feature, yes, no, lo, hi = nodes[np.where(walking, at, 0)].astype(np.int64).T
        valid = walking & (feature >= 0) & (feature < features)
        v = x[np.arange(rows), np.clip(feature, 0, max(features - 1, 0))] if features else np.zeros(rows, x.dtype)
        lo, hi = np.clip(lo, 0, members.size), np.clip(hi, 0, members.size)
        go = _tests(mode, v, splits[np.where(walking, at, 0)], members, lo, hi)
        at = np.where(valid, np.where(go, yes, no), np.where(walking, m, at))  # m: this walk stops, adds nothing
    return np.where(at < 0, at, 0)  # 0: no leaf


def reference(node: Node, x: np.ndarray, nodes: np.ndarray, splits: np.ndarray, roots: np.ndarray,
              bounds: np.ndarray, targets: np.ndarray, weights: np.ndarray, members: np.ndarray) -> np.ndarray:
    from cerebro.compiler.ir.reference import extreme

    n_targets, aggregate = int(node.attrs["n_targets"]), node.attrs["aggregate"]
    rows = x.shape[0]
    score = np.zeros((rows, n_targets), x.dtype)
    seen = np.zeros((rows, n_targets), bool)
    combine = {"min": extreme(False), "max": extreme(True)}.get(aggregate)
    entries = targets.size
    for root in roots.astype(np.int64):
        ends = _leaves(x, nodes, splits, members, int(root))
        for row, end in enumerate(ends):
            leaf = ~int(end)
            if end >= 0 or leaf >= bounds.size - 1:
                continue
            lo, hi = (min(max(int(b), 0), entries) for b in bounds[leaf:leaf + 2])
            for e in range(lo, hi):
                t, w = int(targets[e]), weights[e:e + 1]
                if not 0 <= t < n_targets:
                    continue
                before = score[row, t:t + 1]
                if combine is None:
                    score[row, t] = (before + w)[0]
                else:
                    score[row, t] = combine(before, w)[0] if seen[row, t] else w[0]
                seen[row, t] = True
    if aggregate == "average":
        with np.errstate(invalid="ignore"):  # no trees: 0 / 0, as the generated code
            score = score / np.array(roots.size, x.dtype)
    return score
