"""The JAX/Flax frontend: jax.make_jaxpr, then one lowering rule per primitive into the IR."""

from cerebro.frontends.jax.context import UnsupportedPrimitive
from cerebro.frontends.jax.tracer import RULES, InputSpec, Traced, trace

__all__ = ["RULES", "InputSpec", "Traced", "UnsupportedPrimitive", "trace"]
