"""The code generator builds llvmlite's module with cyclic garbage collection paused (codegen/module.py
young_garbage): its objects die young instead of reaching the oldest generation, where each cost a walk of
every object of the process (a full collection, ~0.1-0.2 s a resnet18 compile). The pause must end with
the module, whatever happens, and leave a caller's own choice alone."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
from llvmlite import ir

from cerebro.compiler import driver
from cerebro.compiler.codegen import EMITTERS
from cerebro.compiler.ir import Graph
from cerebro.compiler.ir.builder import Builder
from cerebro.compiler.ir.dtypes import DType


def _graph() -> Graph:
    graph = Graph("gc_paused")
    b = Builder(graph)
    x = graph.add_input((4, 8), DType.f32, "x")
    graph.set_outputs([b.add("matmul", x, b.const(np.arange(64, dtype=np.float32).reshape(8, 8)))], ["y"])
    return graph


def _recording(monkeypatch: pytest.MonkeyPatch, fail: bool = False) -> list[bool]:
    """gc.isenabled() as the matmul emitter saw it, each time it ran (fail: it then raises)."""
    seen: list[bool] = []
    emit = EMITTERS["matmul"]

    def recording(ctx, node, fn):  # noqa: ANN001, ANN202
        seen.append(gc.isenabled())
        if fail:
            raise RuntimeError("emitter failed")
        return emit(ctx, node, fn)

    monkeypatch.setitem(EMITTERS, "matmul", recording)
    return seen


def test_emitters_run_with_collection_paused(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _recording(monkeypatch)
    assert gc.isenabled()
    _, text, _, _ = driver.lower(_graph())
    assert seen == [False]
    assert gc.isenabled()  # back on once the module text is made
    assert "_matmul" in text


def test_pause_ends_when_an_emitter_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    _recording(monkeypatch, fail=True)
    with pytest.raises(RuntimeError, match="emitter failed"):
        driver.lower(_graph())
    assert gc.isenabled()


def test_caller_with_collection_off_keeps_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _recording(monkeypatch)
    gc.disable()
    try:
        driver.lower(_graph())
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert seen == [False]


def test_module_freed_without_the_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once printed, the module and its functions are freed by reference counting alone (codegen/module.py
    _release), so the collection after the pause has next to nothing to walk."""
    made: list[weakref.ref] = []

    class Module(ir.Module):
        def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
            super().__init__(*args, **kwargs)
            made.append(weakref.ref(self))

    class Function(ir.Function):
        def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
            super().__init__(*args, **kwargs)
            made.append(weakref.ref(self))

    monkeypatch.setattr(ir, "Module", Module)
    monkeypatch.setattr(ir, "Function", Function)
    gc.disable()
    try:
        _, text, _, _ = driver.lower(_graph())
        alive = [ref() for ref in made if ref() is not None]
    finally:
        gc.enable()
    assert len(made) >= 3 and "_matmul" in text  # the module, the node function, the entry
    assert alive == []
