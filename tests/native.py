"""Helpers for tests that run compiled code: on the host against jax.jit, and for aarch64 under cbxrun."""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

import numpy as np
import pytest

from cerebro import runtime
from cerebro.compiler import driver
from cerebro.toolchain import build_cbxrun

QEMU = "qemu-aarch64-static"
CROSS_CC = "aarch64-linux-gnu-gcc"
CROSS_PACKAGES = "gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static"
ON_AARCH64 = platform.machine().lower() in ("aarch64", "arm64")


def aarch64_runner(directory: Path) -> list[str]:
    """The command that runs an aarch64 .cbx: cbxrun built for aarch64, under qemu off aarch64 hosts.
    Skips where the cross tools are missing and cannot be installed; as root (where scripts/setup.sh
    installs them) their absence is a failure."""
    missing = [tool for tool in (CROSS_CC, *(() if ON_AARCH64 else (QEMU,))) if shutil.which(tool) is None]
    if missing and os.geteuid() != 0:
        pytest.skip(f"{', '.join(missing)} missing and not root to install them (Debian: {CROSS_PACKAGES})")
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run scripts/setup.sh as root (apt-get install {CROSS_PACKAGES})")
    exe = str(build_cbxrun("aarch64", directory))
    return [exe] if ON_AARCH64 else [QEMU, exe]


def run_against_jit(fn, *args, name: str = "model") -> tuple[list, np.ndarray, np.ndarray]:
    """(the optimised graph's nodes, Cerebro's output, jax.jit's output) for a one-output fn."""
    import jax

    from cerebro.frontends.jax import trace

    traced = trace(fn, *args, name=name)
    graph, *_ = driver.lower(traced.graph)
    (got,) = runtime.load(driver.build(traced.graph))(*traced.flatten_inputs(*args))
    return graph.nodes, got, np.asarray(jax.jit(fn)(*args))
