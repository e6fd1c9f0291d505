"""Importing this package fills the rule table (table.RULES), one module per family of ops."""

from cerebro.frontends.onnx.rules import (  # noqa: F401
    control,
    einsum,
    elementwise,
    ml,
    nn,
    pooling,
    quant,
    reduce,
    resize,
    rnn,
    sampling,
    shape,
    sorting,
    trees,
)
