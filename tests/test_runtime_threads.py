"""Multi-threaded calls in the user-space host (abi.h's stage word, meta.parts, the worker pool).

The model is hand-written LLVM IR that follows the parallel contract (tests/cbx_fixtures.py PARALLEL):
every part computes its share of a step, the host makes the parts meet between steps, and step 1 reads
values other parts wrote in step 0, so a meeting that lets a part through early shows up as wrong
numbers. Results must equal the 1-thread run bit for bit and the numpy reference exactly (each element
is one or two IEEE f32 operations; the sum is sequential, as np.cumsum is).
"""

from __future__ import annotations

import gc
import math
import os
import re
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import native
import numpy as np
import pytest
from cbx_fixtures import (
    AFFINE,
    HOST_ARCH,
    PARALLEL,
    PARALLEL_N,
    build,
    built,
    parallel_model,
    parts_seen_model,
    patch,
    section,
)

from cerebro import _runtime, api, runtime
from cerebro.cli import main as cerebroc
from cerebro.compiler.cbx import CbxError, Meta

pytestmark = pytest.mark.skipif(HOST_ARCH == "unsupported", reason="the runtime supports x86-64 and aarch64 hosts")

PARTS_OFFSET = 516  # offsetof(struct cbx_meta, parts)


def inputs(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(PARALLEL_N).astype(np.float32)


def check(outputs: list[np.ndarray], x: np.ndarray) -> None:
    for got, want in zip(outputs, PARALLEL.reference(x), strict=True):
        np.testing.assert_array_equal(got, want)


def thread_count() -> int:
    """OS threads of this process (Linux)."""
    with open("/proc/self/status") as status:
        return int(re.search(r"^Threads:\s+(\d+)", status.read(), re.M).group(1))


def with_parts(data: bytes, parts: int) -> bytes:
    """data with meta.parts rewritten (and the hash resealed)."""
    return patch(data, section(data, ".cerebro.meta").offset + PARTS_OFFSET, struct.pack("<I", parts))


def test_the_fixture_declares_parallel_support():
    meta = Meta.unpack(runtime.load(built(PARALLEL)).meta.pack())
    assert meta.parts == 256 and meta.arena_size >= 64


@pytest.mark.parametrize("threads", [2, 3])
def test_threads_give_the_same_bits_as_one(threads):
    serial = runtime.load(built(PARALLEL))
    parallel = runtime.load(built(PARALLEL), threads=threads)
    assert serial.threads == 1 and parallel.threads == threads
    for seed in range(3):
        x = inputs(seed)
        want = serial(x)
        got = parallel(x)
        check(want, x)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("threads", [2, 3])
def test_back_to_back_calls_are_whole(threads):
    """100 calls in a row, each a fresh job (shared at first, then alone if the pool finds that faster
    for this small model, with a shared try now and then): every result is whole and right."""
    model = runtime.load(built(PARALLEL), threads=threads)
    for seed in range(100):
        x = inputs(seed)
        check(model(x), x)


def test_pool_stats_count_how_each_call_ran():
    """pool_stats: every call of a threaded model counted once, shared or alone; the first 7 are shared
    (the first try of running alone is the 8th job) and each try that switched is a counted probe.
    None for threads=1 (no pool); a profile's calls are not counted."""
    assert runtime.load(built(PARALLEL)).pool_stats() is None
    model = runtime.load(built(PARALLEL), threads=2)
    assert model.pool_stats() == dict.fromkeys(runtime.POOL_COUNTS, 0)
    x = inputs(0)
    for calls in (7, 60):
        while sum(model.pool_stats()[way] for way in ("shared", "alone")) < calls:
            model(x)
        stats = model.pool_stats()
        assert stats["shared"] + stats["alone"] == calls, stats
        assert stats["to_alone"] + stats["to_shared"] <= stats["probes"] <= calls // 8, stats
        if calls == 7:
            assert stats == {**dict.fromkeys(runtime.POOL_COUNTS, 0), "shared": 7}
    model.profile(x, repeats=3, per_step=True)
    assert model.pool_stats() == stats


@pytest.mark.parametrize("threads", [2, 3])
def test_a_failing_part_stops_the_call_and_the_next_call_is_whole(threads):
    """The last part fails step 1 (x[0] is a NaN): the others, waiting for it, stop too, the error is
    reported, and the next call (its meeting no longer abandoned) is right."""
    model = runtime.load(built(PARALLEL), threads=threads)
    bad = inputs(1)
    bad[0] = np.nan
    for seed in range(3):
        with pytest.raises(RuntimeError, match=f"model returned error 3 on {threads} threads"):
            model(bad)
        x = inputs(seed)
        check(model(x), x)


def test_one_thread_runs_the_steps_of_a_file_that_can_be_split():
    """A file that allows parts runs on one thread as whole steps (abi.h CEREBRO_WHOLE_STEP: the compiled
    code then calls a sliced convolution once, not slice by slice); a serial file runs its stages. Both
    give their reference's bits, and a failing whole step is reported as such."""
    assert runtime.load(built(parts_seen_model(256)))(np.zeros(1, np.float32))[0][0] == 255.0
    assert runtime.load(built(parts_seen_model(2)))(np.zeros(1, np.float32))[0][0] == 255.0
    assert runtime.load(built(parts_seen_model(1)))(np.zeros(1, np.float32))[0][0] == 0.0
    model = runtime.load(built(PARALLEL))
    x = inputs(4)
    check(model(x), x)
    bad = inputs(1)
    bad[0] = np.nan  # step 1 fails on the last part
    with pytest.raises(RuntimeError, match="model returned error 3 at step 1"):
        model(bad)
    check(model(x), x)


def test_concurrent_python_threads_share_one_model():
    """One caller gets the pool, the others run serially; every result is right."""
    model = runtime.load(built(PARALLEL), threads=2)
    failures: list[BaseException] = []

    def worker(first: int) -> None:
        try:
            for seed in range(first, first + 15):
                x = inputs(seed)
                check(model(x), x)
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    workers = [threading.Thread(target=worker, args=(100 * i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not failures, failures[0]


def test_profile_runs_serially_on_a_threaded_model():
    model = runtime.load(built(PARALLEL), threads=2)
    times = model.profile(inputs(0), repeats=3)
    assert times.shape == (3, 2) and (times > 0).all()
    x = inputs(1)
    check(model(x), x)


def test_profile_per_step_times_each_step_of_a_split_call():
    """per_step: the call split across the pool (always shared), one time per step (the fixture has 3),
    each from the step before's end to its last part's return; the call's result is whole."""
    model = runtime.load(built(PARALLEL), threads=2)
    times = model.profile(inputs(0), repeats=4, per_step=True)
    assert times.shape == (4, 3) and (times > 0).all()
    x = inputs(1)
    check(model(x), x)
    with pytest.raises(ValueError, match="threads >= 2"):
        runtime.load(built(PARALLEL)).profile(x, repeats=1, per_step=True)


def test_workers_are_joined_when_the_model_goes():
    gc.collect()  # earlier tests' models (and their workers) go now, not in the middle
    before = thread_count()
    model = _runtime.Model(built(PARALLEL), threads=3)
    assert thread_count() == before + 2
    del model
    # pthread_join returns once a worker's tid is cleared, a moment before the kernel drops it from the count.
    deadline = time.monotonic() + 5
    while thread_count() != before and time.monotonic() < deadline:
        time.sleep(0.001)
    assert thread_count() == before


def test_a_forked_child_runs_serially():
    """The child of fork() has no workers: its calls must not wait for them."""
    model = runtime.load(built(PARALLEL), threads=2)
    x = inputs(11)
    check(model(x), x)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        try:
            check(model(x), x)
            del model
            os._exit(0)
        except BaseException:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    check(model(x), x)


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_bad_thread_counts_are_refused(threads):
    with pytest.raises(ValueError, match="threads must be"):
        runtime.load(built(PARALLEL), threads=threads)


@pytest.mark.parametrize("threads", [0, 257])
def test_the_binding_checks_its_thread_count(threads):
    with pytest.raises(ValueError, match=r"threads must be 1\.\.256"):
        _runtime.Model(built(PARALLEL), threads=threads)


def test_serial_files_refuse_more_threads():
    with pytest.raises(ValueError, match="compiled without parallel support"):
        runtime.load(built(AFFINE), threads=2)
    two = build(parallel_model(parts=2, name="two_parts"))
    with pytest.raises(ValueError, match=r"cannot run 'two_parts' on 3 threads: .*without parallel support"):
        runtime.load(two, threads=3)
    x = inputs(5)
    check(runtime.load(two, threads=2)(x), x)


def test_old_files_with_parts_0_load_as_serial():
    old = with_parts(built(AFFINE), 0)
    model = runtime.load(old)
    assert model.meta.parts == 1 and model.threads == 1
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(model(x)[0], AFFINE.reference(x)[0])
    with pytest.raises(ValueError, match="without parallel support"):
        runtime.load(old, threads=2)


def test_bad_parts_are_refused_by_both_readers():
    too_many = with_parts(built(PARALLEL), 257)
    with pytest.raises(CbxError, match="parts 257 > 256"):
        runtime.load(too_many)
    meta = section(too_many, ".cerebro.meta")
    with pytest.raises(CbxError, match="parts 257 > 256"):
        Meta.unpack(too_many[meta.offset:meta.offset + meta.size])
    no_barrier_room = with_parts(built(AFFINE), 2)  # AFFINE has no arena
    with pytest.raises(CbxError, match="parts 2 needs an arena of >= 64 bytes"):
        runtime.load(no_barrier_room)


def test_meta_packs_parts_where_reserved_was():
    meta = runtime.load(built(PARALLEL)).meta
    raw = meta.pack()
    assert struct.unpack_from("<I", raw, PARTS_OFFSET) == (256,)
    assert Meta.unpack(raw) == meta
    for bad in (0, 257):
        with pytest.raises(CbxError, match="parts must be 1..256"):
            Meta(**{**meta.__dict__, "parts": bad}).pack()


def test_public_load_and_cli_take_threads(tmp_path, capsys):
    path = tmp_path / "parallel.cbx"
    path.write_bytes(built(PARALLEL))
    x = inputs(7)
    model = api.load(path, threads=2)
    assert model.threads == 2
    check(list(model(x)), x)
    np.save(tmp_path / "x.npy", x)
    assert cerebroc(["run", str(path), "-i", str(tmp_path / "x.npy"), "--threads", "3",
                     "-o", str(tmp_path / "out.npz")]) == 0
    saved = np.load(tmp_path / "out.npz")
    check([saved["y"], saved["s"]], x)
    assert cerebroc(["run", str(path), "-i", str(tmp_path / "x.npy"), "--threads", "0"]) == 1
    assert "threads must be >= 1" in capsys.readouterr().err


def cbxrun_threads(runner: list, data: bytes, directory: Path) -> None:
    """cbxrun --threads 1/2/3 on the PARALLEL model (data) gives the reference; more threads than parts fail."""
    (directory / "m.cbx").write_bytes(data)
    x = inputs(9)
    x.tofile(directory / "x.bin")
    for threads in ("1", "2", "3"):
        out = directory / f"out{threads}.bin"
        subprocess.run([*runner, "--threads", threads, directory / "m.cbx", directory / "x.bin", "-o", out],
                       check=True, timeout=120)
        raw = np.fromfile(out, np.float32)
        check([raw[:PARALLEL_N], raw[PARALLEL_N:]], x)
    refused = subprocess.run([*runner, "--threads", "300", directory / "m.cbx", directory / "x.bin", "-o",
                              directory / "bad.bin"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "usage: cbxrun [--threads N]" in refused.stderr


def test_cbxrun_takes_threads(tmp_path):
    from cerebro.toolchain import build_cbxrun

    exe = str(build_cbxrun(HOST_ARCH, tmp_path))
    cbxrun_threads([exe], built(PARALLEL), tmp_path)
    (tmp_path / "affine.cbx").write_bytes(built(AFFINE))
    np.zeros(8, np.float32).tofile(tmp_path / "a.bin")
    refused = subprocess.run([exe, "--threads", "2", tmp_path / "affine.cbx", tmp_path / "a.bin", "-o",
                              tmp_path / "a.out"], capture_output=True, text=True)
    assert refused.returncode == 1 and "without parallel support" in refused.stderr


def test_aarch64_cbxrun_takes_threads(tmp_path):
    """The aarch64 pool and meetings (futexes, the yield hint), under qemu off aarch64 hosts."""
    runner = native.aarch64_runner(tmp_path)
    cbxrun_threads(runner, built(PARALLEL, "aarch64"), tmp_path)


def test_more_threads_than_cpus_warns(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    with pytest.warns(RuntimeWarning, match="threads=2 is more than the 1 CPUs"):
        model = runtime.load(built(PARALLEL), threads=2)
    x = inputs(3)
    check(model(x), x)  # still correct: the parts take turns on one CPU


def test_workers_squeezed_onto_one_cpu_slow_calls_but_never_break_them():
    """The caller and both workers pinned to one CPU take turns at every wait (what a competing load
    does to them): each call still finishes, bit for bit the 1-thread result. Counts, never times."""
    gc.collect()
    before = set(os.listdir("/proc/self/task"))
    model = runtime.load(built(PARALLEL), threads=3)
    workers = [int(tid) for tid in set(os.listdir("/proc/self/task")) - before]
    assert len(workers) == 2
    serial = runtime.load(built(PARALLEL))
    allowed = os.sched_getaffinity(0)
    cpu = min(allowed)
    os.sched_setaffinity(0, {cpu})
    try:
        for tid in workers:
            os.sched_setaffinity(tid, {cpu})
        done = 0
        for seed in range(10):
            x = inputs(seed)
            assert [g.tobytes() for g in model(x)] == [w.tobytes() for w in serial(x)]
            done += 1
        assert done == 10
    finally:
        os.sched_setaffinity(0, allowed)


STOP_LIMIT_S = 30
# Stops one thread of the parent (SIGSTOP would stop all of them): ptrace-interrupt it, say so, then let it
# go on when the parent writes a line (or after STOP_LIMIT_S, so a host that waits for it cannot hang).
STOPPER = """
import ctypes, os, select, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
SEIZE, INTERRUPT, DETACH = 0x4206, 0x4207, 17
tid = int(sys.argv[1])
for request in (SEIZE, INTERRUPT):
    if libc.ptrace(request, tid, None, None) != 0:
        sys.exit(f"ptrace {request:#x}: {os.strerror(ctypes.get_errno())}")
os.waitpid(tid, 0x40000000)  # __WALL: the thread is in its ptrace stop
print("stopped", flush=True)
select.select([sys.stdin], [], [], float(sys.argv[2]))
if libc.ptrace(DETACH, tid, None, None) != 0:
    sys.exit(f"ptrace detach: {os.strerror(ctypes.get_errno())}")
"""


def thread_state(tid: int) -> str:
    with open(f"/proc/self/task/{tid}/stat") as stat:
        return stat.read().rpartition(")")[2].split()[0]


@pytest.mark.parametrize("threads", [2, 3])
def test_calls_finish_while_a_worker_is_stopped(threads):
    """A worker stopped (as a descheduled one is, only for good) takes no part of a call, so the others
    run its parts: calls finish, bit for bit the 1-thread result, while it is still stopped. The
    worker then goes on and takes parts again. Counts and states, never times. (A new pool shares
    its first 7 jobs before it tries running one alone, so these 5 calls are shared.)"""
    gc.collect()
    before = set(os.listdir("/proc/self/task"))
    model = runtime.load(built(PARALLEL), threads=threads)
    worker = min(int(tid) for tid in set(os.listdir("/proc/self/task")) - before)
    serial = runtime.load(built(PARALLEL))
    stopper = subprocess.Popen([sys.executable, "-c", STOPPER, str(worker), str(STOP_LIMIT_S)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert stopper.stdout.readline() == "stopped\n"
        for seed in range(5):
            x = inputs(seed)
            assert [g.tobytes() for g in model(x)] == [w.tobytes() for w in serial(x)]
        assert thread_state(worker) == "t", "the calls waited for the stopped worker"
    finally:
        stopper.stdin.close()
        assert stopper.wait(timeout=STOP_LIMIT_S + 30) == 0
    for seed in range(5):
        x = inputs(seed)
        check(model(x), x)


CGROUPS = {  # /proc/self/cgroup text, the files under the cgroup root, CPUs of quota (None: unlimited)
    "v2 limited": ("0::/jail\n", {"jail/cpu.max": "150000 100000\n"}, 1.5),
    "v2 unlimited": ("0::/jail\n", {"jail/cpu.max": "max 100000\n"}, None),
    "v1 limited": ("4:cpu,cpuacct:/box\n1:memory:/box\n",
                   {"cpu,cpuacct/box/cpu.cfs_quota_us": "50000\n", "cpu,cpuacct/box/cpu.cfs_period_us": "100000\n"},
                   0.5),
    "v1 unlimited": ("4:cpu:/\n", {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    "no cpu controller": ("3:memory:/box\n", {}, None),
}


@pytest.mark.parametrize("case", CGROUPS, ids=list(CGROUPS))
def test_usable_cpus_follow_the_cgroup_quota(case, tmp_path):
    membership, files, quota = CGROUPS[case]
    (tmp_path / "cgroup").write_text(membership)
    for name, text in files.items():
        (tmp_path / "root" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "root" / name).write_text(text)
    assert runtime._cgroup_quota(tmp_path / "root", tmp_path / "cgroup") == quota
    cpus = runtime.usable_cpus(str(tmp_path / "root"), str(tmp_path / "cgroup"))
    affinity = len(os.sched_getaffinity(0))
    assert cpus == (min(affinity, math.ceil(quota)) if quota else affinity)
