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
from benchmarks.zoo import floor, report, venv
from benchmarks.zoo.catalog import ZooModel
from benchmarks.zoo.export import paths

REPO = Path(__file__).resolve().parents[2]
# Fewer samples than the suite's FULL budget: 17 models x 2 batches x 2 thread settings in one run.
BUDGET = timing.Budget(warmup=3, min_repeats=40, min_seconds=1.0, max_seconds=8.0, floor_repeats=8, rounds=4)
EXPORTER_VERSIONS = ("import torch, torchvision, transformers; "
                     "print(f'torch {torch.__version__}, torchvision {torchvision.__version__}, "
                     "transformers {transformers.__version__}')")


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cerebro" / "zoo"


def plan(models: list[ZooModel], batches: list[int], threads: list[str]) -> list[tuple[str, int, str]]:
    """Configurations in run order: batch by batch (every model's first batch is done early), and per model
    and batch the pinned one first: it compiles (on one core)."""
    ordered = sorted(threads, key=lambda t: t != "1")
    return [(m.name, batch, t) for batch in batches for m in models for t in ordered]


def _exporter_versions(python: Path) -> str:
    done = subprocess.run([str(python), "-c", EXPORTER_VERSIONS], capture_output=True, text=True)
    return done.stdout.strip() or "unknown versions"


class Exporter:
    """The exporter running in its environment alongside the benchmark: a thread reads its '@ ' lines
    (one per model and batch: ok, cached or error) into progress; `wait` blocks until one is done, so a
    model is timed as soon as its files exist while the next ones export."""

    def __init__(self, python: Path, models: list[ZooModel], batches: list[int], cache: Path, log: Path,
                 progress: Progress) -> None:
        self.done: set[tuple[str, int]] = set()
        self.progress, self.log = progress, log
        self.task = progress.add_task("exporting to ONNX (cached files are kept)", total=len(models) * len(batches))
        self._changed = threading.Condition()
        command = [str(python), "-m", "benchmarks.zoo.export", "--cache", str(cache),
                   "--models", ",".join(m.name for m in models), "--batches", ",".join(map(str, batches))]
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}  # one core: the other times models
        self._err = open(log, "w")  # noqa: SIM115  (closed by the reader thread when the exporter ends)
        self.proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=self._err, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if not line.startswith("@ "):  # the TorchScript exporter prints graphs on stdout too
                continue
            _, name, batch, status, seconds, *reason = line.split(maxsplit=5)
            if status == "error":
                self.progress.console.print(f"[red]{name} {batch}: {reason[0].strip() if reason else ''}[/red]")
            elif status == "ok":
                self.progress.console.print(f"exported {name} {batch} ({seconds} s)")
            self.progress.update(self.task, advance=1, description=f"exporting to ONNX: {name} {batch} {status}")
            with self._changed:
                self.done.add((name, int(batch[1:])))
                self._changed.notify_all()
        self.proc.wait()
        self._err.close()
        if self.proc.returncode != 0:
            self.progress.console.print(f"[red]the exporter exited with status {self.proc.returncode}; "
                                        f"see {self.log}[/red]")
        with self._changed:
            self._changed.notify_all()

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, *exc: object) -> None:
        """An interrupted run leaves no exporter behind."""
        if self.running():
            self.proc.kill()

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, name: str, batch: int) -> None:
        """Until (name, batch) is exported (or failed), or the exporter has ended."""
        with self._changed:
            self._changed.wait_for(lambda: (name, batch) in self.done or not self._reader.is_alive())


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
        timed_out = threading.Event()
        killer = threading.Timer(args.timeout, lambda: (timed_out.set(), proc.kill()))
        killer.start()
        for line in proc.stdout:
            if line.startswith("@ "):
                progress.update(task, description=f"{head}: {line[2:].strip()}")
        killer.cancel()
    if result.exists():
        return json.loads(result.read_text())
    if timed_out.is_set():
        failure = f"killed after {args.timeout:.0f} s"
    elif proc.returncode < 0:
        failure = f"killed by signal {-proc.returncode}"
    else:  # the log's last line: the exception that ended the worker
        last = next((line for line in reversed((logs / f"{stem}.log").read_text().splitlines()) if line.strip()), "")
        failure = f"worker exited with {proc.returncode}: {last.strip()[:240]}"
    return {"model": model, "batch": batch, "threads": threads, "backends": {}, "error": f"{failure} (see {stem}.log)"}


def _alone(pool: dict | None) -> str:
    """' (alone 5/20 calls)' for a threaded Cerebro row some of whose timed calls the pool ran alone."""
    if not pool or not pool["alone"]:
        return ""
    return f" (alone {pool['alone']}/{pool['alone'] + pool['shared']} calls)"


def _line(record: dict) -> str:
    if "error" in record:
        return f"[red]{record['model']} b{record['batch']} t{record['threads']}: {record['error']}[/red]"
    parts = []
    for name, result in record["backends"].items():
        parts.append(f"{name} {result['median_ms']:.2f} ms{_alone(result.get('pool'))}"
                     if result.get("median_ms") is not None
                     else f"{name} {result['status']}: {result.get('reason', '')[:160]}")
    return f"{record['model']} b{record['batch']} t{record['threads']}: " + " | ".join(parts)


def main(args: argparse.Namespace, command: str) -> dict:
    from benchmarks.__main__ import budget_text, merge_base, put

    out, logs = args.out, args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    args.zoo_cache.mkdir(parents=True, exist_ok=True)
    configs = plan(args.zoo_models, args.batch, args.threads)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns) as progress:
        python = venv.ensure(logs / "zoo-venv.log", say=progress.console.print)
        progress.console.print("measuring this machine's floor (FMA peak, read bandwidth)")
        measured = floor.measure(args.cpu)  # before the exporter starts: an idle machine's best
        exporter = Exporter(python, args.zoo_models, args.batch, args.zoo_cache, logs / "zoo-export.log", progress)
        full = {"machine": machine.describe(), "exporter": _exporter_versions(python), "command": command,
                "budget": args.budget.to_dict(), "budget_text": budget_text(args.budget), "results": [],
                "floor": measured, "work": {}}
        if args.merge and (out / "zoo.json").exists():
            previous = json.loads((out / "zoo.json").read_text())
            full = merge_base(previous, full)
            full["work"] = previous.get("work", {})  # the kept rows' models; counts do not change between runs
        task = progress.add_task("benchmarking", total=len(configs))
        with exporter, tempfile.TemporaryDirectory(prefix="cerebro-zoo-") as workdir:
            for model, batch, threads in configs:
                progress.update(task, description=f"{model} b{batch}: waiting for its export")
                exporter.wait(model, batch)
                floor.add_work(full, paths(args.zoo_cache, model, batch)["onnx"], model, batch)
                exporting = exporter.running()
                record = run_config(model, batch, threads, args, Path(workdir), logs, progress, task)
                record["exporter_running"] = exporting  # one more busy core while this row was timed
                put(full["results"], record)
                progress.console.print(_line(record))
                progress.advance(task)
                write_json(full, out / "zoo.json")
                (out / "zoo.md").write_text(report.markdown(full))
                report.plot(full, out / "zoo.png")
    print(f"wrote {out / 'zoo.md'}, zoo.json, zoo.png")
    return full
