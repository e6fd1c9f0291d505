"""The zoo's results as Markdown (speed table, compile-time table, failures) and a PNG (speedups over
ONNX Runtime per model and configuration; Cerebro's compile time split by phase)."""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmarks import RESULTS
from benchmarks.report import TICKS, _Footnotes, _ms, _num, _threads, speedup, write_json
from benchmarks.zoo import floor, floor_report
from benchmarks.zoo.phases import COLUMNS, grouped

CONFIG_COLORS = {("1", "1"): "tab:red", ("1", "default"): "salmon", ("8", "1"): "tab:blue",
                 ("8", "default"): "skyblue"}
PHASE_COLORS = ("tab:gray", "tab:green", "tab:purple", "tab:orange", "tab:brown", "black")


def _x(value: float | None) -> str:
    return _num(value, ".2f") + ("x" if value is not None else "")


def speed_table(records: list[dict], notes: _Footnotes) -> list[str]:
    lines = ["| model | batch | threads | Cerebro ms | ORT ms | XLA ms (Flax twin) | Cerebro vs ORT | Cerebro vs XLA "
             "| max abs diff C / O | load avg |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        if "error" in r:
            failed = notes.mark({"status": "failed", "reason": r["error"]})
            lines.append(f"| {r['model']} | {r['batch']} | {_threads(r)} | {failed} | | | | | | |")
            continue
        cells = [r["model"], str(r["batch"]), _threads(r)]
        for name in ("cerebro", "ort", "xla"):
            result = r["backends"].get(name)
            cells.append((_ms(result) + _alone(result)) if _ms(result) else notes.mark(result))
        cells += [_x(speedup(r, "cerebro", "ort")), _x(speedup(r, "cerebro", "xla"))]
        pair = [r["backends"].get(n) or {} for n in ("cerebro", "ort")]
        cells.append(" / ".join(_num(b.get("max_abs_diff"), ".1e") or "-" for b in pair))
        cells.append(_num(r.get("load_before"), ".1f") + (" +export" if r.get("exporter_running") else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def _alone(result: dict | None) -> str:
    """' alone 5/20' where the pool ran some of a 2-thread row's timed calls on the caller's thread only
    (it does under a competing load: runtime_kmod/user/pool.c); the row then measured the load too."""
    pool = (result or {}).get("pool") or {}
    return f" alone {pool['alone']}/{pool['alone'] + pool['shared']}" if pool.get("alone") else ""


def compiled(records: list[dict]) -> list[dict]:
    """The records whose Cerebro column compiled the model (one per model and batch)."""
    return [r for r in records if (r["backends"].get("cerebro") or {}).get("compiled_here")]


def split(cerebro: dict) -> dict[str, float]:
    """The compile's seconds per report column; 'other' is what no phase covers (the total's rest)."""
    columns = grouped(cerebro.get("phases", {}))
    columns["other"] = columns.get("other", 0.0) + max(0.0, cerebro.get("compile_s", 0.0) - sum(columns.values()))
    return columns


def compile_table(records: list[dict]) -> list[str]:
    lines = [f"| model | batch | nodes | {' | '.join(COLUMNS)} | other | Cerebro total s | ORT session s "
             "| XLA compile s |", "|---|---|---|" + "---|" * len(COLUMNS) + "---|---|---|---|"]
    for r in compiled(records):
        cerebro = r["backends"]["cerebro"]
        columns = split(cerebro)
        cells = [r["model"], str(r["batch"]), str(cerebro.get("nodes", ""))]
        cells += [_num(columns.get(column), ".2f") for column in (*COLUMNS, "other")]
        cells += [_num(cerebro.get("compile_s"), ".2f")]
        cells += [_num((r["backends"].get(n) or {}).get("compile_s"), ".2f") for n in ("ort", "xla")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def summary(records: list[dict]) -> list[str]:
    """Per configuration: the median Cerebro/ORT ratio over the models that ran, and how many are >= 1."""
    lines = []
    for batch, threads in CONFIG_COLORS:
        ratios = [speedup(r, "cerebro", "ort") for r in records
                  if str(r["batch"]) == batch and str(r["threads"]) == threads and "error" not in r]
        ratios = [x for x in ratios if x is not None]
        if ratios:
            lines.append(f"- batch {batch}, threads {threads}: median Cerebro vs ORT {statistics.median(ratios):.2f}x "
                         f"over {len(ratios)} models; {sum(x >= 1 for x in ratios)} at or above 1.0x")
    return lines + [""] if lines else []


def _load(records: list[dict]) -> str:
    loads = [r[k] for r in records for k in ("load_before", "load_after") if k in r]
    return f"load average {min(loads):.1f}-{max(loads):.1f} during the run" if loads else "load average not recorded"


def markdown(report: dict) -> str:
    m = report["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    records = report["results"]
    load = _load(records)
    notes = _Footnotes()
    lines = [
        "# Model zoo: Cerebro vs ONNX Runtime (and XLA)",
        "",
        f"- Machine: {m['cpu']} ({m['arch']}), {m['logical_cpus']} logical CPUs ({m['usable_cpus']} usable), "
        f"{m['memory_gib']} GiB, vector ISA: {', '.join(m['vector_isa']) or 'n/a'}, Linux {m['kernel']}; {load}",
        f"- Software: Python {m['python']}, {versions}; exported with {report.get('exporter', '?')}; "
        f"commit {m['commit']}; {m['date']}",
        f"- Command: `{report['command']}`",
        f"- Sampling per backend and configuration: {report['budget_text']}",
        "- Models: torchvision and transformers architectures with random weights, exported to ONNX by PyTorch "
        "(TorchScript exporter, opset 17, static shapes); Cerebro and ORT run the same file and are checked "
        "against PyTorch's output. XLA runs a Flax version of the architecture where one is installed "
        "(its own random weights, checked against JAX eager). Cells: median ms (p90); 'vs' = other / Cerebro; "
        "'load avg': the 1-minute load average as the row began (the machine's other jobs; '+export': the "
        "exporter was running too); 'alone N/M': the pool ran N of a 2-thread row's M timed calls on one "
        "thread, as it does under a competing load.",
        "",
    ]
    lines += summary(records)
    lines += speed_table(records, notes)
    lines += floor_report.markdown(report)
    lines += ["### Cerebro compile time by phase (seconds, one pinned core)", "",
              "import: ONNX -> IR; passes: verify, fold, optimise, stages and memory plan; emit IR: LLVM IR "
              "text; LLVM: parse, O3, machine code; write+load: the .cbx and runtime.load; other: the rest of the "
              "total (target machine set-up, Python between phases).", ""]
    lines += compile_table(records)
    return "\n".join(lines + notes.lines())


def plot(report: dict, path: Path) -> None:
    """Top: Cerebro's speedup over ORT per model, one bar per (batch, threads). Bottom: compile seconds
    per model (first batch compiled), stacked by phase."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    records = report["results"]
    models = list(dict.fromkeys(r["model"] for r in records))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(9.0, 0.7 * len(models) + 2), 9), sharex=True)
    width = 0.8 / len(CONFIG_COLORS)
    ceilings = floor_report.plot_marks(report)
    marks: list[tuple[float, float]] = []
    for i, ((batch, threads), color) in enumerate(CONFIG_COLORS.items()):
        xs, ys = [], []
        for j, model in enumerate(models):
            for r in records:
                if r["model"] == model and str(r["batch"]) == batch and str(r["threads"]) == threads:
                    value = speedup(r, "cerebro", "ort") if "error" not in r else None
                    if value is not None:
                        xs.append(j + (i - 1.5) * width)
                        ys.append(value)
                    if (model, batch, threads) in ceilings:
                        marks.append((j + (i - 1.5) * width, ceilings[model, batch, threads]))
        bars = top.bar(xs, [y - 1 for y in ys], width, bottom=1, color=color,
                       label=f"batch {batch}, threads {'1 (pinned)' if threads == '1' else 'default'}")
        top.bar_label(bars, labels=[f"{y:.2g}" for y in ys], fontsize=5, padding=1)
    if marks:
        top.scatter(*zip(*marks), marker="_", s=40, color="black", linewidths=1.2,
                    label="at the floor: ORT / floor (the most Cerebro could lead by)")
    top.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    top.axhline(floor_report.TARGET, color="gray", linewidth=0.6, linestyle=":")  # issue 14's median target
    top.set_yscale("log")
    low, high = top.get_ylim()
    top.set_ylim(min(low, 0.9) / 1.15, max(high, 1.1) * 1.3)  # room for the labels and the legend
    top.yaxis.set_major_locator(FixedLocator(TICKS))
    top.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}x"))
    top.yaxis.set_minor_locator(NullLocator())
    top.set_ylabel("Cerebro speedup over ONNX Runtime")
    top.legend(fontsize=7, ncol=3, loc="upper left")
    m = report["machine"]
    top.set_title(f"Model zoo, median latency ratio (above 1: Cerebro faster)\n{m['cpu']}, {m['usable_cpus']} CPUs, "
                  f"commit {m['commit']}, {m['date']}, {_load(records)}", fontsize=9)
    bottoms = [0.0] * len(models)
    first = {}
    for r in compiled(records):
        first.setdefault(r["model"], split(r["backends"]["cerebro"]))
    for column, color in zip((*COLUMNS, "other"), PHASE_COLORS):
        heights = [first.get(model, {}).get(column, 0.0) for model in models]
        if any(heights):
            bottom.bar(range(len(models)), heights, 0.6, bottom=bottoms, color=color, label=column)
            bottoms = [b + h for b, h in zip(bottoms, heights)]
    bottom.set_ylabel("Cerebro compile s (one core)")
    if first:
        bottom.legend(fontsize=7, ncol=6, loc="upper left")
    bottom.set_xticks(range(len(models)), models, rotation=45, ha="right", fontsize=7)
    for ax in (top, bottom):
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def complete_floor(full: dict, cache: Path, cpu: int) -> list[str]:
    """What a zoo.json from before the floor lacks, added: the machine's floor measured now on `cpu`, each
    model and batch's work counted from the cache's exported files. Returns what was added (for a message)."""
    from benchmarks.zoo.export import paths

    added = []
    if "floor" not in full:
        full["floor"] = floor.measure(cpu)
        added.append(f"the floor measured now ({full['floor']['date']})")
    elif "gemm_flops" not in full["floor"]:  # measured before the GEMM peak was part of it
        full["floor"]["gemm_flops"], full["floor"]["gemm_date"] = floor.gemm_rates(cpu), floor.now()
        added.append(f"the GEMM peak measured now ({full['floor']['gemm_date']})")
    for model, batch in dict.fromkeys((r["model"], r["batch"]) for r in full["results"]):
        if "flops" not in full.get("work", {}).get(floor.work_key(model, batch), {}):
            floor.add_work(full, paths(cache, model, batch)["onnx"], model, batch)
            if floor.work_key(model, batch) in full["work"]:
                added.append(floor.work_key(model, batch))
    return added


def main(argv: list[str] | None = None) -> None:
    """python -m benchmarks.zoo.report [DIR]: re-render DIR/zoo.md and zoo.png from DIR/zoo.json (default
    benchmarks/results). A zoo.json without the floor gets it first (measured now, work counted from the
    exported files) and is written back: the timed rows are kept as they are."""
    import argparse
    import json
    import os

    from benchmarks.zoo.run import default_cache

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("dir", type=Path, nargs="?", default=RESULTS)
    parser.add_argument("--zoo-cache", type=Path, default=None, help="the exported files (default as --zoo)")
    parser.add_argument("--cpu", type=int, default=max(os.sched_getaffinity(0)), help="where to measure the floor")
    args = parser.parse_args(argv)
    out = args.dir
    full = json.loads((out / "zoo.json").read_text())
    added = complete_floor(full, args.zoo_cache or default_cache(), args.cpu)
    if added:
        write_json(full, out / "zoo.json")
        print(f"added to {out / 'zoo.json'}: {', '.join(added)}")
    (out / "zoo.md").write_text(markdown(full))
    plot(full, out / "zoo.png")
    print(f"rewrote {out / 'zoo.md'} and {out / 'zoo.png'}")


if __name__ == "__main__":
    main()
