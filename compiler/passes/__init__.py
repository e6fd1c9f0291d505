"""Graph passes run before code generation, and the static memory plan."""

from cerebro.compiler.passes.dce import eliminate_dead_nodes
from cerebro.compiler.passes.fold import fold_constants
from cerebro.compiler.passes.fuse import fuse_elementwise
from cerebro.compiler.passes.memplan import plan_memory

__all__ = ["eliminate_dead_nodes", "fold_constants", "fuse_elementwise", "plan_memory"]
