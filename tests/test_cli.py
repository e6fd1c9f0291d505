"""cerebroc compile / run / inspect end to end, and its error behaviour."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest


def cerebroc(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cerebro.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "model.py").write_text(textwrap.dedent("""
        import jax, jax.numpy as jnp
        W = jnp.arange(12.0, dtype=jnp.float32).reshape(3, 4) / 10

        def predict(x, y):
            return jax.nn.softmax(jnp.tanh(x @ W) + y)
    """))
    result = cerebroc("compile", tmp / "model.py:predict", "--arg", "2x3:float32", "--arg", "2x4:float32",
                      "-o", tmp / "m.cbx")
    assert result.returncode == 0, result.stderr
    return tmp


def reference(x, y):
    w = np.arange(12.0, dtype=np.float32).reshape(3, 4) / 10
    return np.asarray(jax.nn.softmax(np.tanh(x @ w) + y))


def test_run_matches_reference(compiled):
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    y = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    np.save(compiled / "x.npy", x)
    np.save(compiled / "y.npy", y)
    result = cerebroc("run", compiled / "m.cbx", "--input", compiled / "x.npy", "--input", compiled / "y.npy",
                      "--output", compiled / "out.npz")
    assert result.returncode == 0, result.stderr
    (out,) = np.load(compiled / "out.npz").values()
    np.testing.assert_allclose(out, reference(x, y), rtol=1e-5, atol=1e-6)
    printed = cerebroc("run", compiled / "m.cbx", "-i", compiled / "x.npy", "-i", compiled / "y.npy")
    assert "float32[2, 4]" in printed.stdout


def test_inspect_json_and_ir(compiled):
    info = json.loads(cerebroc("inspect", compiled / "m.cbx", "--json").stdout)
    assert [t["shape"] for t in info["inputs"]] == [[2, 3], [2, 4]]
    assert info["outputs"][0]["dtype"] == "float32" and len(info["hash"]) == 64 and info["parts"] == 256
    ir_text = cerebroc("inspect", compiled / "m.cbx", "--ir").stdout
    assert "matmul" in ir_text and "tanh" in ir_text and "model.py" in ir_text
    text = cerebroc("inspect", compiled / "m.cbx").stdout
    assert "arena" in text and "threads per call: up to 256" in text


@pytest.mark.parametrize("args, message", [
    (["compile", "nope.py:f", "--arg", "1:float32", "-o", "x.cbx"], "no such file"),
    (["compile", "{tmp}/model.py:missing", "--arg", "1:float32", "-o", "x.cbx"], "no function"),
    (["compile", "{tmp}/model.py:predict", "--arg", "2x3", "-o", "x.cbx"], "SHAPE:DTYPE"),
    (["compile", "{tmp}/model.py:predict", "--arg", "2x3:float32", "--arg", "2x4:float32", "-o", "x.cbx",
      "--target", "sparc"], "sparc"),
    (["run", "{tmp}/model.py"], "cbx"),
    (["run", "{tmp}/m.cbx", "-i", "{tmp}/x.npy"], "2 inputs"),
    (["inspect", "{tmp}/missing.cbx"], "missing.cbx"),
])
def test_errors_are_one_line_without_traceback(compiled, args, message):
    np.save(compiled / "x.npy", np.zeros((2, 3), np.float32))
    result = cerebroc(*[a.format(tmp=compiled) for a in args], cwd=compiled)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("cerebroc: error:") and len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr


def test_help_lists_commands():
    result = cerebroc("--help")
    assert result.returncode == 0
    for command in ("compile", "run", "inspect"):
        assert command in result.stdout
