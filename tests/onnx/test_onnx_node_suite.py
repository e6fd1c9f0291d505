"""ONNX backend node tests through Cerebro, compiled to native code (see node_suite.py).

Prints the pass count against the cases ONNX Runtime passes; every case not in
node_suite.EXCLUDED must pass. Cases run in worker processes (one per core, at
most 4) because each one is a separate LLVM compile.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import node_suite  # noqa: E402  (tests/onnx is on sys.path under pytest's default import mode)


@pytest.mark.timeout(900)
def test_onnx_node_suite(capsys: pytest.CaptureFixture) -> None:
    cases = node_suite.float32_cases()
    names = [c.name for c in cases]
    expected = [n for n in names if node_suite.excluded_reason(n) is None]
    others = [c.name for c in node_suite.other_typed_cases()]
    everything = expected + others
    workers = max(1, min(4, os.cpu_count() or 1))
    chunks = [everything[i::workers * 3] for i in range(workers * 3)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        ort_future = pool.submit(node_suite.run_onnxruntime, names)
        results = list(pool.map(node_suite.run_cerebro, chunks))
        ort_passed = set(ort_future.result())
    passed = {n for ok, _ in results for n in ok}
    failed = {n: msg for _, bad in results for n, msg in bad.items()}
    ours = passed & set(expected)
    ort_and_us = ours & ort_passed
    summary = (f"\nONNX node tests (float32-only, onnx {__import__('onnx').__version__}): {len(cases)} cases, "
               f"{len(expected)} run, {len(ours)} pass; ONNX Runtime passes {len(ort_passed)}, "
               f"Cerebro passes {len(ort_and_us)} of those ({100 * len(ort_and_us) / max(len(ort_passed), 1):.1f}%); "
               f"other-typed cases of {len(node_suite.OTHER_TYPED_OPS)} op families: "
               f"{len(passed & set(others))} of {len(others)} pass")
    with capsys.disabled():  # the pass count belongs in the suite's output, not only in captured logs
        print(summary)
    missing = sorted(set(everything) - passed)
    assert not missing, "node tests that should pass but did not:\n" + "\n".join(
        f"  {n}: {failed.get(n, 'did not run')}" for n in missing)
    assert len(ort_and_us) >= 0.95 * len(ort_passed)
