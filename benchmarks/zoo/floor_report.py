"""The zoo report's floor section: per row, the model's floor on this machine (benchmarks.zoo.floor), how
close Cerebro and ONNX Runtime come to it, and so the most Cerebro could lead ORT by without doing fewer
flops; a summary says which rows are at their floor and which are the misses left to work on."""

from __future__ import annotations

import statistics

from benchmarks.floor import GEMM_SHAPES
from benchmarks.report import _threads, speedup
from benchmarks.zoo.floor import compute_peak, row_floor, threads_of, work_key

# A row "at its floor": the best whole-model rows reached about 90% of the FMA peak on Zen 4 (ORT's resnet18
# and resnet50 at batch 8, pinned: 90-91% on the c50247c zoo run; packing, loop and edge overheads take the
# rest), so a row at 80% or more is near its floor and one under it has room left.
AT_FLOOR = 0.80
TARGET = 1.3  # issue 14's median Cerebro/ORT


def floors(report: dict) -> list[tuple[dict, dict]]:
    """(record, floor) for every row that ran both backends and whose model's work was counted."""
    machine, works = report.get("floor"), report.get("work", {})
    if not machine:
        return []
    usable = report["machine"]["usable_cpus"]
    rows = []
    for record in report["results"]:
        work = works.get(work_key(record["model"], record["batch"]))
        if work and "flops" in work and speedup(record, "cerebro", "ort") is not None:
            floor = row_floor(work, machine, threads_of(record, usable))
            ort, cerebro = (record["backends"][n]["median_ms"] for n in ("ort", "cerebro"))
            floor.update(cerebro=floor["floor_ms"] / cerebro, ort=floor["floor_ms"] / ort,
                         reach=ort / floor["floor_ms"], now=ort / cerebro)
            rows.append((record, floor))
    return rows


def _gflop(work: dict) -> str:
    return " / ".join(f"{work['flops'][k] / 1e9:.2f}" for k in ("conv", "matmul", "attention", "other"))


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def _row_name(record: dict, floor: dict) -> str:
    return f"{record['model']} b{record['batch']}/t{floor['threads']}"


def table(report: dict, rows: list[tuple[dict, dict]]) -> list[str]:
    lines = ["| model | batch | threads | GFLOP conv / matmul / attention / other | 3x3/1 / grouped conv | weights MB "
             "| moved MB | FLOP floor ms | byte floor ms | Cerebro ms (% of floor) | ORT ms (% of floor) "
             f"| Cerebro vs ORT | at the floor | {TARGET}x at |", "|---" * 14 + "|"]
    for record, floor in rows:
        work = report["work"][work_key(record["model"], record["batch"])]
        total = sum(work["flops"].values())
        ms = {n: record["backends"][n]["median_ms"] for n in ("cerebro", "ort")}
        cells = [record["model"], str(record["batch"]), _threads(record), _gflop(work),
                 " / ".join(_pct(work[k] / total) for k in ("conv3x3_flops", "grouped_conv_flops")) if total else "",
                 f"{work['weight_bytes'] / 1e6:.1f}",
                 f"{floor['activations_moved'] / 1e6:.1f}", _bold(f"{floor['flop_ms']:.2f}", floor["bound"] == "flops"),
                 _bold(f"{floor['byte_ms']:.2f}", floor["bound"] == "bytes"),
                 f"{ms['cerebro']:.2f} ({_pct(floor['cerebro'])})", f"{ms['ort']:.2f} ({_pct(floor['ort'])})",
                 f"{floor['now']:.2f}x", f"{floor['reach']:.2f}x", _pct(TARGET / floor["reach"])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def _bold(text: str, on: bool) -> str:
    return f"**{text}**" if on else text


def _names(rows: list[tuple[dict, dict]], key: str) -> str:
    return ", ".join(f"{_row_name(r, f)} {_pct(f[key])}" for r, f in rows) or "none"


def medians(rows: list[tuple[dict, dict]]) -> list[str]:
    """Per configuration: the median Cerebro/ORT now against the most the median could be with Cerebro at
    its floor, and at 90% of it (where the best matmuls run), each row already past that (by doing fewer
    flops: Winograd) kept as it is: whether the median target can hold at all; then, where it does not
    hold, the rows below it that would have to reach it for the median to, those needing the smallest
    share of their floor, each with that share ('1.3x at': TARGET x ORT's share)."""
    lines = []
    for batch, threads in dict.fromkeys((r["batch"], f["threads"]) for r, f in rows):
        chosen = [(r, f) for r, f in rows if r["batch"] == batch and f["threads"] == threads]
        at_floor, near = (statistics.median(max(f["now"], share * f["reach"]) for _, f in chosen) for share in (1, 0.9))
        reachable = sum(max(f["now"], f["reach"]) >= TARGET for _, f in chosen)
        line = (f"- b{batch}/t{threads}: median Cerebro vs ORT {statistics.median(f['now'] for _, f in chosen):.2f}x "
                f"now; at most {at_floor:.2f}x with Cerebro at its floor in every row (a row past it as it is), "
                f"{near:.2f}x at 90% of it ({len(chosen)} models; {reachable} could reach {TARGET}x).")
        short = len(chosen) // 2 + 1 - sum(f["now"] >= TARGET for _, f in chosen)  # rows the median still needs
        if short > 0:
            below = sorted(((r, f) for r, f in chosen if f["now"] < TARGET), key=lambda rf: rf[1]["reach"],
                           reverse=True)[:short]
            line += (f" For a {TARGET}x median {short} more rows must reach it; the closest need Cerebro at "
                     + ", ".join(f"{_pct(TARGET / f['reach'])} ({r['model']}, now {_pct(f['cerebro'])})"
                                 for r, f in below) + " of their floor.")
        lines.append(line)
    return lines


def summary(rows: list[tuple[dict, dict]]) -> list[str]:
    """Which rows are bound by what, at their floor or not, and where a 1.3x lead is possible at all."""
    byte_bound = [(r, f) for r, f in rows if f["bound"] == "bytes"]
    capped = [(r, f) for r, f in rows if f["reach"] < TARGET]
    at_floor = [(r, f) for r, f in rows if f["cerebro"] >= AT_FLOOR]
    misses = sorted(((r, f) for r, f in rows if f["cerebro"] < AT_FLOOR), key=lambda rf: rf[1]["cerebro"])
    behind = [(r, f) for r, f in misses if f["now"] < 1.0]
    return [
        f"- Bound by flops in {len(rows) - len(byte_bound)} of {len(rows)} rows; by bytes in "
        f"{len(byte_bound)}{': ' + ', '.join(_row_name(r, f) for r, f in byte_bound) if byte_bound else ''}.",
        f"- A {TARGET}x lead over ORT is out of reach at the floor (ORT already runs at more than "
        f"{_pct(1 / TARGET)} of it; only fewer flops, e.g. Winograd on the 3x3/1 convolutions, would get there) "
        f"in {len(capped)} of {len(rows)} rows: {_names(capped, 'ort')} (ORT's % of floor).",
        f"- Cerebro at {_pct(AT_FLOOR)} of the floor or closer in {len(at_floor)} of {len(rows)} rows.",
        f"- The misses, Cerebro under {_pct(AT_FLOOR)} of the floor ({len(misses)} rows, Cerebro's % of floor): "
        f"{_names(misses, 'cerebro')}; of them behind ORT: {_names(behind, 'cerebro')}.",
        *medians(rows),
        "",
    ]


def _peak(machine: dict) -> str:
    """The floor's flop rate, said with where it comes from."""
    fma = f"{machine['peak_flops'] / 1e9:.1f} GFLOP/s"
    gemm = machine.get("gemm_flops")
    if not gemm:
        return f"{fma} float32 on one core (a register-only loop of vector FMAs, `benchmarks.floor.fma_peak`)"
    rates = ", ".join(f"{name} {rate / 1e9:.1f}" for name, rate in sorted(gemm.items()))
    when = f", measured {machine['gemm_date']}" if "gemm_date" in machine else ""
    shapes = " and ".join("x".join(map(str, shape)) for shape in GEMM_SHAPES)
    return (f"{compute_peak(machine) / 1e9:.1f} GFLOP/s float32 on one core, the fastest plain GEMM measured here "
            f"(`benchmarks.floor.gemm_peak`, one thread, best of {shapes}: "
            f"{rates}{when}), {_pct(compute_peak(machine) / machine['peak_flops'])} of the register-only FMA rate "
            f"({fma}, `benchmarks.floor.fma_peak`), which no layer reaches")


def markdown(report: dict) -> list[str]:
    """The section, or nothing when the run has no floor measurement or no counted work."""
    rows = floors(report)
    if not rows:
        return []
    machine = report["floor"]
    bandwidth = ", ".join(f"{level.upper()} {value / 1e9:.0f}" for level, value in machine["read_bytes_per_s"].items())
    threads = sorted({f["threads"] for _, f in rows})
    return [
        "### Floor: the least time this machine could take for each row", "",
        f"- Peak, times the row's threads ({', '.join(map(str, threads))}): {_peak(machine)}; read "
        f"bandwidth of one core, GB/s: {bandwidth} (`benchmarks.floor.read_time`), times the threads; L2 "
        f"{machine['caches']['l2'] // 1024} KiB per core, L3 {machine['caches']['l3'] // 2**20} MiB. Measured on CPU "
        f"{machine['cpu']}, {machine['date']}, load average {machine['load']:.1f} (best of many short trials).",
        "- Work, counted on the IR Cerebro compiles (`benchmarks/zoo/work.py`): GFLOP of convolutions, of matmuls "
        "against weights, of attention's matmuls (two activations) and of the rest (elementwise, normalisation, "
        "softmax, pools: the IR's cost model, a transcendental 20 per element); '3x3/1 / grouped conv': the "
        "shares of all flops in dense 3x3 stride-1 convolutions (Winograd F(2x2, 3x3) does those with 2.25x "
        "fewer multiplications) and in grouped or depthwise ones (a few flops per byte: far from the FMA "
        "peak in practice); weights MB read per call (of an embedding table only the rows taken); moved MB: "
        "the activations at conv/matmul boundaries larger than L2, written out and read back by a "
        "layer-by-layer execution. Rows are named 'b<batch>/t<threads>' below.",
        "- FLOP floor = flops / peak; byte floor = weights and moved bytes at the bandwidth of the level they "
        "fit in; the floor is the larger (bold). '% of floor' = floor / median; 'at the floor' = ORT / floor, "
        f"the most Cerebro could lead ORT by at its floor without doing fewer flops; '{TARGET}x at' = the share "
        f"of its floor Cerebro would run at to lead ORT by {TARGET}x (over 100%: only with fewer flops). Every "
        "assumption errs "
        "low (every flop at the fastest GEMM's rate, peak and bandwidth scaled by the threads, writes at read "
        "bandwidth, nothing for transposes or copies), so the floor is a lower bound for a layer-by-layer "
        "execution at this machine's best GEMM rate; fewer flops (Winograd) can go under it.",
        "",
        *summary(rows),
        *table(report, rows),
    ]


def plot_marks(report: dict) -> dict[tuple[str, str, str], float]:
    """(model, batch, threads) -> ORT / floor, the most Cerebro could lead ORT by (the plot's ceiling marks)."""
    return {(r["model"], str(r["batch"]), str(r["threads"])): f["reach"] for r, f in floors(report)}
