"""ai.onnx.ml tree ensembles (TreeEnsemble, TreeEnsembleRegressor, TreeEnsembleClassifier) as the IR's
tree_ensemble op.

Every form becomes one table (compiler/ir/tree_ensemble.py): nodes numbered globally, a child that
is a leaf written ~leaf, each leaf owning a run of (target, weight) entries. The tables are checked
here (indices in range, every tree a tree: no cycle), so a malformed model fails naming its node;
base values are an add after the op. Comparisons run in x's type: float32 or float64 (integer
inputs of the regressor are compared as float32, as ONNX Runtime does).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cerebro.compiler.ir import DType, Value
from cerebro.compiler.ir.tree_ensemble import MISSING_GOES_TRUE, MODES, NODE_COLUMNS
from cerebro.frontends.onnx import build as b
from cerebro.frontends.onnx.rules.ml import ML
from cerebro.frontends.onnx.table import Ctx, rule

AGGREGATES = {0: "average", 1: "sum", 2: "min", 3: "max"}  # TreeEnsemble's aggregate_function
MODE_NAMES = {"BRANCH_LEQ": "leq", "BRANCH_LT": "lt", "BRANCH_GTE": "gte", "BRANCH_GT": "gt", "BRANCH_EQ": "eq",
              "BRANCH_NEQ": "neq", "BRANCH_MEMBER": "member"}
POST_TRANSFORMS = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")  # TreeEnsemble numbers them so

LIMITS = {
    "ai.onnx.ml.TreeEnsemble": "post_transform NONE; float32/float64 inputs",
    "ai.onnx.ml.TreeEnsembleRegressor": "post_transform NONE",
    "ai.onnx.ml.TreeEnsembleClassifier": "post_transform NONE; three or more classes, int64 labels; without "
                                         "base_values every leaf weighs every class",
}


@dataclass
class Forest:
    """The tables under construction; children and roots are node indices, or ~leaf."""

    modes: list[int] = field(default_factory=list)
    features: list[int] = field(default_factory=list)
    splits: list[float] = field(default_factory=list)
    yes: list[int] = field(default_factory=list)
    no: list[int] = field(default_factory=list)
    member_ranges: list[tuple[int, int]] = field(default_factory=list)
    members: list[float] = field(default_factory=list)
    roots: list[int] = field(default_factory=list)
    bounds: list[int] = field(default_factory=lambda: [0])
    targets: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)

    def add_leaf(self, entries: list[tuple[int, float]]) -> int:
        """A new leaf with its (target, weight) entries; returns its child code ~leaf."""
        for target, weight in entries:
            self.targets.append(target)
            self.weights.append(weight)
        self.bounds.append(len(self.targets))
        return ~(len(self.bounds) - 2)

    def check(self, ctx: Ctx, features: int, n_targets: int) -> None:
        """Every index in range and every root reaching leaves without meeting a node twice."""
        m = len(self.modes)
        for i, (feature, yes, no) in enumerate(zip(self.features, self.yes, self.no)):
            if not 0 <= feature < features:
                raise ctx.error(f"tree node {i} tests feature {feature}, but x has {features}")
            for child in (yes, no):
                if child >= m:
                    raise ctx.error(f"tree node {i} has child {child}, but there are {m} nodes")
        bad = [t for t in self.targets if not 0 <= t < n_targets]
        if bad:
            raise ctx.error(f"leaf target {bad[0]} is outside 0..{n_targets - 1} (n_targets {n_targets})")
        for root in self.roots:
            self._check_tree(ctx, root)

    def _check_tree(self, ctx: Ctx, root: int) -> None:
        seen, stack = set(), [root]
        while stack:
            at = stack.pop()
            if at < 0:
                continue
            if at in seen:
                raise ctx.error(f"tree rooted at node {root} reaches node {at} twice (not a tree)")
            seen.add(at)
            stack += [self.yes[at], self.no[at]]

    def build(self, ctx: Ctx, x: Value, n_targets: int, aggregate: str) -> Value:
        real = x.dtype.numpy
        nodes = np.zeros((len(self.modes), NODE_COLUMNS), np.int32)
        if len(self.modes):
            nodes[:] = np.array([self.modes, self.features, self.yes, self.no, *zip(*self.member_ranges)]).T
        tables = [(nodes, DType.i32), (np.array(self.splits, real), x.dtype),
                  (np.array(self.roots, np.int32), DType.i32), (np.array(self.bounds, np.int32), DType.i32),
                  (np.array(self.targets, np.int32), DType.i32), (np.array(self.weights, real), x.dtype),
                  (np.array(self.members, real), x.dtype)]
        return ctx.add("tree_ensemble", x, *(ctx.const(a, d) for a, d in tables),
                       n_targets=n_targets, aggregate=aggregate)


def _rows(ctx: Ctx, x: Value) -> Value:
    if x.rank != 2:
        raise ctx.error(f"x must be [rows, features], got shape {x.shape}")
    return x


def _no_post_transform(ctx: Ctx, name: str) -> None:
    if name != "NONE":
        raise ctx.error(f"post_transform {name} is not supported (NONE only)")


@rule("TreeEnsemble", since=5, domain=ML)
def tree_ensemble(ctx: Ctx, x: Value) -> Value:
    """Nodes as given; a MEMBER node's set is the next NaN-terminated run of membership_values (in node order)."""
    x = _rows(ctx, x)
    if x.dtype not in (DType.f32, DType.f64):
        raise ctx.error(f"x is {x.dtype.name}; TreeEnsemble is supported on float32 and float64")
    _no_post_transform(ctx, POST_TRANSFORMS[int(ctx.attr("post_transform", 0))])
    forest = Forest()
    modes = [int(m) for m in np.asarray(ctx.attr("nodes_modes")).ravel()]
    m = len(modes)
    tracks = list(ctx.attr("nodes_missing_value_tracks_true", [0] * m))
    sets = _member_sets(ctx, np.asarray(ctx.attr("membership_values", np.zeros(0))).ravel())
    weights = np.asarray(ctx.attr("leaf_weights")).ravel()
    for target, weight in zip(ctx.attr("leaf_targetids"), weights, strict=True):
        forest.add_leaf([(int(target), float(weight))])
    for i, mode in enumerate(modes):
        if not 0 <= mode < len(MODES):
            raise ctx.error(f"tree node {i} has mode {mode} (0..{len(MODES) - 1})")
        forest.modes.append(mode | (MISSING_GOES_TRUE if tracks[i] else 0))
        start = len(forest.members)
        if MODES[mode] == "member":
            if not sets:
                raise ctx.error(f"tree node {i} is BRANCH_MEMBER, but membership_values has no set left for it")
            forest.members += sets.pop(0)
        forest.member_ranges.append((start, len(forest.members)))
    forest.features = [int(f) for f in ctx.attr("nodes_featureids")]
    forest.splits = [float(s) for s in np.asarray(ctx.attr("nodes_splits")).ravel()]
    leaves = len(weights)
    for side, ids, is_leaf in (("yes", "nodes_truenodeids", "nodes_trueleafs"),
                               ("no", "nodes_falsenodeids", "nodes_falseleafs")):
        children = []
        for i, (child, leaf) in enumerate(zip(ctx.attr(ids), ctx.attr(is_leaf), strict=True)):
            if leaf and not 0 <= child < leaves:
                raise ctx.error(f"tree node {i} leads to leaf {child}, but there are {leaves} leaves")
            children.append(~int(child) if leaf else int(child))
        setattr(forest, side, children)
    forest.roots = [int(r) for r in ctx.attr("tree_roots")]
    lengths = {len(forest.features), len(forest.splits), len(forest.yes), len(forest.no), m}
    if any(not 0 <= r < m for r in forest.roots) or len(lengths) != 1:
        raise ctx.error(f"tree_roots {forest.roots} or the nodes_* lists do not fit {m} nodes")
    n_targets = int(ctx.attr("n_targets"))
    forest.check(ctx, x.shape[1], n_targets)
    return forest.build(ctx, x, n_targets, AGGREGATES[int(ctx.attr("aggregate_function", 1))])


def _member_sets(ctx: Ctx, values: np.ndarray) -> list[list[float]]:
    """membership_values split at its NaNs (a trailing NaN ends the last set)."""
    sets, current = [], []
    for v in values.tolist():
        if np.isnan(v):
            sets.append(current)
            current = []
        else:
            current.append(v)
    if current:
        sets.append(current)
    return sets


@rule("TreeEnsembleRegressor", domain=ML)
def tree_ensemble_regressor(ctx: Ctx, x: Value) -> Value:
    """Nodes named (tree id, node id); LEAF nodes own the target entries naming them; each tree's root
    is its one node no other names as a child. Output float32 (+ base_values)."""
    n_targets = int(ctx.attr("n_targets", 1))
    x, forest = _named_ensemble(ctx, x, "target", n_targets)
    aggregate = ctx.attr("aggregate_function", "SUM").lower()
    if aggregate not in AGGREGATES.values():
        raise ctx.error(f"aggregate_function {aggregate.upper()} is not one of AVERAGE, SUM, MIN, MAX")
    return b.cast(ctx, _plus_base(ctx, forest.build(ctx, x, n_targets, aggregate)), DType.f32)


@rule("TreeEnsembleClassifier", domain=ML)
def tree_ensemble_classifier(ctx: Ctx, x: Value) -> list[Value]:
    """Three or more classes: scores are the sums of the leaves' class weights (+ base_values), the label
    is classlabels_int64s at the first highest score. ONNX Runtime leaves a class no leaf gave out of
    that choice, so without base_values every leaf must weigh every class (as sklearn exports do)."""
    labels = ctx.attr("classlabels_int64s")
    if labels is None:
        raise ctx.error("string class labels (classlabels_strings) are not supported; int64 labels only")
    if len(labels) < 3:
        raise ctx.error(f"{len(labels)} classes: ONNX Runtime's binary-classifier conventions are not supported "
                        "(three or more classes)")
    x, forest = _named_ensemble(ctx, x, "class", len(labels))
    if not _floats(ctx, "base_values"):
        for leaf, (lo, hi) in enumerate(zip(forest.bounds, forest.bounds[1:])):
            if set(forest.targets[lo:hi]) != set(range(len(labels))):
                raise ctx.error(f"leaf {leaf} does not weigh every class, and there are no base_values "
                                "(ONNX Runtime's label would skip the classes no leaf gave)")
    scores = _plus_base(ctx, forest.build(ctx, x, len(labels), "sum"))
    best = ctx.add("argmax", scores, axis=1, index_dtype=DType.i64)
    return [ctx.add("take", ctx.const(np.array(labels, np.int64)), best, axis=0), b.cast(ctx, scores, DType.f32)]


def _named_ensemble(ctx: Ctx, x: Value, prefix: str, n_targets: int) -> tuple[Value, Forest]:
    """x as compared (float64 stays, anything else as float32) and the checked forest whose leaves carry
    the {prefix}_treeids/_nodeids/_ids/_weights entries (the regressor's target_*, the classifier's class_*)."""
    x = _rows(ctx, x)
    _no_post_transform(ctx, ctx.attr("post_transform", "NONE"))
    if x.dtype is not DType.f64:
        x = b.cast(ctx, x, DType.f32)
    entries: dict[tuple[int, int], list[tuple[int, float]]] = {}
    weights = _floats(ctx, f"{prefix}_weights")
    for key in zip(ctx.attr(f"{prefix}_treeids"), ctx.attr(f"{prefix}_nodeids"), ctx.attr(f"{prefix}_ids"), weights,
                   strict=True):
        entries.setdefault((int(key[0]), int(key[1])), []).append((int(key[2]), float(key[3])))
    forest = _named_forest(ctx, entries)
    forest.check(ctx, x.shape[1], n_targets)
    return x, forest


def _plus_base(ctx: Ctx, y: Value) -> Value:
    base = _floats(ctx, "base_values")
    return b.add(ctx, y, ctx.const(np.array(base, y.dtype.numpy).reshape(1, -1), y.dtype)) if base else y


def _floats(ctx: Ctx, name: str) -> list[float]:
    """A float list attribute, or its _as_tensor form (opset 3)."""
    tensor = ctx.attr(f"{name}_as_tensor")
    return [float(v) for v in (np.asarray(tensor).ravel() if tensor is not None else ctx.attr(name, []))]


def _named_forest(ctx: Ctx, entries: dict[tuple[int, int], list[tuple[int, float]]]) -> Forest:
    """The tables of a forest whose nodes are named (tree id, node id), trees in order of first mention."""
    keys = list(zip((int(t) for t in ctx.attr("nodes_treeids")), (int(n) for n in ctx.attr("nodes_nodeids"))))
    modes = ctx.attr("nodes_modes")
    values = _floats(ctx, "nodes_values")
    columns = [modes, values, ctx.attr("nodes_featureids"), ctx.attr("nodes_truenodeids"),
               ctx.attr("nodes_falsenodeids")]
    if any(len(c) != len(keys) for c in columns) or len(set(keys)) != len(keys):
        raise ctx.error("the nodes_* attributes differ in length or name a (tree, node) twice")
    tracks = list(ctx.attr("nodes_missing_value_tracks_true", [0] * len(keys)))
    forest, code, branches = Forest(), {}, 0
    for key, mode in zip(keys, modes):  # every node's code first: children may come after their parent
        if mode == "LEAF":
            code[key] = forest.add_leaf(entries.get(key, []))
        elif mode not in MODE_NAMES or MODE_NAMES[mode] == "member":
            raise ctx.error(f"tree {key[0]} node {key[1]} has mode {mode!r}")
        else:
            code[key], branches = branches, branches + 1
    forest = _interior(ctx, forest, keys, code, columns, tracks)
    referenced = {(key[0], int(child)) for key, mode, *_, yes, no in zip(keys, *columns)
                  if mode != "LEAF" for child in (yes, no)}
    for tree in dict.fromkeys(t for t, _ in keys):
        roots = [key for key in keys if key[0] == tree and key not in referenced]
        if len(roots) != 1:
            raise ctx.error(f"tree {tree} has {len(roots)} roots (nodes no other node names as a child)")
        forest.roots.append(code[roots[0]])
    return forest


def _interior(ctx: Ctx, forest: Forest, keys: list, code: dict, columns: list, tracks: list) -> Forest:
    """The branch nodes' rows, in their numbering (code >= 0)."""
    for key, mode, value, feature, yes, no, track in zip(keys, *columns, tracks):
        if mode == "LEAF":
            continue
        children = []
        for child in (yes, no):
            if (key[0], int(child)) not in code:
                raise ctx.error(f"tree {key[0]} node {key[1]} names child {child}, which the tree does not have")
            children.append(code[(key[0], int(child))])
        forest.modes.append(MODES.index(MODE_NAMES[mode]) | (MISSING_GOES_TRUE if track else 0))
        forest.features.append(int(feature))
        forest.splits.append(value)
        forest.yes.append(children[0])
        forest.no.append(children[1])
        forest.member_ranges.append((0, 0))
    return forest
