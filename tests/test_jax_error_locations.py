"""Every JAX frontend error names the primitive and a location of the user's: a source line, or the
traced function when the primitive has none (never 'unknown location', never Cerebro's own files)."""

import importlib.util
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from cerebro.frontends.jax import UnsupportedPrimitive, trace

X = np.arange(4, dtype=np.float32)
COMPLEX = np.ones(4, np.complex64)


def _line_of(marker: str) -> int:
    with open(inspect.getsourcefile(_line_of)) as source:
        return next(n for n, line in enumerate(source, 1) if marker in line and "_line_of" not in line)


def _unsupported(fn, *args) -> str:
    with pytest.raises(UnsupportedPrimitive) as info:
        trace(fn, *args)
    message = str(info.value)
    assert "unknown location" not in message and "calls.py" not in message and "tracer.py" not in message
    return message


def _bad(x):
    return lax.nextafter(x, x + 1)  # marker: nextafter


@jax.custom_jvp
def _custom(x):
    return _bad(x)


_custom.defjvp(lambda primals, tangents: (_custom(*primals), tangents[0]))


@pytest.mark.parametrize("fn", [
    jax.jit(_bad),
    lambda x: jax.jit(lambda y: jax.jit(_bad)(y) * 2)(x),
    _custom,
    lambda x: jax.checkpoint(_bad)(x),
    lambda x: lax.scan(lambda c, row: (c, _bad(row)), 0.0, x)[1],
    lambda x: lax.cond(x[0] > 0, _bad, lambda y: y, x),
], ids=["jit", "nested_jit", "custom_jvp", "checkpoint", "scan_body", "cond_branch"])
def test_nested_bodies_name_the_primitive_and_its_line(fn) -> None:
    message = _unsupported(fn, X)
    assert "'nextafter'" in message
    assert f"test_jax_error_locations.py:{_line_of('marker: nextafter')} (in _bad)" in message


def test_a_closed_over_constant_names_where_it_is_used() -> None:
    def model(x):
        return x + (jnp.asarray(COMPLEX) * 2).real  # marker: closed over

    message = _unsupported(model, X)
    assert "complex64" in message and "closes over" in message
    assert f"test_jax_error_locations.py:{_line_of('marker: closed over')}" in message


def test_a_jax_function_traced_directly_names_itself() -> None:
    assert "'nextafter' at traced function 'nextafter'" in _unsupported(lax.nextafter, X, X)


def test_a_model_from_an_installed_package_names_its_line(tmp_path) -> None:
    path = tmp_path / "site-packages" / "zoo_model.py"
    path.parent.mkdir()
    path.write_text("from jax import lax\n\ndef model(x):\n    return lax.nextafter(x, x)\n")
    spec = importlib.util.spec_from_file_location("zoo_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert "zoo_model.py:4 (in model)" in _unsupported(module.model, X)
