"""The benchmarked models, written once in Flax with random weights closed over as constants.

Each entry of WORKLOADS maps a name to a builder `(batch) -> Workload`; the same Flax
function feeds XLA (jax.jit), Cerebro (cerebro.compile) and, through benchmarks.to_onnx,
ONNX Runtime, so all three run the same weights (MiniLM, ONNX from PyTorch, is in benchmarks.minilm).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

SEED = 0


@dataclass
class Workload:
    """One model at one batch size: a function of arrays with its weights baked in."""

    name: str
    fn: Callable[..., jax.Array] | None
    inputs: tuple[np.ndarray, ...]
    flops: float = 0.0  # multiply-adds counted twice; 0 where not worth counting
    onnx: bytes | None = None  # set for models that exist only as ONNX (fn is then None)
    reference: np.ndarray | None = None  # expected output where JAX cannot compute it
    reference_name: str = "JAX (eager, op by op)"
    notes: list[str] = field(default_factory=list)
    calls_per_sample: int = 1  # calls timed together (a sample's time / this): calls far below the clock's step


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(512)(x))
        x = nn.relu(nn.Dense(512)(x))
        return nn.Dense(10)(x)


class SmallCNN(nn.Module):
    """LeNet-sized convnet on 28x28x1 inputs (NHWC)."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(32, (3, 3), padding="SAME")(x))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = nn.relu(nn.Conv(64, (3, 3), padding="SAME")(x))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(128)(x))
        return nn.Dense(10)(x)


class EncoderLayer(nn.Module):
    """Pre-LayerNorm transformer encoder layer (self-attention + GELU MLP)."""

    d_model: int
    heads: int
    mlp: int

    @nn.compact
    def __call__(self, x):
        h = nn.LayerNorm()(x)
        x = x + nn.MultiHeadDotProductAttention(num_heads=self.heads, qkv_features=self.d_model)(h, h)
        h = nn.LayerNorm()(x)
        h = nn.Dense(self.d_model)(nn.gelu(nn.Dense(self.mlp)(h)))
        return x + h


class Encoder(nn.Module):
    d_model: int = 128
    heads: int = 4
    layers: int = 2
    mlp: int = 512

    @nn.compact
    def __call__(self, x):
        for _ in range(self.layers):
            x = EncoderLayer(self.d_model, self.heads, self.mlp)(x)
        return nn.LayerNorm()(x)


def _flax(name: str, module: nn.Module, example: np.ndarray, flops: float = 0.0) -> Workload:
    variables = module.init(jax.random.PRNGKey(SEED), jnp.asarray(example))
    variables = jax.tree_util.tree_map(np.asarray, variables)  # plain numpy: constants in every trace

    def fn(x):
        return module.apply(variables, x)

    fn.__name__ = name
    return Workload(name, fn, (example,), flops)


def _input(shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(SEED).standard_normal(shape, dtype=np.float32)


def mlp(batch: int) -> Workload:
    return _flax("mlp", MLP(), _input((batch, 784)), 2.0 * batch * (784 * 512 + 512 * 512 + 512 * 10))


def cnn(batch: int) -> Workload:
    return _flax("cnn", SmallCNN(), _input((batch, 28, 28, 1)))


def resnet18(batch: int) -> Workload:
    from jax_resnet import ResNet18

    return _flax("resnet18", ResNet18(n_classes=1000), _input((batch, 224, 224, 3)), 2 * 1.82e9 * batch)


def transformer(batch: int) -> Workload:
    return _flax("transformer", Encoder(), _input((batch, 128, 128)))


def sgemm(batch: int) -> Workload:
    """x @ w at 1024^3 (batch is ignored: the row is one fixed size)."""
    del batch
    n = 1024
    w = _input((n, n)) / np.float32(np.sqrt(n))

    def fn(x):
        return x @ w

    fn.__name__ = "sgemm"
    return Workload("sgemm", fn, (_input((n, n)),), 2.0 * n**3)


def dispatch(batch: int) -> Workload:
    """x + 1 on 8 floats: what a call costs around its kernel (argument checks, outputs, the call itself)."""
    del batch

    def fn(x):
        return x + 1

    fn.__name__ = "dispatch"
    return Workload("dispatch", fn, (_input((8,)),), calls_per_sample=DISPATCH_CALLS)


def minilm(batch: int) -> Workload:
    from benchmarks.minilm import workload as minilm_workload  # needs torch; imported only when asked for

    return minilm_workload(batch)


WORKLOADS: dict[str, Callable[[int], Workload]] = {
    "mlp": mlp,
    "cnn": cnn,
    "resnet18": resnet18,
    "transformer": transformer,
    "minilm": minilm,
    "sgemm": sgemm,
    "dispatch": dispatch,
}
DISPATCH_CALLS = 100
# Backends per workload (default: all three); sgemm compares with numpy's OpenBLAS instead of ORT.
BACKENDS_FOR = {"sgemm": ("cerebro", "xla", "numpy"), "minilm": ("cerebro", "xla", "ort"),
               "dispatch": ("cerebro", "cerebro-out", "cerebro-compile", "xla", "ort")}
# Workloads measured once, single-threaded, whatever --batch/--threads say.
FIXED = {"sgemm": (1024, "1"), "dispatch": (1, "1")}


def workload(name: str, batch: int) -> Workload:
    if name not in WORKLOADS:
        raise ValueError(f"unknown benchmark model {name!r}; known: {', '.join(WORKLOADS)}")
    return WORKLOADS[name](batch)
