"""The JAX frontend: every shared case traced, verified, interpreted and compared with jax.jit."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax_cases import CASE_NAMES, assert_outputs_match, get_case

from cerebro.compiler.ir import DType, verify
from cerebro.compiler.ir.interpret import run_graph
from cerebro.frontends.jax import UnsupportedPrimitive, trace


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_matches_jax(name: str) -> None:
    case = get_case(name)
    traced = trace(case.fn, *case.args)
    verify(traced.graph)
    want = jax.jit(case.fn)(*case.args)
    got = traced.run_reference(*case.args)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    assert_outputs_match(got, want, case.rtol, case.atol, name)


def _line_of(marker: str) -> int:
    with open(inspect.getsourcefile(_line_of)) as source:
        return next(n for n, line in enumerate(source, 1) if marker in line and "_line_of" not in line)


def _unsupported(fn, *args) -> str:
    with pytest.raises(UnsupportedPrimitive) as info:
        trace(fn, *args)
    return str(info.value)


X = np.arange(12, dtype=np.float32).reshape(3, 4)


def test_unsupported_primitive_names_primitive_and_line() -> None:
    def model(x):
        y = x * 2
        return lax.acos(y)  # marker: acos

    message = _unsupported(model, X)
    assert "'acos'" in message
    assert f"test_jax_frontend.py:{_line_of('marker: acos')}" in message
    assert "model" in message
    assert issubclass(UnsupportedPrimitive, NotImplementedError)


@pytest.mark.parametrize("fn, primitive", [
    (lambda x: lax.igamma(x, x), "igamma"),
    (lambda x: lax.lgamma(x), "lgamma"),
    (lambda x: lax.select_n(jnp.array([[0, 1, 2, 0]] * 3, jnp.int32), x, -x, x * 2), "select_n"),
    (lambda x: x.astype(jnp.complex64), "complex64"),
    (lambda x: x.at[1].apply(jnp.sin), "x.at[...].apply"),
    (lambda x: lax.approx_max_k(x, 2)[0], "approx_top_k"),
    (lambda x: lax.reduce_window(x, 0.0, lax.add, (2, 2), (1, 1), "VALID", window_dilation=(2, 1)), "window_dilation"),
])
def test_unsupported_things_raise(fn, primitive: str) -> None:
    assert primitive in _unsupported(fn, X)


def test_batch_group_conv_is_unsupported() -> None:
    x, w = np.ones((2, 5, 5, 2), np.float32), np.ones((3, 3, 2, 4), np.float32)

    def conv(x, w):
        return lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        batch_group_count=2)

    assert "batch_group_count" in _unsupported(conv, x, w)


def test_node_locations_point_at_user_code() -> None:
    def model(x):
        return jnp.tanh(x) + 1  # marker: tanh

    graph = trace(model, X).graph
    tanh = next(n for n in graph.nodes if n.op == "tanh")
    where = "test_node_locations_point_at_user_code.<locals>.model"
    assert tanh.loc == f"test_jax_frontend.py:{_line_of('marker: tanh')} (in {where})"


def test_pytree_round_trip_and_input_names() -> None:
    params = {"Dense_0": {"kernel": np.ones((4, 3), np.float32), "bias": np.zeros(3, np.float32)},
              "scale": np.float32(2.0)}

    def fn(variables, x, extras):
        h = x @ variables["params"]["Dense_0"]["kernel"] + variables["params"]["Dense_0"]["bias"]
        return {"logits": h * variables["params"]["scale"], "pair": (h.sum(), extras[1] + 1)}

    args = ({"params": params}, np.arange(8, dtype=np.float32).reshape(2, 4),
            (np.zeros(2, np.float32), np.arange(3, dtype=np.int32)))
    traced = trace(fn, *args)
    names = [spec.name for spec in traced.input_specs]
    assert names == ["params.Dense_0.bias", "params.Dense_0.kernel", "params.scale", "x", "extras.0", "extras.1"]
    assert traced.graph.input_names == names
    assert traced.input_specs[-1].dtype is DType.i32 and traced.input_specs[1].shape == (4, 3)
    assert traced.graph.output_names == ["output.logits", "output.pair.0", "output.pair.1"]
    got = traced.run_reference(*args)
    assert jax.tree.structure(got) == jax.tree.structure(fn(*args))
    assert_outputs_match(got, fn(*args), 1e-6, 1e-6, "pytree")
    flat = traced.flatten_inputs(*args)
    assert [a.shape for a in flat] == [spec.shape for spec in traced.input_specs]
    with pytest.raises(ValueError, match="structure"):
        traced.flatten_inputs(args[0], args[1])


def test_input_names_of_varargs_and_partials() -> None:
    import functools

    def fn(scale, *xs):
        return sum(xs) * scale

    args = (np.float32(2), np.ones(2, np.float32), np.ones(2, np.float32))
    assert trace(fn, *args).graph.input_names == ["scale", "xs.0", "xs.1"]
    assert trace(functools.partial(fn, 3.0), *args[1:]).graph.input_names == ["xs.0", "xs.1"]
    traced = trace(lambda x: x * 2, np.ones(3))  # float64 becomes float32, as in JAX
    assert traced.input_specs[0].dtype is DType.f32
    np.testing.assert_array_equal(traced.run_reference(np.ones(3)), np.full(3, 2, np.float32))


def test_input_names_are_sanitized_short_and_unique() -> None:
    long_key = "block/" * 20 + "weight"
    tree = {long_key: np.ones(2, np.float32), "a b": np.ones(2, np.float32), "a_b": np.ones(2, np.float32)}
    traced = trace(lambda t: t[long_key] + t["a b"] + t["a_b"], tree)
    names = traced.graph.input_names
    assert len(set(names)) == 3
    for name in names:
        assert len(name) < 64 and all(c.isalnum() or c in "_." for c in name), name


def test_identity_and_constant_outputs() -> None:
    traced = trace(lambda x: (x, jnp.ones(3)), X)
    got = run_graph(traced.graph, [X])
    np.testing.assert_array_equal(got[0], X)
    np.testing.assert_array_equal(got[1], np.ones(3, np.float32))


def test_interpreter_rejects_wrong_inputs() -> None:
    traced = trace(lambda x: x + 1, X)
    with pytest.raises(ValueError, match="shape"):
        run_graph(traced.graph, [np.ones((4, 3), np.float32)])
    with pytest.raises(ValueError, match="dtype"):
        run_graph(traced.graph, [X.astype(np.int32)])
    with pytest.raises(ValueError, match="inputs"):
        run_graph(traced.graph, [])
