"""The floor of a zoo row: the least time this machine could take for the model's call, from the work
the model must do (benchmarks.zoo.work) and what the machine can do, measured at the start of the run.

floor = max(flops / peak, bytes / bandwidth), each assumption chosen so the floor stays a lower bound:
- peak: the fastest float32 GEMM measured on one core (benchmarks.floor.gemm_peak: Cerebro's or ONNX
  Runtime's MatMul, whichever is faster) times the threads; a zoo.json from before it was measured falls
  back to the register-only FMA rate (benchmarks.floor.fma_peak), which wide cores never reach in a layer;
- bytes: the weights read once per call at the read bandwidth of the cache level they fit in (L2, L3,
  else DRAM), plus each activation tensor at a conv/matmul boundary that is larger than L2 at the
  bandwidth of where it fits (a layer-by-layer execution writes it out and reads it back; one that fits
  L2 costs nothing); read bandwidth (benchmarks.floor.read_time) for writes too (they are slower);
- threads > 1: peak, L2 size and every bandwidth times the threads (DRAM does not scale so well).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LEVELS = ("l2", "l3", "dram")
FALLBACK_CACHES = {"l2": 512 * 1024, "l3": 16 * 1024 * 1024}  # where sysfs says nothing (not Linux)
# the most the L3 probe reads: a VM may report its host's whole L3 (a Xeon guest: 480 MiB, of which 240 read at
# memory's 11 GB/s while 8-64 MiB read at 29), and a smaller probe errs toward a lower floor
L3_PROBE_BYTES = 32 * 1024 * 1024


def cache_sizes(cpu: int) -> dict[str, int]:
    """Bytes of cpu's unified L2 and L3 (sysfs), or FALLBACK_CACHES where absent."""
    sizes = dict(FALLBACK_CACHES)
    for index in sorted(Path(f"/sys/devices/system/cpu/cpu{cpu}/cache").glob("index*")):
        try:
            level, kind, size = ((index / f).read_text().strip() for f in ("level", "type", "size"))
        except OSError:
            continue
        if kind == "Unified" and f"l{level}" in sizes:
            sizes[f"l{level}"] = int(size.rstrip("K")) * 1024 if size.endswith("K") else int(size)
    return sizes


def measure(cpu: int) -> dict:
    """The machine's floor facts, measured on `cpu` (this thread is pinned there meanwhile): the FMA and GEMM
    peaks of one core and the read bandwidth of data in L2, L3 and DRAM (half of L2, half of L3 up to L3_PROBE_BYTES,
    four times L3).
    Best of many short trials (a few ms each, about a second in all): a trial that shared the core, the L3
    or DRAM with another process is slower (on a loaded machine, DRAM reads of two passes per trial measured
    6 GB/s where one pass measured 18), and the floor wants the machine's best."""
    from benchmarks.floor import fma_peak, read_time

    with _pinned(cpu):
        caches = cache_sizes(cpu)
        sizes = {"l2": caches["l2"] // 2, "l3": min(caches["l3"] // 2, L3_PROBE_BYTES), "dram": caches["l3"] * 4}
        bandwidth = {level: n / read_time(n, trials=40 if level == "dram" else 50, repeats=1 if level == "dram" else 10)
                     for level, n in sizes.items()}
        peak = fma_peak()
    return {"cpu": cpu, "peak_flops": peak, "gemm_flops": gemm_rates(cpu), "caches": caches,
            "read_bytes_per_s": bandwidth, "date": now(), "load": os.getloadavg()[0]}


def gemm_rates(cpu: int) -> dict[str, float]:
    """benchmarks.floor.gemm_peak measured on `cpu` (this thread pinned there meanwhile)."""
    from benchmarks.floor import gemm_peak

    with _pinned(cpu):
        return gemm_peak()


@contextmanager
def _pinned(cpu: int) -> Iterator[None]:
    """This thread on `cpu` alone meanwhile, its affinity given back after."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def now() -> str:
    """The date and time a measurement is stamped with."""
    import datetime

    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _level(nbytes: int, caches: dict[str, int], threads: int) -> str:
    """The level nbytes are read from: L2 (each thread's), L3 up to what its probe read (a VM's reported L3
    may be its host's: GPT-2's 340 MB of weights, inside a reported 480 MiB, read at memory's 11 GB/s), or DRAM."""
    if nbytes <= caches["l2"] * threads:
        return "l2"
    return "l3" if nbytes <= min(caches["l3"], L3_PROBE_BYTES) else "dram"


def threads_of(record: dict, usable_cpus: int) -> int:
    """The threads a row ran with: 1 for pinned rows, else what Cerebro's runtime took (the machine's CPUs)."""
    if str(record["threads"]) == "1":
        return 1
    return int((record["backends"].get("cerebro") or {}).get("threads") or usable_cpus)


def compute_peak(machine: dict) -> float:
    """Flops per second of one core the floor assumes: the fastest GEMM measured, else the FMA peak."""
    return max((machine.get("gemm_flops") or {}).values(), default=machine["peak_flops"])


def row_floor(work: dict, machine: dict, threads: int) -> dict:
    """The floor of one call (ms) and its two parts: flops at the peak, and weight + activation bytes."""
    caches, bandwidth = machine["caches"], machine["read_bytes_per_s"]
    flop_s = sum(work["flops"].values()) / (compute_peak(machine) * threads)
    weights = work["weight_bytes"]
    weight_s = weights / (bandwidth[_level(weights, caches, threads)] * threads)
    moved = {level: 0 for level in LEVELS}
    for nbytes, times in work["activation_bytes"].items():
        moved[_level(int(nbytes), caches, threads)] += int(nbytes) * times
    activation_s = sum(moved[level] / (bandwidth[level] * threads) for level in ("l3", "dram"))
    byte_s = weight_s + activation_s
    return {"threads": threads, "flop_ms": flop_s * 1e3, "byte_ms": byte_s * 1e3, "floor_ms": max(flop_s, byte_s) * 1e3,
            "bound": "flops" if flop_s >= byte_s else "bytes", "activations_moved": moved["l3"] + moved["dram"]}


def work_key(model: str, batch: int) -> str:
    """A model and batch's key in the report's "work" table."""
    return f"{model}-b{batch}"


def add_work(full: dict, onnx_file: Path, model: str, batch: int) -> None:
    """Count (model, batch)'s work into full["work"] once, from its exported file; a file that cannot be
    counted gets its one-line reason instead (that row then has no floor)."""
    from benchmarks.zoo.work import count

    works = full.setdefault("work", {})
    key = work_key(model, batch)
    if "flops" in works.get(key, {}) or not onnx_file.exists():
        return
    try:
        works[key] = count(onnx_file)
    except Exception as error:  # a model Cerebro cannot import has no floor, and the run goes on
        works[key] = {"error": f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:240]}
