"""A concatenation hosts the elementwise chain that is its only reader (ir/hosts.py, passes/epilogue.py,
codegen/layout.py): each input's rows go through the chain as they are copied, at their columns of the
output. Same ops per element as the chain run as a pass of its own, so the same bits as the pipeline without
concatenation hosts (monkeypatched off), and ONNX Runtime's outputs within rtol 1e-4, atol 1e-5 (the convs
sum in another order), on one thread and on two (the parts share the rows)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx_models import NchwNet

from cerebro import runtime
from cerebro.compiler import driver
from cerebro.compiler.ir import hosts
from cerebro.compiler.passes import epilogue as epilogue_pass
from cerebro.frontends.onnx import import_onnx

RNG = np.random.default_rng(5)
GROWTH = 5  # odd widths: the chain's runs are not whole vectors


def dense_block() -> bytes:
    """DenseNet's pattern: every layer concatenates all features so far, then batch norm and ReLU read the
    concatenation (its only reader) before a 1x1 conv. A stem of 70 channels: one run of 64 columns and one
    of 6 (the block runs channels-last, passes/layout.py)."""
    n = NchwNet(RNG, (1, 3, 5, 5))
    stem = n.op("Relu", [n.conv("x", 3, 70)])
    features = [stem, n.op("Relu", [n.conv(stem, 70, GROWTH, k=1)])]
    for _ in range(3):
        joined = n.op("Concat", features, axis=1)
        channels = 70 + GROWTH * (len(features) - 1)
        normed = n.op("Relu", [n.batch_norm(joined, channels)])
        features.append(n.op("Relu", [n.conv(normed, channels, GROWTH, k=1)]))
    return n.model(features[-1])


def class_token() -> bytes:
    """ViT's sequence: a learned token concatenated before the patches (axis 1 of [N, T, D]), then the
    position embedding added: the add runs on the rows of T * D columns as they are copied (the patches' 160
    columns: two runs of 64 in a loop and one of 32)."""
    n = NchwNet(RNG, (2, 4, 40))
    token = n.const(RNG.standard_normal((2, 1, 40)).astype(np.float32))
    joined = n.op("Concat", [token, "x"], axis=1)
    return n.model(n.op("Add", [joined, n.const(RNG.standard_normal((1, 5, 40)).astype(np.float32))]))


CASES = {"dense_block": (dense_block, (1, 3, 5, 5), [("mul", "add", "max")] * 3),
         "class_token": (class_token, (2, 4, 40), [("add",)])}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", CASES)
def test_concatenation_runs_its_reader_chain(name: str, threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    make, shape, chains = CASES[name]
    model = make()
    built = driver.lower(import_onnx(model), "host")[0]
    hosting = [node for node in built.nodes if node.op == "concatenate"]
    assert [tuple(inner.op for inner in node.attrs["epilogue"].nodes) for node in hosting] == chains
    assert not any(node.op == "fused_elementwise" for node in built.nodes)
    x = RNG.standard_normal(shape).astype(np.float32)
    got = runtime.load(driver.build(import_onnx(model)), threads=threads)(x)[0]
    with monkeypatch.context() as patch:
        patch.setattr(epilogue_pass, "hosts_epilogue", lambda node: hosts.hosts_epilogue(node)
                      and node.op != "concatenate")
        plain = driver.lower(import_onnx(model), "host")[0]
        assert not any("epilogue" in node.attrs for node in plain.nodes if node.op == "concatenate")
        separate = runtime.load(driver.build(import_onnx(model)), threads=threads)(x)[0]
    np.testing.assert_array_equal(got.view(np.uint32), separate.view(np.uint32))
    (want,) = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_a_long_run_of_columns_is_a_loop_not_a_call_per_run() -> None:
    """ViT's class token before 196 patches of 768 features: 2352 runs of 64 columns, one call in a loop
    (a call per run was 724 KB of LLVM IR in the concatenation's function, 2.4 s of LLVM for vit_b_16)."""
    n = NchwNet(RNG, (1, 196, 768))
    joined = n.op("Concat", [n.const(RNG.standard_normal((1, 1, 768)).astype(np.float32)), "x"], axis=1)
    model = n.model(n.op("Add", [joined, n.const(RNG.standard_normal((1, 197, 768)).astype(np.float32))]))
    text = driver.lower(import_onnx(model), "host")[1]
    (function,) = [f for f in text.split("\ndefine ") if "_concatenate" in f.split("(")[0]]
    assert function.count("call void @\"epilogue.") == 2, function.count("call void")  # the token's, the loop's
