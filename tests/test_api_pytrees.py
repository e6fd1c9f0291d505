"""cerebro.compile's jax.jit ergonomics (static_argnums/static_argnames, keyword arguments, pytrees)
and the calling convention an exported .cbx keeps (.cerebro.tree), loaded without JAX."""

from __future__ import annotations

import collections
import pickle
import subprocess
import sys
import textwrap

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cerebro
from cerebro.compiler import build
from cerebro.compiler.cbx import CbxError
from cerebro.compiler.cbx.tree import TREE_SECTION, CallTree, attach_tree, note
from cerebro.compiler.cbx.writer import add_section
from cerebro.elf import SHT_NOTE, SHT_PROGBITS

RTOL, ATOL = 1e-5, 1e-6
Stats = collections.namedtuple("Stats", "mean spread")


def assert_same_tree(got, want) -> None:
    """Same pytree structure (namedtuples compared as JAX sees them) and values within float32 tolerance."""
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)


def repeat(x, n, mode="relu"):
    """n unrolls the loop and sizes the result; mode picks the activation."""
    act = {"relu": jax.nn.relu, "tanh": jnp.tanh}[mode]
    for _ in range(n):
        x = act(x * 1.5 - 0.5)
    return jnp.concatenate([x] * n, axis=-1)


def test_static_argnums_and_argnames_match_jax_jit():
    x = np.linspace(-2, 2, 6, dtype=np.float32)
    ours = cerebro.compile(repeat, static_argnums=1, static_argnames="mode")
    ref = jax.jit(repeat, static_argnums=1, static_argnames="mode")
    for n, mode in [(1, "relu"), (3, "relu"), (3, "tanh")]:
        got = ours(x, n, mode=mode)
        assert got.shape == (6 * n,)
        np.testing.assert_allclose(got, ref(x, n, mode=mode), rtol=RTOL, atol=ATOL)
    assert len(ours._cache) == 3  # one compiled function per static value
    ours(x + 1, 3, mode="tanh")
    assert len(ours._cache) == 3
    with pytest.raises(ValueError, match="static argument 1 must be hashable"):
        ours(x, [2])
    # Given static_argnums alone, a static parameter passed by name is static too (and the other way round).
    for static in ({"static_argnums": 1}, {"static_argnames": "n"}):
        compiled, jitted = cerebro.compile(repeat, **static), jax.jit(repeat, **static)
        np.testing.assert_allclose(compiled(x, n=2), jitted(x, n=2), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(compiled(x, 3), jitted(x, 3), rtol=RTOL, atol=ATOL)


def test_kwargs_and_nested_pytrees_match_jax_jit():
    class Mlp(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(3)(nn.relu(nn.Dense(5)(x)))

    model = Mlp()
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    params = model.init(jax.random.PRNGKey(0), x)

    def fn(params, pair, *, scale, extras=None):
        logits = model.apply(params, pair[0]) * scale["gain"]
        return {"logits": logits, "stats": Stats(logits.mean(), [logits.max() - logits.min(), None]),
                "echo": (pair[1][0] + 1,)}

    args = (params, (x, [np.arange(3, dtype=np.int32)]))
    kwargs = {"scale": {"gain": np.float32(2.0)}}
    assert_same_tree(cerebro.compile(fn)(*args, **kwargs), jax.jit(fn)(*args, **kwargs))


def _exported(tmp_path):
    """fn exported with a static argument, a keyword argument and pytrees in and out; its call and jax.jit's result."""
    def fn(params, x, n, *, scale, mode="relu"):
        h = repeat(x @ params["dense"]["kernel"] + params["dense"]["bias"], n, mode)
        return {"h": h, "stats": Stats(h.mean(), [h.max(), None]), "echo": (scale["gain"] * 2,)}

    rng = np.random.default_rng(1)
    params = {"dense": {"kernel": rng.standard_normal((4, 3)).astype(np.float32),
                        "bias": rng.standard_normal(3).astype(np.float32)}}
    x = rng.standard_normal((2, 4)).astype(np.float32)
    kwargs = {"scale": {"gain": np.float32(0.5)}, "mode": "tanh"}
    compiled = cerebro.compile(fn, static_argnums=2, static_argnames="mode", name="tree")
    path = compiled.export(tmp_path / "tree.cbx", params, x, 2, **kwargs)
    return path, (params, x, 2), kwargs, jax.jit(fn, static_argnums=2, static_argnames="mode")(params, x, 2, **kwargs)


def test_export_load_round_trip_without_jax(tmp_path):
    path, args, kwargs, want = _exported(tmp_path)
    (tmp_path / "call.pkl").write_bytes(pickle.dumps((args, kwargs)))
    script = textwrap.dedent(f"""
        import pickle, sys
        import numpy as np
        import cerebro
        (params, x, n), kwargs = pickle.loads(open({str(tmp_path / 'call.pkl')!r}, "rb").read())
        model = cerebro.load({str(path)!r})
        out = model(params, x, n, **kwargs)
        without_statics = model(params, x, scale=kwargs["scale"])
        leaves = [params["dense"]["bias"], params["dense"]["kernel"], x, kwargs["scale"]["gain"]]
        flat = model(*leaves)  # one array per input, in signature order: still the tree out
        assert len(model.flat(*leaves)) == len(model.signature.outputs)
        assert not any(m.split(".")[0] in ("jax", "jaxlib", "flax") for m in sys.modules), "JAX was imported"
        pickle.dump((out, without_statics, flat), open({str(tmp_path / 'out.pkl')!r}, "wb"))
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    out, without_statics, flat = pickle.loads((tmp_path / "out.pkl").read_bytes())
    # The loaded tree: namedtuples come back as dicts of their fields (the loader has no such type).
    degraded = {**want, "stats": {"mean": want["stats"].mean, "spread": want["stats"].spread}}
    for got in (out, without_statics, flat):
        assert_same_tree(got, degraded)


def test_wrong_trees_are_refused_naming_what_differs(tmp_path):
    path, (params, x, n), kwargs, _ = _exported(tmp_path)
    model = cerebro.load(path)
    dense = params["dense"]
    cases = [
        (({"dense": {"kernel": dense["kernel"]}}, x), kwargs,
         r"argument 'params'\['dense'\]: missing key\(s\) \['bias'\]"),
        (({"dense": {**dense, "extra": x}}, x), kwargs, r"unexpected key\(s\) \['extra'\]"),
        ((params, x, 3), kwargs, "argument 'n' is static: the model was compiled for 2, got 3"),
        ((params, x), {"scale": kwargs["scale"], "mode": "relu"}, "keyword argument 'mode' is static"),
        ((params, x), {}, "missing keyword argument 'scale'"),
        ((params, x), {**kwargs, "bogus": 1}, "unexpected keyword argument.*'bogus'"),
        ((params,), kwargs, r"takes 3 positional arguments \(params, x, n\) \(or 2 without the static ones\), got 1"),
        (((dense, dense), x), kwargs, "argument 'params': expected a dict with keys"),
    ]
    for args, kw, message in cases:
        with pytest.raises(ValueError, match=message):
            model(*args, **kw)
    with pytest.raises(ValueError, match="input 'x'"):  # leaves are still checked against the signature
        model(params, x[:1], **kwargs)
    # A Python scalar takes its input's dtype, as under jax.jit; one of the wrong kind is still refused.
    assert_same_tree(model(params, x, scale={"gain": 0.5}), model(params, x, scale={"gain": np.float32(0.5)}))
    with pytest.raises(ValueError, match="input 'gain'.*expected float32"):
        model(params, x, scale={"gain": True})


def test_files_without_a_tree_keep_the_flat_form(tmp_path):
    compiled = cerebro.compile(lambda a, b: (a + b, a * b))
    a, b = np.ones(3, np.float32), np.arange(3, dtype=np.float32)
    model = cerebro.load(build(compiled.lower(a, b)))
    assert model.tree is None
    total, product = model(a, b)
    np.testing.assert_array_equal(total, a + b)
    np.testing.assert_array_equal(product, a * b)
    with pytest.raises(TypeError, match="keeps no calling convention: pass its inputs .* positionally"):
        model(a, b=b)
    exported = cerebro.load(compiled.export(tmp_path / "pair.cbx", a, b))
    assert exported.tree is not None
    np.testing.assert_array_equal(exported(a, b)[1], a * b)
    assert isinstance(exported(a, b), tuple) and isinstance(exported.flat(a, b), tuple)


def _tree_note(payload: bytes) -> tuple:
    return note(payload), SHT_NOTE, 4


@pytest.mark.parametrize(("section", "message"), [
    ((b"{}", SHT_PROGBITS, 1), "not an ELF note"),
    ((note(b"{}")[:14], SHT_NOTE, 4), "not an ELF note"),
    ((note(b"{}").replace(b"Cerebro", b"Cerebrx"), SHT_NOTE, 4), "not a Cerebro tree note"),
    ((note(b"{}")[:-4], SHT_NOTE, 4), "the note claims 2 bytes, the section has 0"),
    (b"{not json", "not JSON"),
    (b'{"format": "cerebro.tree/9", "args": [], "kwargs": [], "output": "leaf"}', "not a cerebro.tree/1"),
    (b'{"format": "cerebro.tree/1", "args": [["x", "leaf"]], "kwargs": [], "output": ["leaf"]}', "unknown node"),
    (b'{"format": "cerebro.tree/1", "args": [["x", "leaf"], ["y", "leaf"]], "kwargs": [], "output": "leaf"}',
     "2 input and 1 output leaves, the signature has 1 inputs and 1 outputs"),
    (b'{"format": "cerebro.tree/1", "args": [["x", ' + b'{"list": [' * 100 + b'"leaf"' + b"]}" * 100
     + b']], "kwargs": [], "output": "leaf"}', "nested deeper than 64"),
    (b'{"format": "cerebro.tree/1", "args": [["x", ' + b"[" * 100000 + b"]" * 100000 + b']]}', "not JSON"),
])
def test_malformed_tree_sections_are_refused_at_load(section, message):
    plain = build(cerebro.compile(lambda x: x * 2).lower(np.ones(2, np.float32)))
    assert cerebro.load(attach_tree(plain, CallTree([("x", "leaf")], [], "leaf"))).tree is not None
    with pytest.raises(CbxError, match=f"bad {TREE_SECTION}: .*{message}"):
        cerebro.load(add_section(plain, TREE_SECTION, *(_tree_note(section) if isinstance(section, bytes)
                                                          else section)))


def test_namedtuple_arguments_load_as_the_namedtuple_or_a_dict(tmp_path):
    def fn(stats, items):
        return Stats(stats.mean * 2, items[0] - stats.spread)

    stats, items = Stats(np.float32(1.5), np.arange(3, dtype=np.float32)), [np.ones(3, np.float32)]
    want = jax.jit(fn)(stats, items)
    model = cerebro.load(cerebro.compile(fn).export(tmp_path / "nt.cbx", stats, items))
    for given in (stats, {"mean": stats.mean, "spread": stats.spread}):
        assert_same_tree(model(given, items), {"mean": want.mean, "spread": want.spread})
    with pytest.raises(ValueError, match=r"argument 'stats': missing key\(s\) \['spread'\]"):
        model({"mean": stats.mean}, items)
    with pytest.raises(ValueError, match=r"argument 'items': expected a list of 1, got tuple of 2"):
        model(stats, (items[0], items[0]))
