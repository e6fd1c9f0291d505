"""Flax versions of zoo architectures from installed packages, for the XLA column: the same architecture
with its own random weights (so XLA's output is checked against JAX eager, not against PyTorch's).
flaxmodels' GPT-2 would be a third, but version 0.1.3 calls jnp.reshape(newshape=...), which jax 0.10 removed."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.models import Workload, _flax, _input, resnet18


def resnet50(batch: int) -> Workload:
    from jax_resnet import ResNet50

    return _flax("resnet50", ResNet50(n_classes=1000), _input((batch, 224, 224, 3)))


TWINS: dict[str, tuple[Callable[[int], Workload], str]] = {
    "resnet18": (resnet18, "jax_resnet ResNet18, NHWC input"),
    "resnet50": (resnet50, "jax_resnet ResNet50, NHWC input"),
}
