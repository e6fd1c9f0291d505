"""Where a zoo model's time goes against its floor: every node of Cerebro's profiling build timed on one
pinned core (benchmarks.profile), then, per op, the time its flops would take at the core's FMA peak and
the excess over it, largest first: the ops to work on.

    python -m benchmarks.zoo.profile efficientnet_b0 --batch 1 --top 10
    python -m benchmarks.zoo.profile convnext_tiny --batch 8 --threads 2   # what does not scale

--threads N: per step of a call split across N threads, the one-thread and N-thread times, the speedup
and the time lost against a perfect split, per step and per op (benchmarks.profile.profile_threads).

--all: every zoo model with a cached export, each as a section of a markdown report (--out, default
benchmarks/results/zoo_profiles.md): its row of the zoo run (zoo.json) against the floor, then where its
nodes' time goes against the FMA peak, so each model's distance from the floor can be read by op.

    python -m benchmarks.zoo.profile --all --batch 1 --repeats 20
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from benchmarks import RESULTS
from benchmarks.profile import profile_graph, profile_threads, render, render_threads
from benchmarks.zoo.floor_report import floors


def kind(row: dict) -> str:
    """A profile row's op, convolutions told apart by their kernel (`what` is 'label x-shape w-shape ...',
    x [N, H, W, Cin] and the kernel [KH, KW, Cin/groups, Cout], cerebro.profiling): depthwise, grouped or
    dense, and KHxKW."""
    parts = row["what"].split()
    if row["op"] != "conv" or len(parts) < 3:
        return row["op"]
    x, kernel = parts[1].split("x"), parts[2].split("x")
    if len(kernel) != 4 or not all(d.isdigit() for d in (*kernel, x[-1])):
        return "conv"
    size = f"{kernel[0]}x{kernel[1]}"
    if kernel[2] == x[-1]:
        return f"conv {size}"
    return f"conv {'depthwise' if kernel[2] == '1' else 'grouped'} {size}"


def against_peak(rows: list[dict], peak_flops: float) -> list[str]:
    """Per kind of op: measured us, share, GFLOP (estimated, epilogues included), GFLOP/s, % of the peak, and
    the excess us over the time at the peak (the floor's share of this op), largest excess first."""
    ops: dict[str, list[float]] = {}
    for r in rows:
        us, flops = ops.setdefault(kind(r), [0.0, 0.0])
        ops[kind(r)] = [us + r["median_us"], flops + r["flops"]]
    total = sum(us for us, _ in ops.values()) or 1.0
    lines = [f"FMA peak {peak_flops / 1e9:.1f} GFLOP/s (benchmarks.floor.fma_peak, this core)", "",
             "| op | us | share | GFLOP | GFLOP/s | % of peak | us at peak | excess us |",
             "|---|---|---|---|---|---|---|---|"]
    excess = {op: us - flops / peak_flops * 1e6 for op, (us, flops) in ops.items()}
    for op in sorted(ops, key=lambda o: -excess[o]):
        us, flops = ops[op]
        rate = flops / us / 1e3 if us else 0.0
        lines.append(f"| {op} | {us:.1f} | {100 * us / total:.1f}% | {flops / 1e9:.3f} | {rate:.1f} "
                     f"| {100 * rate * 1e9 / peak_flops:.0f}% | {flops / peak_flops * 1e6:.1f} | {excess[op]:.1f} |")
    return lines


def model_section(model: str, batch: int, rows: list[dict], peak_flops: float,
                  zoo_row: tuple[dict, dict] | None) -> list[str]:
    """One model's section of the --all report: its one-thread zoo row against the floor (zoo.json: the
    call as timed, weights from wherever they are) and its nodes timed alone (weights warm) by kind of op
    against the peak."""
    lines = [f"### {model} b{batch}, one pinned thread", ""]
    if zoo_row is not None:
        record, floor = zoo_row
        cerebro, ort = (record["backends"][name]["median_ms"] for name in ("cerebro", "ort"))
        lines.append(f"Zoo run: Cerebro {cerebro:.2f} ms, ORT {ort:.2f} ms ({ort / cerebro:.2f}x); floor "
                     f"{floor['floor_ms']:.2f} ms (flops {floor['flop_ms']:.2f}, bytes {floor['byte_ms']:.2f}): "
                     f"Cerebro at {100 * floor['cerebro']:.0f}% of it, ORT at {100 * floor['ort']:.0f}%.")
    total = sum(r["median_us"] for r in rows) / 1e3
    lines += [f"Its {len(rows)} nodes timed alone, weights warm: {total:.2f} ms in all.", ""]
    return lines + against_peak(rows, peak_flops) + [""]


def _zoo_row(rows: list[tuple[dict, dict]], model: str, batch: int) -> tuple[dict, dict] | None:
    """model's one-thread row at batch among floor_report.floors' rows."""
    return next(((record, floor) for record, floor in rows if record["model"] == model
                 and record["batch"] == batch and floor["threads"] == 1), None)


def profile_all(args: argparse.Namespace) -> None:
    """The --all report, model by model as the zoo's catalog lists them."""
    import json

    from benchmarks.floor import fma_peak
    from benchmarks.machine import describe
    from benchmarks.zoo.catalog import MODELS
    from benchmarks.zoo.run import default_cache
    from benchmarks.zoo.worker import onnx_workload
    from cerebro.frontends.onnx import import_onnx

    cache = args.zoo_cache or default_cache()
    zoo_rows = floors(json.loads(args.zoo_json.read_text())) if args.zoo_json.exists() else []
    os.sched_setaffinity(0, {args.cpu})
    peak = fma_peak()
    m = describe()
    lines = [f"# Zoo models at batch {args.batch}, one pinned thread: where the time goes against the floor", "",
             f"- Machine: {m['cpu']}, CPU {args.cpu}; commit {m['commit']}; {m['date']}; FMA peak "
             f"{peak / 1e9:.1f} GFLOP/s (`benchmarks.floor.fma_peak`)",
             f"- Command: `python -m benchmarks.zoo.profile --all --batch {args.batch} --repeats {args.repeats}`; "
             f"the zoo rows and floors from {args.zoo_json.name} (`python -m benchmarks --zoo`)", ""]
    for zoo_model in MODELS:
        if not (cache / zoo_model.name / f"b{args.batch}.onnx").exists():
            continue
        w = onnx_workload(cache, zoo_model.name, args.batch)
        rows, _ = profile_graph(import_onnx(w.onnx), tuple(w.inputs), args.repeats)
        lines += model_section(zoo_model.name, args.batch, rows, peak, _zoo_row(zoo_rows, zoo_model.name, args.batch))
        print(f"profiled {zoo_model.name} b{args.batch}", flush=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


def main(argv: list[str] | None = None) -> None:
    from benchmarks.floor import fma_peak, read_time
    from benchmarks.zoo.run import default_cache
    from benchmarks.zoo.worker import onnx_workload
    from cerebro.frontends.onnx import import_onnx

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", help="a zoo model (or --all)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--top", type=int, default=15, help="rows of the slowest nodes (default 15)")
    parser.add_argument("--zoo-cache", type=Path, default=None, help="the exported files (default as --zoo)")
    parser.add_argument("--cpu", type=int, default=max(os.sched_getaffinity(0)), help="the CPU to pin to")
    parser.add_argument("--threads", type=int, default=1,
                        help="2 or more: per step and op, the time on one thread and on this many, unpinned")
    parser.add_argument("--all", action="store_true", help="every zoo model, as a markdown report (--out)")
    parser.add_argument("--out", type=Path, default=RESULTS / "zoo_profiles.md")
    parser.add_argument("--zoo-json", type=Path, default=RESULTS / "zoo.json", help="the zoo run's rows (--all)")
    args = parser.parse_args(argv)
    if args.all:
        return profile_all(args)
    if args.model is None:
        parser.error("name a zoo model, or --all")
    w = onnx_workload(args.zoo_cache or default_cache(), args.model, args.batch)
    if args.threads > 1:
        try:
            rows = profile_threads(import_onnx(w.onnx), tuple(w.inputs), args.repeats, args.threads)
        except RuntimeError as error:
            parser.error(str(error))
        cpus = sorted(os.sched_getaffinity(0))
        print(f"{args.model} batch {args.batch}, 1 and {args.threads} threads (CPUs {cpus}), {args.repeats} repeats, "
              f"load average {os.getloadavg()[0]:.1f}\n")
        print(render_threads(rows, args.threads, args.top, kind))
        return
    os.sched_setaffinity(0, {args.cpu})
    rows, weight_bytes = profile_graph(import_onnx(w.onnx), tuple(w.inputs), args.repeats)
    print(f"{args.model} batch {args.batch}, one thread (CPU {args.cpu}), {args.repeats} repeats, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print(render(rows, args.top, weight_bytes, read_time(weight_bytes) * 1e6 if weight_bytes else None))
    print("\n" + "\n".join(against_peak(rows, fma_peak())))


if __name__ == "__main__":
    main()
