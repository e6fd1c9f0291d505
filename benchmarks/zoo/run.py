"""python -m benchmarks --zoo: export the zoo (once, cached), then time Cerebro vs ONNX Runtime (and XLA)
on every model, batch and thread setting, one worker process per configuration; results in
--out/zoo.json, zoo.md and zoo.png, rewritten after every configuration."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from benchmarks import machine, timing
from benchmarks.report import write_json
from benchmarks.zoo import report, venv
from benchmarks.zoo.catalog import ZooModel

REPO = Path(__file__).resolve().parents[2]
# Fewer samples than the suite's FULL budget: 17 models x 2 batches x 2 thread settings in one run.
BUDGET = timing.Budget(warmup=3, min_repeats=40, min_seconds=1.0, max_seconds=8.0, floor_repeats=8, rounds=4)
EXPORTER_VERSIONS = ("import torch, torchvision, transformers; "
                     "print(f'torch {torch.__version__}, torchvision {torchvision.__version__}, "
                     "transformers {transformers.__version__}')")


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cerebro" / "zoo"


def plan(models: list[ZooModel], batches: list[int], threads: list[str]) -> list[tuple[str, int, str]]:
    """Configurations in run order; per model and batch the pinned one first: it compiles (on one core)."""
    ordered = sorted(threads, key=lambda t: t != "1")
    return [(m.name, batch, t) for m in models for batch in batches for t in ordered]


def _exporter_versions(python: Path) -> str:
    done = subprocess.run([str(python), "-c", EXPORTER_VERSIONS], capture_output=True, text=True)
    return done.stdout.strip() or "unknown versions"


def export_all(python: Path, models: list[ZooModel], batches: list[int], cache: Path, log: Path,
               progress: Progress) -> None:
    """Run the exporter in its environment, one progress step per line it prints."""
    task = progress.add_task("exporting to ONNX (cached ones are kept)", total=len(models) * len(batches))
    command = [str(python), "-m", "benchmarks.zoo.export", "--cache", str(cache),
               "--models", ",".join(m.name for m in models), "--batches", ",".join(map(str, batches))]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(log, "w") as err, subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err,
                                                 text=True) as proc:
        for line in proc.stdout:
            if not line.startswith("@ "):
                continue
            _, name, batch, status, *rest = line.split(maxsplit=4)
            if status == "error":
                progress.console.print(f"[red]{name} {batch}: {rest[-1].strip()}[/red]")
            elif status == "ok":
                progress.console.print(f"exported {name} {batch} ({rest[0]} s)")
            progress.update(task, advance=1, description=f"exporting to ONNX: {name} {batch} {status}")
    if proc.returncode != 0:
        progress.console.print(f"[red]the exporter exited with status {proc.returncode}; see {log}[/red]")


def run_config(model: str, batch: int, threads: str, args: argparse.Namespace, workdir: Path, logs: Path,
               progress: Progress, task: int) -> dict:
    """One worker process (pinned to --cpu with threads=1); its '@ ' lines become the task's description."""
    from benchmarks.__main__ import environment

    env, _ = environment(model, threads)
    stem = f"zoo-{model}-b{batch}-t{threads}"
    result = logs / f"{stem}.json"
    result.unlink(missing_ok=True)
    command = [sys.executable, "-m", "benchmarks.zoo.worker", "--model", model,
               "--batch", str(batch), "--threads", threads, "--cache", str(args.zoo_cache), "--workdir", str(workdir),
               "--budget", json.dumps(args.budget.to_dict()), "--result", str(result)]
    pin = (lambda: os.sched_setaffinity(0, {args.cpu})) if threads == "1" else None
    head = f"{model} b{batch} threads {threads}"
    with open(logs / f"{stem}.log", "w") as log, subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=log, text=True, preexec_fn=pin) as proc:
        killer = threading.Timer(args.timeout, proc.kill)
        killer.start()
        for line in proc.stdout:
            if line.startswith("@ "):
                progress.update(task, description=f"{head}: {line[2:].strip()}")
        killer.cancel()
    if result.exists():
        return json.loads(result.read_text())
    failure = f"killed after {args.timeout:.0f} s" if proc.returncode < 0 else f"worker exited with {proc.returncode}"
    return {"model": model, "batch": batch, "threads": threads, "backends": {}, "error": f"{failure} (see {stem}.log)"}


def _line(record: dict) -> str:
    if "error" in record:
        return f"[red]{record['model']} b{record['batch']} t{record['threads']}: {record['error']}[/red]"
    parts = []
    for name, result in record["backends"].items():
        parts.append(f"{name} {result['median_ms']:.2f} ms" if result.get("median_ms") is not None
                     else f"{name} {result['status']}: {result.get('reason', '')[:160]}")
    return f"{record['model']} b{record['batch']} t{record['threads']}: " + " | ".join(parts)


def main(args: argparse.Namespace, command: str) -> dict:
    from benchmarks.__main__ import budget_text

    out, logs = args.out, args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    args.zoo_cache.mkdir(parents=True, exist_ok=True)
    configs = plan(args.zoo_models, args.batch, args.threads)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns) as progress:
        python = venv.ensure(logs / "zoo-venv.log", say=progress.console.print)
        export_all(python, args.zoo_models, args.batch, args.zoo_cache, logs / "zoo-export.log", progress)
        full = {"machine": machine.describe(), "exporter": _exporter_versions(python), "command": command,
                "budget": args.budget.to_dict(), "budget_text": budget_text(args.budget), "results": []}
        task = progress.add_task("benchmarking", total=len(configs))
        with tempfile.TemporaryDirectory(prefix="cerebro-zoo-") as workdir:
            for model, batch, threads in configs:
                record = run_config(model, batch, threads, args, Path(workdir), logs, progress, task)
                full["results"].append(record)
                progress.console.print(_line(record))
                progress.advance(task)
                write_json(full, out / "zoo.json")
                (out / "zoo.md").write_text(report.markdown(full))
                report.plot(full, out / "zoo.png")
    print(f"wrote {out / 'zoo.md'}, zoo.json, zoo.png")
    return full
