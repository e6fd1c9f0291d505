"""`cerebroc compile FILE.py:FUNC` takes the compile cache's jaxpr key (cache.cached_lower): a second
compile of the same function in a new process is a hit that never lowers the jaxpr."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from cerebro import cli

MODEL = textwrap.dedent("""
    import jax.numpy as jnp
    W = jnp.arange(12.0, dtype=jnp.float32).reshape(3, 4) / 10

    def predict(x):
        return jnp.tanh(x @ W)
""")

# The second process: lowering raises, so only a cache hit can write the file.
SECOND_COMPILE = textwrap.dedent("""
    import importlib, sys
    from cerebro import cli

    def refuse(*args, **kwargs):
        raise AssertionError("lowered again: the compile cache did not serve this function")

    importlib.import_module("cerebro.frontends.jax.tracer").lower = refuse
    sys.exit(cli.main(sys.argv[1:]))
""")


def test_second_compile_of_a_function_is_a_hit_that_never_lowers(tmp_path, monkeypatch):
    monkeypatch.setenv("CEREBRO_COMPILE_CACHE", "1")
    monkeypatch.setenv("CEREBRO_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "model.py").write_text(MODEL)
    source = f"{tmp_path / 'model.py'}:predict"
    assert cli.main(["compile", source, "--arg", "2x3:f32", "-o", str(tmp_path / "first.cbx"), "-q"]) == 0
    proc = subprocess.run([sys.executable, "-c", SECOND_COMPILE, "compile", source, "--arg", "2x3:f32",
                           "-o", str(tmp_path / "second.cbx"), "-q"],
                          capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "second.cbx").read_bytes() == (tmp_path / "first.cbx").read_bytes()
