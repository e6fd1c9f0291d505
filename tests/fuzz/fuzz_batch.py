"""Run many fuzz inputs through one parser in a child process that a crash, hang or huge allocation
cannot take down with the caller (a fault in the C runtime would kill pytest itself).

Child: `python fuzz_batch.py TARGET SEED_DIR --stream S --start I --count N` (or `--files F...` to
run files as they are) prints one JSON line per finding and a last line with totals. Each input runs
under an address-space limit (RLIMIT_AS), a per-input time limit and a peak-RSS check; the index
being run is written to a progress file first, so the parent can name the input that killed it.

Parent: `run_inputs(...)` runs the child, restarts it after the input that killed it, and returns
every finding with a way to regenerate its bytes."""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import is_mutation_seed  # noqa: E402
from fuzz_mutate import Seed, mutant  # noqa: E402
from fuzz_targets import MISBEHAVING, TARGETS  # noqa: E402

MEMORY_LIMIT_MB = 1024  # address space for the whole child (the interpreter itself takes ~150 MiB)
RSS_LIMIT_MB = 320  # peak resident memory: the 256 MiB per input plus the interpreter (~60 MiB)
TIME_LIMIT_S = 2.0  # CPU seconds per input (the slowest real seed parses in ~50 ms)
WALL_FACTOR = 5  # and wall-clock time: a blocked parser is slow too, but a busy machine is not its fault
GRACE_S = 30.0  # the first input also imports the parser (seconds on a loaded machine); a child making no
# progress for an input's wall-clock limit plus this is killed as hung
STARTUP_S = 60.0  # a child's interpreter start and imports, before its first input: a busy machine's, not a parser's


class SlowInput(BaseException):
    """Raised by the per-input timer; a BaseException so a parser's `except Exception` cannot swallow it."""


def load_seeds(seed_dir: Path, groups: tuple[str, ...]) -> list[Seed]:
    return [Seed(p.read_bytes()) for group in groups for p in sorted((seed_dir / group).glob("*"))
            if p.is_file() and is_mutation_seed(p)]


def regenerate(target: str, seed_dir: Path, stream: int, index: int) -> bytes:
    """Input `index` of a stream exactly as the child ran it (mutated, then fixed up)."""
    data = mutant(stream, index, load_seeds(seed_dir, TARGETS[target].seeds))
    fixup = TARGETS[target].fixup
    return fixup(data) if fixup is not None else data


def _on_alarm(signum, frame):
    raise SlowInput("over its CPU time limit" if signum == signal.SIGPROF else "over its wall-clock time limit")


def _stop_timers() -> None:
    signal.setitimer(signal.ITIMER_PROF, 0)
    signal.setitimer(signal.ITIMER_REAL, 0)


def _classify(exc: BaseException, allowed: type[Exception]) -> str | None:
    if isinstance(exc, SlowInput):
        return "slow"
    if isinstance(exc, MemoryError):
        return "memory"
    return None if isinstance(exc, allowed) else "exception"


def child(args: argparse.Namespace) -> None:
    target = {**TARGETS, **MISBEHAVING}[args.target]
    allowed = target.allowed()
    if args.files:
        inputs = [Path(f).read_bytes for f in args.files]
        make = lambda i: inputs[i - args.start]()  # noqa: E731
        count = len(inputs)
    else:
        seeds = load_seeds(Path(args.seed_dir), target.seeds)
        make = lambda i: mutant(args.stream, i, seeds)  # noqa: E731
        count = args.count
    progress = os.open(args.progress, os.O_WRONLY) if args.progress else None
    resource.setrlimit(resource.RLIMIT_AS, (args.memory_mb << 20, args.memory_mb << 20))
    signal.signal(signal.SIGPROF, _on_alarm)
    signal.signal(signal.SIGALRM, _on_alarm)
    rss_reported = False
    accepted = 0  # inputs the parser took as valid: a harness whose mutants never parse tests little
    started = time.monotonic()
    for index in range(args.start, args.start + count):
        if progress is not None:
            os.pwrite(progress, struct.pack("<q", index), 0)
        data = b""
        try:
            grace = args.grace if index == args.start else 0
            signal.setitimer(signal.ITIMER_PROF, args.time_limit + grace)
            signal.setitimer(signal.ITIMER_REAL, args.time_limit * WALL_FACTOR + grace)
            data = make(index)
            if target.fixup is not None:
                data = target.fixup(data)
            target.entry(data)
            accepted += 1
        except BaseException as exc:  # noqa: B036 - every escape is a finding unless it is the allowed error
            _stop_timers()
            kind = _classify(exc, allowed)
            if kind is not None:
                report = {"index": index, "kind": kind, "size": len(data),
                          "error": f"{type(exc).__name__}: {exc}"[:500],
                          "traceback": "".join(traceback.format_exception(exc))[-4000:]}
                print(json.dumps(report), flush=True)
        finally:
            _stop_timers()
        if not rss_reported and peak_rss_mib() > args.rss_mb:
            rss_reported = True
            print(json.dumps({"index": index, "kind": "rss", "size": len(data), "error":
                              f"peak RSS {peak_rss_mib()} MiB "
                              f"> {args.rss_mb} MiB after this input", "traceback": ""}), flush=True)
    print(json.dumps({"done": count, "accepted": accepted, "seconds": round(time.monotonic() - started, 3),
                      "max_rss_mb": peak_rss_mib()}), flush=True)


def peak_rss_mib() -> int:
    """This process image's peak resident memory (VmHWM). Not getrusage's ru_maxrss: a child forked
    from a big parent (pytest holding JAX and TensorFlow: 1.1 GiB) keeps the parent's peak across exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) >> 10
    raise RuntimeError("no VmHWM in /proc/self/status")


@dataclass
class Outcome:
    target: str
    done: int = 0
    accepted: int = 0
    seconds: float = 0.0
    max_rss_mb: int = 0
    findings: list[dict] = field(default_factory=list)


def _progress(path: str) -> int:
    with open(path, "rb") as f:
        return struct.unpack("<q", f.read(8))[0]


def _run_child(command: list[str], progress: str, stalled_after: float, nice: int) -> tuple[int | None, str, str]:
    """(exit status or None when it stopped making progress and was killed, stdout, stderr)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(command, stdout=out, stderr=err, text=True, env=env,
                                preexec_fn=(lambda: os.nice(nice)) if nice else None)
        last, since = _progress(progress), time.monotonic()
        while True:
            try:
                returncode = proc.wait(timeout=1)
                break
            except subprocess.TimeoutExpired:
                now = _progress(progress)
                if now != last:
                    last, since = now, time.monotonic()
                elif time.monotonic() - since > (stalled_after if now >= 0 else STARTUP_S):
                    proc.kill()
                    proc.wait()
                    returncode = None
                    break
        out.seek(0)
        err.seek(0)
        return returncode, out.read(), err.read()


def _exit(returncode: int | None) -> str:
    if returncode is None:
        return "hung (no progress within an input's time limit)"
    return f"killed by signal {-returncode}" if returncode < 0 else f"exit {returncode}"


def run_inputs(target: str, seed_dir: Path, *, stream: int = 0, start: int = 0, count: int = 0,
               files: list[Path] | None = None, time_limit: float = TIME_LIMIT_S, memory_mb: int = MEMORY_LIMIT_MB,
               rss_mb: int = RSS_LIMIT_MB, grace: float = GRACE_S, nice: int = 0) -> Outcome:
    """Inputs start..start+count of a stream (or `files`) through `target` in child processes; a child
    killed by a signal or a hang becomes a finding for the input it was on, and the rest still run."""
    outcome = Outcome(target)
    total = len(files) if files is not None else count
    end = start + total
    with tempfile.NamedTemporaryFile() as progress:
        while start < end:
            progress.write(struct.pack("<q", -1))
            progress.flush()
            command = [sys.executable, __file__, target, str(seed_dir), "--stream", str(stream), "--start", str(start),
                       "--count", str(end - start), "--progress", progress.name, "--time-limit", str(time_limit),
                       "--memory-mb", str(memory_mb), "--rss-mb", str(rss_mb), "--grace", str(grace)]
            if files is not None:
                command += ["--files", *map(str, files[start - (end - total):])]
            returncode, out, err = _run_child(command, progress.name, time_limit * WALL_FACTOR + 2 * grace, nice)
            lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
            outcome.findings += [line for line in lines if "index" in line]
            totals = next((line for line in lines if "done" in line), None)
            if totals is not None and returncode == 0:
                outcome.done += totals["done"]
                outcome.accepted += totals["accepted"]
                outcome.seconds += totals["seconds"]
                outcome.max_rss_mb = max(outcome.max_rss_mb, totals["max_rss_mb"])
                break
            index = _progress(progress.name)
            progress.seek(0)
            if index < start:  # died before its first input: a broken harness, not a finding
                raise RuntimeError(f"fuzz child for {target} {_exit(returncode)} before any input:\n{err[-3000:]}")
            kind = "crash" if returncode is not None else "hang"
            outcome.findings.append({"index": index, "kind": kind, "size": None,
                                     "error": f"child {_exit(returncode)}", "traceback": err[-4000:]})
            outcome.done += index + 1 - start
            start = index + 1
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=sorted({**TARGETS, **MISBEHAVING}))
    parser.add_argument("seed_dir")
    parser.add_argument("--stream", type=int, default=0)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--files", nargs="*")
    parser.add_argument("--progress")
    parser.add_argument("--time-limit", type=float, default=TIME_LIMIT_S)
    parser.add_argument("--memory-mb", type=int, default=MEMORY_LIMIT_MB)
    parser.add_argument("--rss-mb", type=int, default=RSS_LIMIT_MB)
    parser.add_argument("--grace", type=float, default=GRACE_S)
    child(parser.parse_args())


if __name__ == "__main__":
    main()
