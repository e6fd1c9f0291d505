"""`cerebroc inspect` shows the calling convention an exported function keeps in .note.cerebro.tree."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np

import cerebro
from cerebro import cli
from cerebro.cache import cached_build
from cerebro.frontends.jax import trace


def predict(params, x, n, *, scale):
    return {"y": x @ params["w"] * scale * n, "aux": (jnp.sum(x), None)}


def test_inspect_shows_the_stored_calling_convention(tmp_path, capsys):
    path = cerebro.compile(predict, static_argnums=2).export(
        tmp_path / "f.cbx", {"w": np.ones((3, 2), np.float32)}, np.ones((2, 3), np.float32), 3,
        scale=np.float32(2))
    assert cli.main(["inspect", str(path)]) == 0
    text = capsys.readouterr().out
    assert ("  call:      predict(params={'w': w}, x, n=3 (static), *, scale=scale) -> "
            "{'aux': (output.aux.0, None), 'y': output.y}  (.note.cerebro.tree)") in text.splitlines(), text
    assert cli.main(["inspect", str(path), "--json"]) == 0
    call = json.loads(capsys.readouterr().out)["call"]
    assert call["args"][2] == ["n", {"static": "3"}] and call["kwargs"][0][0] == "scale"


def test_inspect_of_a_file_without_the_note_shows_no_call(tmp_path, capsys):
    """A graph compiled without a function (as ONNX and SavedModel are) has no calling convention."""
    path = tmp_path / "g.cbx"
    path.write_bytes(cached_build(trace(jnp.tanh, np.ones(4, np.float32)).graph, cache=False))
    assert cli.main(["inspect", str(path)]) == 0
    assert "  call:" not in capsys.readouterr().out
    assert cli.main(["inspect", str(path), "--json"]) == 0
    assert "call" not in json.loads(capsys.readouterr().out)
