"""The JAX/Flax frontend: jax.make_jaxpr, then one lowering rule per primitive into the IR.

    traced = trace(lambda variables, x: model.apply(variables, x), variables, x)
    traced.graph                     # verified cerebro IR Graph
    traced.run_reference(variables, x)  # numpy interpreter, same pytrees in and out

tracer.py drives the lowering and inlines nested jaxprs (jit, custom_jvp/vjp,
remat); calls.py splits a call into static and traced arguments (static_argnums/
static_argnames, as jax.jit) and describes its pytrees for the .cbx; the rule tables are
rules_elementwise, rules_structural, rules_gather, rules_nn and rules_control (scan unrolled, cond as select).
"""

from cerebro.frontends.jax.context import UnsupportedPrimitive
from cerebro.frontends.jax.tracer import RULES, InputSpec, Traced, trace

__all__ = ["RULES", "InputSpec", "Traced", "UnsupportedPrimitive", "trace"]
