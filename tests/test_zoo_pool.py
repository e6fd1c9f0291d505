"""The zoo's 2-thread rows say how the pool ran their timed calls (LoadedModel.pool_stats): a row whose
calls ran alone (a competing load, or a pool slow to share again) shows it instead of only looking slow."""

from __future__ import annotations

from benchmarks.zoo.run import _line
from benchmarks.zoo.worker import pool_delta


def test_pool_delta_counts_only_the_calls_between_the_snapshots():
    before = {"shared": 9, "alone": 1, "probes": 1, "to_alone": 0, "to_shared": 0}
    after = {"shared": 12, "alone": 8, "probes": 2, "to_alone": 1, "to_shared": 0}
    assert pool_delta(before, after) == {"shared": 3, "alone": 7, "probes": 1, "to_alone": 1, "to_shared": 0}


def test_the_printed_line_names_calls_run_alone():
    pool = {"shared": 3, "alone": 7, "probes": 1, "to_alone": 1, "to_shared": 0}
    record = {"model": "convnext_tiny", "batch": 8, "threads": "default",
              "backends": {"cerebro": {"median_ms": 594.1, "pool": pool}, "ort": {"median_ms": 616.6}}}
    assert _line(record) == "convnext_tiny b8 tdefault: cerebro 594.10 ms (alone 7/10 calls) | ort 616.60 ms"
    record["backends"]["cerebro"]["pool"] = {**pool, "alone": 0}
    assert "alone" not in _line(record)


def test_the_report_table_names_calls_run_alone():
    from benchmarks.report import _Footnotes
    from benchmarks.zoo.report import speed_table

    pool = {"shared": 3, "alone": 7, "probes": 1, "to_alone": 1, "to_shared": 0}
    record = {"model": "convnext_tiny", "batch": 8, "threads": "default",
              "backends": {"cerebro": {"status": "ok", "median_ms": 594.1, "p90_ms": 797.1, "pool": pool},
                           "ort": {"status": "ok", "median_ms": 616.6, "p90_ms": 815.3}}}
    (row,) = [line for line in speed_table([record], _Footnotes()) if line.startswith("| convnext")]
    assert "alone 7/10" in row.split("|")[4]
    record["backends"]["cerebro"]["pool"] = {**pool, "alone": 0}
    assert "alone" not in speed_table([record], _Footnotes())[2]
