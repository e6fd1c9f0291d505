"""Whole models and every shared JAX case, compiled to native code and compared with jax.jit.

Host: each case of tests/jax_cases.py is traced, built for the host, run by the
user-space runtime and compared with jax.jit at the case's tolerances. Flax
variables are closed over, so they are compiled in as weights (the path a real
deployment takes). aarch64: the models are built for aarch64 and run with
cbxrun under qemu-aarch64-static.
"""

from __future__ import annotations

import functools
import subprocess

import jax
import numpy as np
import pytest
from jax_cases import CASE_NAMES, assert_outputs_match, get_case
from native import aarch64_runner

from cerebro import runtime
from cerebro.compiler import build
from cerebro.frontends.jax import trace

AARCH64_MODELS = ["model_mlp", "model_cnn", "model_transformer_block", "model_resnet18", "flax_embed",
                  "flax_conv_depthwise"]


def _as_compiled(name: str) -> tuple:
    """(function of the runtime inputs, runtime inputs, case): flax variables become constants."""
    case = get_case(name)
    if case.args and isinstance(case.args[0], dict):
        variables = case.args[0]
        return functools.partial(case.fn, variables), case.args[1:], case
    return case.fn, case.args, case


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_on_host(name: str) -> None:
    fn, args, case = _as_compiled(name)
    traced = trace(fn, *args, name=name)
    model = runtime.load(build(traced.graph))
    got = model(*traced.flatten_inputs(*args))
    assert_outputs_match(got, jax.jit(fn)(*args), case.rtol, case.atol, name)


@pytest.fixture(scope="module")
def cbxrun_aarch64(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return aarch64_runner(tmp_path_factory.mktemp("cbxrun-aarch64"))


@pytest.mark.parametrize("name", AARCH64_MODELS)
def test_model_on_aarch64(name: str, cbxrun_aarch64, tmp_path) -> None:
    """The same models compiled for aarch64 and run under qemu give jax.jit's results."""
    fn, args, case = _as_compiled(name)
    traced = trace(fn, *args, name=name)
    model_path = tmp_path / "model.cbx"
    model_path.write_bytes(build(traced.graph, target="aarch64"))
    inputs = traced.flatten_inputs(*args)
    paths = []
    for k, array in enumerate(inputs):
        path = tmp_path / f"in{k}.bin"
        path.write_bytes(np.ascontiguousarray(array).tobytes())
        paths.append(str(path))
    out_path = tmp_path / "out.bin"
    result = subprocess.run([*cbxrun_aarch64, str(model_path), *paths, "-o", str(out_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    raw = out_path.read_bytes()
    got, at = [], 0
    for spec in traced.graph.outputs:
        got.append(np.frombuffer(raw[at:at + spec.nbytes], spec.dtype.numpy).reshape(spec.shape))
        at += spec.nbytes
    assert at == len(raw)
    assert_outputs_match(got, jax.jit(fn)(*args), case.rtol, case.atol, f"{name} on aarch64")
