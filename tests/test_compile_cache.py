"""The persistent compile cache (cerebro/cache.py): hits across processes, damaged entries, keys, size bound."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cerebro
import cerebro.cache as cc
from cerebro import _runtime, cli
from cerebro.compiler import driver
from cerebro.frontends.jax import trace
from cerebro.frontends.jax.tracer import capture

RNG = np.random.default_rng(7)
W1 = RNG.standard_normal((16, 32), dtype=np.float32) * 0.3
W2 = RNG.standard_normal((32, 4), dtype=np.float32) * 0.3
X = RNG.standard_normal((2, 16), dtype=np.float32)


def mlp(x):
    return jnp.tanh(x @ W1) @ W2


def expected(x: np.ndarray) -> np.ndarray:
    return np.tanh(x @ W1) @ W2


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """Opt in to the compile cache (tests/conftest.py turns it off), in a directory of this test's own."""
    directory = tmp_path / "compile-cache"
    monkeypatch.setenv("CEREBRO_COMPILE_CACHE", "1")
    monkeypatch.setenv("CEREBRO_CACHE_DIR", str(directory))
    monkeypatch.delenv("CEREBRO_CACHE_MAX_BYTES", raising=False)
    return directory


@pytest.fixture
def builds(monkeypatch) -> list[str]:
    """Records each real compile (compiler.driver.build_sealed) by graph name."""
    seen: list[str] = []
    real = driver.build_sealed

    def counting(graph, *args, **kwargs):
        seen.append(graph.name)
        return real(graph, *args, **kwargs)

    monkeypatch.setattr(driver, "build_sealed", counting)
    return seen


def entries(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.cbx") if not p.name.startswith("."))


# ---- a ResNet50-sized model in a second process ----

SECOND_PROCESS = textwrap.dedent("""
    import sys
    import jax
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    from test_compile_cache import resnet50_sized
    import cerebro
    from cerebro.compiler import driver
    from cerebro.frontends.jax import tracer

    def refuse(*args, **kwargs):
        raise AssertionError("compiled again: the cache did not serve this model")

    driver.build = driver.build_sealed = refuse
    tracer.lower = refuse  # a hit never lowers the jaxpr
    fn, x = resnet50_sized()
    np.testing.assert_allclose(cerebro.compile(fn)(x), jax.jit(fn)(x), rtol=1e-4, atol=1e-4)
    cerebro.compile(fn).export(sys.argv[2], x)
""")


class ResNet50Sized(nn.Module):
    """ResNet50's 25.7 M parameters (103 MB) behind a convolution, batch norm, ReLU and pooling: the
    cache's work (hashing the weights for the key, reading and checking a 103 MB entry, the runtime
    checking it again) is ResNet50's, the compile a few seconds instead of ResNet50's 15+. ResNet50
    itself is timed by benchmarks/compile_cache.py, which also fails if a run misses the cache."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.BatchNorm(use_running_average=True)(nn.Conv(16, (3, 3), strides=2)(x)))
        x = nn.max_pool(x, (2, 2), strides=(2, 2)).reshape((x.shape[0], -1))
        return nn.Dense(10)(nn.relu(nn.Dense(512)(x)))


def resnet50_sized():
    """ResNet50Sized with random weights (the same in every process) and a 224x224 image."""
    model = ResNet50Sized()
    x = np.random.default_rng(1).standard_normal((1, 224, 224, 3), dtype=np.float32)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
    rng = np.random.default_rng(0)
    variables = jax.tree_util.tree_map(lambda s: (rng.standard_normal(s.shape) * 0.02).astype(s.dtype), shapes)
    variables["batch_stats"]["BatchNorm_0"]["var"] = np.abs(variables["batch_stats"]["BatchNorm_0"]["var"]) + 1

    def resnet50_sized(x):
        return model.apply(variables, x)

    return resnet50_sized, x


def test_resnet50_sized_model_served_from_cache_in_a_second_process(cache_dir, tmp_path):
    """A fresh process gets the model from the cache, neither lowering nor compiling it (the child's
    lowering and compiler raise), and computes what jax.jit computes. How long that takes is measured
    by `python -m benchmarks.compile_cache` (docs/architecture.md, compile cache), not here."""
    fn, x = resnet50_sized()
    first = cerebro.compile(fn).export(tmp_path / "first.cbx", x)
    (entry,) = entries(cache_dir)
    assert entry.stat().st_size > 100e6  # ResNet50-sized
    served = tmp_path / "served.cbx"
    proc = subprocess.run([sys.executable, "-c", SECOND_PROCESS, str(Path(__file__).parent), str(served)],
                          capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert served.read_bytes() == first.read_bytes()
    assert entries(cache_dir) == [entry]


def test_runtime_sha256_matches_hashlib():
    """The runtime checks every .cbx with its own SHA-256 (the CPU's SHA instructions where it has them,
    cerebro._runtime.SHA256_HARDWARE): every length around the 64-byte block and the 56-byte padding
    edge, unaligned starts, and a buffer far past one block run."""
    data = RNG.integers(0, 256, (1 << 20) + 200, dtype=np.uint8).tobytes()
    for start in (0, 1, 3):
        for length in [*range(0, 200), 1000, 4095, 4096, 4097, (1 << 20) + 17]:
            chunk = memoryview(data)[start:start + length]
            assert _runtime.sha256(chunk) == hashlib.sha256(chunk).digest(), (start, length)


# ---- the API paths ----


def test_export_of_a_compiled_shape_is_served_from_cache(cache_dir, builds, tmp_path):
    compiled = cerebro.compile(mlp)
    np.testing.assert_allclose(compiled(X), expected(X), rtol=1e-5, atol=1e-5)
    assert builds == ["mlp"]
    path = compiled.export(tmp_path / "mlp.cbx", X)
    assert builds == ["mlp"]  # no second compile
    np.testing.assert_allclose(cerebro.load(path)(X), expected(X), rtol=1e-5, atol=1e-5)
    compiled.export(tmp_path / "mlp3.cbx", np.zeros((3, 16), np.float32))  # a new shape is a new entry
    assert builds == ["mlp", "mlp"]
    assert len(entries(cache_dir)) == 2


def test_cache_dir_and_switches(cache_dir, builds, tmp_path, monkeypatch):
    cerebro.compile(mlp).export(tmp_path / "a.cbx", X)
    assert len(entries(cache_dir)) == 1
    cerebro.compile(mlp, cache=False).export(tmp_path / "b.cbx", X)
    monkeypatch.setenv("CEREBRO_COMPILE_CACHE", "0")
    cerebro.compile(mlp).export(tmp_path / "c.cbx", X)
    assert builds == ["mlp", "mlp", "mlp"]  # both switches compiled afresh
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv("CEREBRO_COMPILE_CACHE", "1")
    monkeypatch.setenv("CEREBRO_CACHE_DIR", str(elsewhere))
    cerebro.compile(mlp).export(tmp_path / "d.cbx", X)
    assert len(entries(elsewhere)) == 1 and len(entries(cache_dir)) == 1
    monkeypatch.delenv("CEREBRO_CACHE_DIR")
    monkeypatch.setenv("CEREBRO_CACHE", str(tmp_path / "root"))  # the root Cerebro caches everything under
    assert cc.compile_cache_dir() == tmp_path / "root" / "compile"


def test_unwritable_cache_does_not_fail_the_compile(cache_dir, monkeypatch, tmp_path, capfd):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("CEREBRO_CACHE_DIR", str(blocker))
    capfd.readouterr()
    np.testing.assert_allclose(cerebro.compile(mlp)(X), expected(X), rtol=1e-5, atol=1e-5)
    assert "cannot write the compile cache" in capfd.readouterr().err


# ---- damaged entries ----


def _flip_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize("damage", [_flip_middle, _truncate, _empty])
def test_damaged_entry_is_detected_and_rebuilt(cache_dir, builds, capfd, damage):
    graph = trace(mlp, X).graph
    good = cc.cached_build(graph)
    (entry,) = entries(cache_dir)
    damage(entry)
    capfd.readouterr()
    data = cc.cached_build(graph)
    warning = capfd.readouterr().err
    assert "damaged" in warning and entry.name in warning and len(warning.strip().splitlines()) == 1
    assert builds == ["mlp", "mlp"]  # compiled again rather than loaded
    assert data == good and entry.read_bytes() == good  # and the entry is whole again
    np.testing.assert_allclose(cerebro.load(data)(X), expected(X), rtol=1e-5, atol=1e-5)


# ---- what the key covers ----


def test_key_covers_weights_target_options_and_compiler(monkeypatch):
    from cerebro.compiler.targets import resolve_target

    x86, arm = resolve_target("x86_64"), resolve_target("aarch64")
    graph = trace(mlp, X).graph
    key = cc.graph_key(graph, x86, {"stage_flops": 1})
    assert cc.graph_key(trace(mlp, X).graph, x86, {"stage_flops": 1}) == key  # deterministic
    changed = trace(mlp, X).graph
    weight = next(c for c in changed.constants() if c.data.size > 1)
    weight.data = weight.data.copy()
    weight.data.flat[5] += np.float32(1e-3)
    assert cc.graph_key(changed, x86, {"stage_flops": 1}) != key
    assert cc.graph_key(graph, arm, {"stage_flops": 1}) != key
    assert cc.graph_key(graph, x86, {"stage_flops": 2}) != key
    monkeypatch.setattr(cc, "compiler_fingerprint", lambda: "an edited compiler")
    assert cc.graph_key(graph, x86, {"stage_flops": 1}) != key


def _fingerprint(fn, *args, **kwargs) -> str:
    return capture(fn, *args, **kwargs).fingerprint()


def _scaled(scale):
    def fn(x):
        return jnp.tanh(x @ W1) * scale

    return fn


def _inner_weight(w):
    inner = jax.jit(lambda x: x @ w)  # a nested jaxpr whose constant is the weight

    def fn(x):
        return jax.lax.cond(x.sum() > 0, lambda v: inner(v), lambda v: -inner(v), x)

    return fn


def test_jaxpr_key_covers_what_the_graph_is_made_from():
    """A hit never lowers, so the jaxpr key must change with everything the lowering reads."""
    key = _fingerprint(mlp, X)
    assert _fingerprint(mlp, X.copy()) == key  # the inputs' values are not compiled in
    changed = [
        _fingerprint(mlp, X[:1]),  # shape
        _fingerprint(mlp, X.astype(np.int32)),  # dtype
        _fingerprint(_scaled(2.0), X),  # a literal
        _fingerprint(_scaled(np.nextafter(np.float32(2), np.float32(3))), X),  # the literal's last bit
        _fingerprint(lambda x: jnp.sin(x @ W1) @ W2, X),  # an op
        _fingerprint(_inner_weight(W1), X),
        _fingerprint(mlp, X, name="renamed"),  # the graph's (and the .cbx's) name
        _fingerprint(lambda x, y: x @ W1 + y, X, np.zeros(32, np.float32)),
        _fingerprint(lambda y, x: x @ W1 + y, np.zeros(32, np.float32), X),  # input names
    ]
    for seed in (0, 1):  # a closed-over typed PRNG key (no numpy view: hashed by its key data)
        key_array = jax.random.key(seed)
        changed.append(_fingerprint(lambda x, k=key_array: x @ W1 + jax.random.uniform(k, (32,)), X))
    bumped = W1.copy()
    bumped.flat[5] += np.float32(1e-3)
    changed.append(_fingerprint(_inner_weight(bumped), X))  # a constant inside a nested jaxpr
    changed.append(_fingerprint(lambda x: jnp.tanh(x @ bumped) @ W2, X))  # a closed-over weight
    assert len({key, *changed}) == len(changed) + 1


def test_jaxpr_key_covers_source_locations():
    """The .cbx records each node's source line (profiles show it): the same code on another line is
    another entry."""
    source = "def f(x):\n    return jnp.tanh(x @ W1) @ W2\n"
    functions = []
    for blank_lines in (0, 3):
        scope = {"jnp": jnp, "W1": W1, "W2": W2}
        exec(compile("\n" * blank_lines + source, "user_model.py", "exec"), scope)  # noqa: S102
        functions.append(scope["f"])
    assert _fingerprint(functions[0], X) != _fingerprint(functions[1], X)


def test_damaged_entry_of_a_jax_compile_is_rebuilt(cache_dir, builds, capfd):
    compiled = cerebro.compile(mlp)
    compiled(X)
    (entry,) = entries(cache_dir)
    good = entry.read_bytes()
    _flip_middle(entry)
    capfd.readouterr()
    np.testing.assert_allclose(cerebro.compile(mlp)(X), expected(X), rtol=1e-5, atol=1e-5)
    assert "damaged" in capfd.readouterr().err
    assert builds == ["mlp", "mlp"] and entry.read_bytes() == good


def test_compiler_source_edit_changes_fingerprint(tmp_path, monkeypatch):
    import cerebro.compiler

    copy = tmp_path / "compiler"
    shutil.copytree(Path(cerebro.compiler.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cerebro.compiler, "__file__", str(copy / "__init__.py"))
    before = cc.compiler_fingerprint.__wrapped__()
    with (copy / "driver.py").open("a") as file:
        file.write("# an edit\n")
    assert cc.compiler_fingerprint.__wrapped__() != before


def test_compiler_change_invalidates_entries(cache_dir, builds, monkeypatch):
    graph = trace(mlp, X).graph
    cc.cached_build(graph)
    cc.cached_build(graph)
    assert builds == ["mlp"]
    monkeypatch.setattr(cc, "compiler_fingerprint", lambda: "an edited compiler")
    cc.cached_build(graph)
    assert builds == ["mlp", "mlp"]


# ---- size bound and the CLI ----


def test_size_bound_evicts_least_recently_used(tmp_path):
    data = cc.cached_build(trace(mlp, X).graph, cache=False)
    store = cc.CompileCache(tmp_path, max_bytes=int(len(data) * 2.5))
    store.put("a", data)
    store.put("b", data)
    os.utime(store.path("a"), (100, 100))
    os.utime(store.path("b"), (200, 200))
    assert store.get("a") == data  # a is now the most recently used
    store.put("c", data)
    assert store.get("b") is None and store.get("a") == data and store.get("c") == data
    assert store.info().entries == 2 and store.info().bytes == 2 * len(data)


def test_max_bytes_env(monkeypatch):
    monkeypatch.setenv("CEREBRO_CACHE_MAX_BYTES", "12345")
    assert cc.CompileCache().max_bytes == 12345
    monkeypatch.setenv("CEREBRO_CACHE_MAX_BYTES", "2G")
    with pytest.raises(ValueError, match="CEREBRO_CACHE_MAX_BYTES='2G'"):
        cc.compile_cache_max_bytes()


def test_cli_info_and_clear(cache_dir, tmp_path, capsys):
    cerebro.compile(mlp).export(tmp_path / "a.cbx", X)
    assert cli.main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert str(cache_dir) in out and "entries:   1" in out and "limit:     2147483648" in out
    assert cli.main(["cache", "clear"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert entries(cache_dir) == []
