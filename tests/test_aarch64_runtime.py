"""cbxrun, the standalone runner: aarch64 models under qemu-aarch64-static, and the host build.

The aarch64 build uses Debian's cross compiler (gcc-aarch64-linux-gnu, static) and runs under
qemu-user-static; results are compared with numpy exactly (each op is one IEEE f32 operation).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import native
import numpy as np
import pytest
from cbx_fixtures import AFFINE, COPY, HOST_ARCH, STAGED, TWO_IO, build, built, patch, random_inputs, section

from cerebro.toolchain import build_cbxrun


@pytest.fixture(scope="module")
def aarch64_runner(tmp_path_factory) -> list[str]:
    return native.aarch64_runner(tmp_path_factory.mktemp("cbxrun-aarch64"))


@pytest.fixture(scope="module")
def host_runner(tmp_path_factory) -> list[str]:
    if HOST_ARCH == "unsupported":
        pytest.skip("the runtime supports x86-64 and aarch64 hosts")
    arch = HOST_ARCH if HOST_ARCH == "x86_64" else "aarch64"
    return [str(build_cbxrun(arch, tmp_path_factory.mktemp("cbxrun-host")))]


def run_cbxrun(runner: list[str], data: bytes, inputs: list[np.ndarray], tmp: Path) -> subprocess.CompletedProcess:
    model = tmp / "model.cbx"
    model.write_bytes(data)
    paths = []
    for index, array in enumerate(inputs):
        path = tmp / f"in{index}.bin"
        path.write_bytes(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes())
        paths.append(str(path))
    return subprocess.run([*runner, str(model), *paths, "-o", str(tmp / "out.bin")],
                          capture_output=True, text=True, timeout=60)


def split_outputs(raw: bytes, expected: list[np.ndarray]) -> list[np.ndarray]:
    assert len(raw) == sum(e.nbytes for e in expected)
    out, at = [], 0
    for e in expected:
        out.append(np.frombuffer(raw[at:at + e.nbytes], e.dtype.newbyteorder("<")).reshape(e.shape))
        at += e.nbytes
    return out


@pytest.mark.parametrize("model", [AFFINE, TWO_IO, STAGED, COPY], ids=lambda m: m.name)
def test_aarch64_models_match_numpy(model, aarch64_runner, tmp_path):
    inputs = random_inputs(model, seed=7)
    result = run_cbxrun(aarch64_runner, built(model, "aarch64"), inputs, tmp_path)
    assert result.returncode == 0, result.stderr
    for got, want in zip(split_outputs((tmp_path / "out.bin").read_bytes(), model.reference(*inputs)),
                         model.reference(*inputs)):
        np.testing.assert_array_equal(got, want)


def test_aarch64_runner_checks_cpu_features(aarch64_runner, tmp_path):
    """A Cortex-A53 has NEON but no SVE: a model compiled for SVE is refused, not run into SIGILL."""
    if aarch64_runner[0] != native.QEMU:
        pytest.skip("needs qemu to pick the emulated CPU")
    a53 = [native.QEMU, "-cpu", "cortex-a53", *aarch64_runner[1:]]
    inputs = random_inputs(AFFINE)
    ok = run_cbxrun(a53, build(AFFINE, "aarch64", features="+neon,+fp-armv8"), inputs, tmp_path)
    assert ok.returncode == 0, ok.stderr
    refused = run_cbxrun(a53, build(AFFINE, "aarch64", features="+neon,+sve"), inputs, tmp_path)
    assert refused.returncode == 1
    assert "this CPU lacks 'sve', which the model was compiled for (features +neon,+sve)" in refused.stderr


def test_aarch64_runner_refuses_x86_64_models(aarch64_runner, tmp_path):
    result = run_cbxrun(aarch64_runner, built(AFFINE, "x86_64"), random_inputs(AFFINE), tmp_path)
    assert result.returncode == 1
    assert "wrong machine: file is x86-64, host is aarch64" in result.stderr


def test_host_runner_matches_numpy(host_runner, tmp_path):
    inputs = random_inputs(TWO_IO, seed=3)
    result = run_cbxrun(host_runner, built(TWO_IO), inputs, tmp_path)
    assert result.returncode == 0, result.stderr
    for got, want in zip(split_outputs((tmp_path / "out.bin").read_bytes(), TWO_IO.reference(*inputs)),
                         TWO_IO.reference(*inputs)):
        np.testing.assert_array_equal(got, want)


def test_host_runner_reports_errors(host_runner, tmp_path):
    data = built(AFFINE)
    text = section(data, ".text")
    corrupt = patch(data, text.offset, bytes([data[text.offset] ^ 1]), reseal=False)
    result = run_cbxrun(host_runner, corrupt, random_inputs(AFFINE), tmp_path)
    assert result.returncode == 1 and "corrupt .cbx: content hash mismatch" in result.stderr
    result = run_cbxrun(host_runner, data, [np.zeros(3, np.float32)], tmp_path)
    assert result.returncode == 1 and "input 'x'" in result.stderr and "expected 32 bytes, got 12" in result.stderr
    result = run_cbxrun(host_runner, data, [], tmp_path)
    assert result.returncode == 2 and "model takes 1 inputs, got 0" in result.stderr
    usage = subprocess.run(host_runner, capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "usage: cbxrun" in usage.stderr
