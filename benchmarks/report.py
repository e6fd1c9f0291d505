"""Turn benchmark records into JSON, a Markdown table and a PNG bar chart."""

from __future__ import annotations

import json
from pathlib import Path

LABELS = {"cerebro": "Cerebro", "xla": "XLA", "ort": "ONNX Runtime", "numpy": "numpy (OpenBLAS)"}
# The dispatch row's calls, as each backend is called there.
DISPATCH_LABELS = {"cerebro": "Cerebro: loaded model, `loaded(x)`", "cerebro-out": "Cerebro: `loaded(x, out=outs)`",
                   "cerebro-compile": "Cerebro: `cerebro.compile(f)(x)`", "xla": "XLA: `jax.jit` (AOT-compiled, "
                   "device array in, block_until_ready)", "ort": "ONNX Runtime: `session.run`"}
FIXED_ROWS = ("sgemm", "dispatch")  # tables of their own, not rows of the model table
BASELINE = "xla"
SHORT = {"xla": "XLA", "ort": "ORT"}
COLORS = {"cerebro": "tab:red", "ort": "tab:blue", "numpy": "tab:green", "xla": "tab:orange"}
TICKS = [1 / 16, 1 / 8, 1 / 4, 1 / 2, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 16, 32, 64]


def write_json(report: dict, path: Path) -> None:
    path.write_text(json.dumps(report, indent=1, default=str))


def _threads(record: dict) -> str:
    if record["threads"] == "default":
        return f"default ({record.get('cpus_available', '?')} CPUs)"
    return f"{record['threads']} (pinned)"


def _ms(result: dict | None) -> str:
    return f"{result['median_ms']:.3f} ({result['p90_ms']:.3f})" if _ok(result) else ""


def _ok(result: dict | None) -> bool:
    return bool(result) and result.get("status") == "ok"


def speedup(record: dict, name: str, over: str) -> float | None:
    """How many times faster `name` is than `over` (median latencies), None if either did not run."""
    a, b = record["backends"].get(name), record["backends"].get(over)
    if not (_ok(a) and _ok(b)):
        return None
    return b["median_ms"] / a["median_ms"]


class _Footnotes:
    """Numbered reasons for cells that hold no timing (skipped, error, wrong output)."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def mark(self, result: dict | None) -> str:
        if result is None:
            return "-"
        if _ok(result):
            return ""
        reason = result.get("reason", "")
        if reason not in self.reasons:
            self.reasons.append(reason)
        return f"{result['status']} [{self.reasons.index(reason) + 1}]"

    def lines(self) -> list[str]:
        return [f"[{i}] {reason}" for i, reason in enumerate(self.reasons, 1)] + [""] if self.reasons else []


def _num(value: float | None, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def _model_table(records: list[dict], notes: _Footnotes) -> list[str]:
    head = [
        "| model | batch | threads | Cerebro ms | XLA ms | ORT ms | Cerebro vs XLA | Cerebro vs ORT "
        "| compile s C / X / O | max abs diff C / X / O |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = []
    for r in records:
        cells = [r["model"], str(r["batch"]), _threads(r)]
        for name in ("cerebro", "xla", "ort"):
            result = r["backends"].get(name)
            cells.append(_ms(result) or notes.mark(result))
        for over in ("xla", "ort"):
            cells.append(_num(speedup(r, "cerebro", over), ".2f") + ("x" if speedup(r, "cerebro", over) else ""))
        trio = [r["backends"].get(n) or {} for n in ("cerebro", "xla", "ort")]
        cells.append(" / ".join(_num(b.get("compile_s"), ".2f") or "-" for b in trio))
        cells.append(" / ".join(_num(b.get("max_abs_diff"), ".1e") or "-" for b in trio))
        rows.append("| " + " | ".join(cells) + " |")
    return head + rows + [""]


def _sgemm_table(record: dict, notes: _Footnotes) -> list[str]:
    lines = [
        "### sgemm 1024 x 1024 x 1024, one thread",
        "",
        "| backend | median ms | p90 ms | GFLOP/s | compile s | max abs diff |",
        "|---|---|---|---|---|---|",
    ]
    for name, result in record["backends"].items():
        if _ok(result):
            gflops = record["flops"] / (result["median_ms"] * 1e-3) / 1e9
            cells = [f"{result['median_ms']:.2f}", f"{result['p90_ms']:.2f}", f"{gflops:.1f}"]
        else:
            cells = [notes.mark(result), "", ""]
        cells += [_num(result.get("compile_s"), ".2f"), _num(result.get("max_abs_diff"), ".1e")]
        lines.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells) + " |")
    lines.append("")
    blas = (record["backends"].get("numpy") or {}).get("blas")
    if blas:
        lines.append(f"numpy's BLAS (threadpoolctl): `{json.dumps(blas)}`; {record.get('env_note', '')}")
        lines.append("")
    return lines


def _dispatch_table(record: dict, notes: _Footnotes) -> list[str]:
    calls = next((r.get("calls_per_sample") for r in record["backends"].values() if _ok(r)), 1)
    lines = [
        "### dispatch: one call of `x + 1` on 8 floats, one thread",
        "",
        f"What a call costs around its kernel; each sample times {calls} calls in a row (per-call times below).",
        "",
        "| call | median us | p90 us | vs XLA |",
        "|---|---|---|---|",
    ]
    for name, result in record["backends"].items():
        if _ok(result):
            over = speedup(record, name, "xla")
            cells = [f"{result['median_ms'] * 1e3:.2f}", f"{result['p90_ms'] * 1e3:.2f}",
                     _num(over, ".2f") + ("x" if over else "")]
        else:
            cells = [notes.mark(result), "", ""]
        lines.append(f"| {DISPATCH_LABELS.get(name, name)} | " + " | ".join(cells) + " |")
    return lines + [""]


def _references(report: dict) -> str:
    by_reference: dict[str, list[str]] = {}
    for r in report["results"]:
        if "reference" in r and r["model"] not in by_reference.setdefault(r["reference"], []):
            by_reference[r["reference"]].append(r["model"])
    return "; ".join(f"{ref} for {', '.join(models)}" for ref, models in by_reference.items()) or "none ran"


def markdown(report: dict) -> str:
    m = report["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    lines = [
        "# Cerebro benchmark: Cerebro vs XLA (jax.jit) vs ONNX Runtime",
        "",
        f"- Machine: {m['cpu']} ({m['arch']}), {m['logical_cpus']} logical CPUs ({m['usable_cpus']} usable), "
        f"{m['memory_gib']} GiB, vector ISA: {', '.join(m['vector_isa']) or 'n/a'}, Linux {m['kernel']}",
        f"- Software: Python {m['python']}, {versions}; commit {m['commit']}; {m['date']}",
        f"- Command: `{report['command'].strip()}`",
        f"- Sampling per backend and configuration: {report['budget_text']}",
        "- Cells: median latency in ms (p90 in parentheses); 'Cerebro vs X' = X median / Cerebro median "
        "(above 1: Cerebro is faster). Every output was checked against the reference "
        f"({_references(report)}) before timing; 'compile s' is jit lower+compile for XLA, session creation "
        "for ORT, trace+compile+load for Cerebro.",
        "",
    ]
    notes = _Footnotes()
    models = [r for r in report["results"] if r["model"] not in FIXED_ROWS and "error" not in r]
    if models:
        lines += _model_table(models, notes)
    for record in report["results"]:
        if record["model"] == "sgemm" and "error" not in record:
            lines += _sgemm_table(record, notes)
        if record["model"] == "dispatch" and "error" not in record:
            lines += _dispatch_table(record, notes)
    failed = [r for r in report["results"] if "error" in r]
    for r in failed:
        lines.append(f"- {r['model']} batch {r['batch']} threads {r['threads']}: configuration failed: {r['error']}")
    if failed:
        lines.append("")
    return "\n".join(lines + notes.lines())


def _config_label(r: dict) -> str:
    if r["model"] == "sgemm":
        return "sgemm\n1024³ t1"
    if r["model"] == "dispatch":
        return "dispatch\nx+1 t1"
    return f"{r['model']}\nb{r['batch']} t{'1' if r['threads'] == 1 else 'def'}"


def plot(report: dict, path: Path) -> None:
    """Speedups per model/batch/threads, log scale, bars growing from 1: over XLA (top) and over ORT (bottom).

    The second panel exists because MiniLM has no XLA version, so only ORT can be its baseline.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [r for r in report["results"] if "error" not in r]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(8.0, 0.62 * len(records) + 1.5), 8.5), sharex=True)
    _panel(top, records, "xla", ("cerebro", "ort", "numpy"))
    _panel(bottom, records, "ort", ("cerebro", "xla"))
    bottom.set_xticks(range(len(records)), [_config_label(r) for r in records], fontsize=7)
    m = report["machine"]
    top.set_title(
        "Speedup (median latency), higher is better; b = batch, t = threads (1 pinned / default)\n"
        f"{m['cpu']}, {m['usable_cpus']} CPUs, {m['date']}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _panel(ax, records: list[dict], baseline: str, names: tuple[str, ...]) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    names = tuple(n for n in names if any(n in r["backends"] for r in records))
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        xs, ys = [], []
        for j, r in enumerate(records):
            value = speedup(r, name, baseline)
            if value is not None:
                xs.append(j + (i - (len(names) - 1) / 2) * width)
                ys.append(value)
        bars = ax.bar(xs, [y - 1 for y in ys], width, bottom=1, label=LABELS[name], color=COLORS[name])
        ax.bar_label(bars, labels=[f"{y:.2g}" for y in ys], fontsize=6, padding=1)
    for j, r in enumerate(records):
        if not _ok(r["backends"].get(baseline)):
            ax.text(j, 1, f"no\n{SHORT[baseline]}", ha="center", va="center", fontsize=6, color="dimgray",
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})  # fmt: skip
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--", label=f"{LABELS[baseline]} (= 1)")
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    ax.set_ylim(low / 1.15, high * 1.15)  # room for the bar labels
    ax.yaxis.set_major_locator(FixedLocator(TICKS))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}x"))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlim(-0.6, len(records) - 0.4)
    ax.set_ylabel(f"speedup over {LABELS[baseline]}")
    ax.legend(fontsize=7, loc="upper left", ncol=len(names) + 1)
    ax.grid(axis="y", which="major", alpha=0.3)


def main() -> None:
    """python -m benchmarks.report DIR: re-render DIR/latest.md and latest.png from DIR/latest.json."""
    import sys

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results"
    full = json.loads((out / "latest.json").read_text())
    (out / "latest.md").write_text(markdown(full))
    plot(full, out / "latest.png")
    print(f"rewrote {out / 'latest.md'} and {out / 'latest.png'}")


if __name__ == "__main__":
    main()
