"""Graph passes run before code generation, and the static memory plan."""

from cerebro.compiler.passes.dce import eliminate_dead_nodes
from cerebro.compiler.passes.fold import fold_constants
from cerebro.compiler.passes.fuse import FUSED, fuse_elementwise
from cerebro.compiler.passes.memplan import MemoryPlan, Place, plan_memory

__all__ = ["FUSED", "MemoryPlan", "Place", "eliminate_dead_nodes", "fold_constants", "fuse_elementwise", "plan_memory"]
