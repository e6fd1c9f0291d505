"""docs/coverage.md is generated from the frontends' rule tables and must match them."""

import subprocess
import sys

from cerebro.frontends import coverage


def test_committed_table_is_current():
    # A fresh process: JAX's primitive registry depends on what else this one imported.
    result = subprocess.run([sys.executable, "-m", "cerebro.frontends.coverage", "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (f"docs/coverage.md is stale; regenerate it with `{coverage.REGENERATE}` "
                                    f"and commit it\n{result.stderr}")


def test_known_entries():
    jax_status = {e.name: e.status for e in coverage.jax_entries()}
    onnx_status = {e.name: e.status for e in coverage.onnx_entries()}
    assert jax_status["dot_general"] == coverage.SUPPORTED
    assert jax_status["jit"] == coverage.SUPPORTED  # inlined
    assert jax_status["all_gather"] == coverage.UNSUPPORTED  # a collective: no meaning on one CPU
    assert onnx_status["Conv"] == coverage.SUPPORTED
    assert onnx_status["RandomNormal"] == coverage.UNSUPPORTED
    assert "Bernoulli" in onnx_status and "Dropout" in onnx_status
    assert onnx_status["HannWindow"] == coverage.SUPPORTED  # no rule: imported as its function body


def test_limits_notes_reach_the_table(monkeypatch):
    from cerebro.frontends.jax import rules_nn

    monkeypatch.setattr(rules_nn, "LIMITS", {"dot_general": "a test note"}, raising=False)
    entry = next(e for e in coverage.jax_entries() if e.name == "dot_general")
    assert (entry.status, entry.note) == (coverage.LIMITED, "a test note")
    assert "| `dot_general` | supported with limits | a test note |" in coverage._table([entry], "primitive")


def test_every_limits_note_belongs_to_a_rule():
    from cerebro.frontends.jax import RULES
    from cerebro.frontends.onnx import table

    assert set(coverage._limits("cerebro.frontends.jax", "rules_")) <= set(RULES)
    onnx_notes = coverage._limits("cerebro.frontends.onnx.rules")
    assert onnx_notes and set(onnx_notes) <= set(table.RULES)
