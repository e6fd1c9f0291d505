"""The ONNX backend node tests (generated in memory by the onnx package) run through
cerebro.frontends.onnx.backend by onnx.backend.test.BackendTest, in worker processes.

Scope: the float32-only cases (every graph input and output is a float32 tensor).
EXCLUDED lists what Cerebro does not run, with the reason; every other case must pass.
"""

from __future__ import annotations

import re
import unittest
import warnings

import numpy as np

# op (case-name prefix) -> why it is excluded
EXCLUDED = {
    "test_bernoulli": "random sampling: a compiled model is deterministic",
    "test_dft": "DFT is not supported (no complex arithmetic in the IR)",
    "test_optional": "optional-typed values are not supported",
}


# Beyond float32: integer/bool/float64 cases of ops whose other-typed paths the float32
# set does not reach (indices, masks, casts, unrolled control flow). All must pass.
OTHER_TYPED_OPS = ("test_cumsum", "test_einsum", "test_gather_", "test_gatherelements", "test_tile", "test_tril",
                   "test_triu", "test_loop", "test_if", "test_onehot", "test_argmax", "test_argmin", "test_eyelike",
                   "test_isinf", "test_isnan", "test_expand", "test_where", "test_mod", "test_pad", "test_edge_pad",
                   "test_reflect_pad", "test_wrap_pad", "test_constant_pad", "test_reshape", "test_slice", "test_cast",
                   "test_split", "test_squeeze", "test_unsqueeze", "test_top_k", "test_scatter",
                   "test_ai_onnx_ml_tree_ensemble", "test_gathernd", "test_matmulinteger", "test_qlinearmatmul",
                   "test_convinteger", "test_qlinearconv", "test_dynamicquantizelinear", "test_quantizelinear",
                   "test_dequantizelinear")
# (the quantize cases of u16 and f16 fall outside IR_ELEM_TYPES below; int4/int2/float8/float4 are element types
# the importer does not take)
OTHER_EXCLUDED = {
    "test_einsum_batch_diagonal": "Einsum with a repeated index (a diagonal) is not supported",
}
IR_ELEM_TYPES = {1, 2, 3, 5, 6, 7, 9, 11}  # float, uint8, int8, int16, int32, int64, bool, double


def other_typed_cases() -> list:
    """IR-typed, not float32-only cases of OTHER_TYPED_OPS."""
    from onnx.backend.test.loader import load_model_tests

    def typed(model: object) -> bool:
        g = model.graph
        return all(v.type.HasField("tensor_type") and v.type.tensor_type.elem_type in IR_ELEM_TYPES
                   for v in list(g.input) + list(g.output))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [c for c in load_model_tests(kind="node") if c.name.startswith(OTHER_TYPED_OPS)
                and typed(c.model) and not is_float32_only(c.model) and c.name not in OTHER_EXCLUDED]


def is_float32_only(model: object) -> bool:
    g = model.graph
    return all(v.type.HasField("tensor_type") and v.type.tensor_type.elem_type == 1
               for v in list(g.input) + list(g.output))


def float32_cases() -> list:
    from onnx.backend.test.loader import load_model_tests

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [c for c in load_model_tests(kind="node") if is_float32_only(c.model)]


def excluded_reason(name: str) -> str | None:
    for prefix, reason in EXCLUDED.items():
        if name.startswith(prefix):
            return reason
    return None


class _Collector(unittest.TestResult):
    def __init__(self) -> None:
        super().__init__()
        self.passed: list[str] = []

    def addSuccess(self, test: unittest.TestCase) -> None:  # noqa: N802 (unittest's name)
        self.passed.append(test._testMethodName)


def run_cerebro(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """Run the named cases with BackendTest; returns (passed names, {failed name: message})."""
    import onnx.backend.test

    from cerebro import onnx_backend as backend

    result = _Collector()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        suite = onnx.backend.test.BackendTest(backend, __name__)
        suite.include("^(" + "|".join(re.escape(n) for n in names) + ")_cpu$")
        suite.test_suite.run(result)
    failed = {t._testMethodName: msg.strip().splitlines()[-1][:300] for t, msg in result.failures + result.errors}
    return [n.removesuffix("_cpu") for n in result.passed if n.removesuffix("_cpu") in names], \
        {k.removesuffix("_cpu"): v for k, v in failed.items()}


def run_onnxruntime(names: list[str]) -> list[str]:
    """The cases ONNX Runtime passes (the yardstick the pass rate is stated against)."""
    import onnx
    import onnxruntime as ort

    passed = []
    wanted = set(names)
    for case in float32_cases():
        if case.name not in wanted:
            continue
        try:
            options = ort.SessionOptions()
            options.log_severity_level = 4
            session = ort.InferenceSession(case.model.SerializeToString(), options, providers=["CPUExecutionProvider"])
            for inputs, refs in case.data_sets:
                feeds = {i.name: (onnx.numpy_helper.to_array(x) if isinstance(x, onnx.TensorProto) else np.asarray(x))
                         for i, x in zip(case.model.graph.input, inputs)}
                for out, ref in zip(session.run(None, feeds), refs):
                    np.testing.assert_allclose(out, ref, rtol=case.rtol, atol=case.atol)
            passed.append(case.name)
        except Exception:  # noqa: BLE001 (any ORT failure means "ORT does not pass it")
            continue
    return passed
