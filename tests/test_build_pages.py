"""driver.build makes numpy's arrays without MADV_HUGEPAGE while it runs (driver._small_pages: faults in fresh
weight copies compacted memory first on a VM whose transparent huge pages defrag on madvise) and gives the caller
back numpy's setting as it was."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from cerebro.compiler.driver import build
from cerebro.frontends.onnx import import_onnx

switch = getattr(getattr(getattr(np, "_core", None), "multiarray", None), "_set_madvise_hugepage", None)


def _dense() -> bytes:
    w = numpy_helper.from_array(np.ones((8, 4), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.skipif(switch is None, reason="this numpy has no madvise switch")
@pytest.mark.parametrize("setting", [True, False])
def test_build_gives_back_numpy_hugepage_setting(setting: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    import cerebro.compiler.driver as driver

    real = driver.compile_llvm
    monkeypatch.setattr(driver, "compile_llvm", lambda *a: (seen.append(switch(False)), real(*a))[1])
    before = switch(setting)
    try:
        assert build(import_onnx(_dense()), target="host")
        assert seen == [False]  # off while the build ran
        assert switch(setting) == setting  # and the caller's again after it
    finally:
        switch(before)
