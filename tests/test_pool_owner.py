"""The worker pool (runtime_kmod/user/pool.c) on its own, through small C programs: each thread takes
its own task of a step first, so consecutive steps' shares stay on the same cores; a pool that went alone
under a load shares again soon after the load goes."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "runtime_kmod"

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or shutil.which("gcc") is None,
                                reason="pool.c is Linux code (futexes), built here with gcc")


def realtime() -> None:
    """SCHED_FIFO for the program (its threads inherit it): no other job on the machine deschedules a
    thread mid-step, which is when a waiting thread rightly takes the other's task."""
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))


def run_pool(tmp_path, mode: str, program: str = "owner_main.c", defines: tuple[str, ...] = ()) -> list[str]:
    """The C driver's output words (owner_main.c: steps, each a string of "c"/"w": which thread, caller
    or worker, ran each task)."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("the caller and the worker must run at once: this process may use only one CPU")
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except PermissionError:
        pytest.skip("needs SCHED_FIFO (root or CAP_SYS_NICE) to keep the machine's other jobs off its threads")
    exe = tmp_path / (Path(program).stem + "".join(f"-{d}" for d in defines))
    if not exe.exists():
        subprocess.run(["gcc", "-O2", "-std=gnu11", "-pthread", *(f"-D{d}" for d in defines),
                        f"-I{RUNTIME / 'include'}", f"-I{RUNTIME / 'core'}", f"-I{RUNTIME / 'user'}",
                        "-o", str(exe), str(ROOT / "tests" / "pool_c" / program),
                        str(RUNTIME / "user" / "pool.c"), str(RUNTIME / "core" / "error.c")], check=True)
    return subprocess.run([str(exe), mode], capture_output=True, text=True, check=True, timeout=60,
                          preexec_fn=realtime).stdout.split()


def test_each_thread_takes_its_own_task_first(tmp_path):
    """400 steps whose task 0 is the long one (40 us): both threads reach each step's end together and
    race for the next step. Owner-first keeps task 0 on the caller in every step, but for a step where the
    caller came STEAL_NS late (a VM's vCPU taken away: CI once saw 399 of 400), whose task the waiting
    worker rightly takes; when any thread took the next task, the worker got it in about half of the
    steps (or all but one)."""
    steps = run_pool(tmp_path, "owner")
    on_caller = sum(step[0] == "c" for step in steps)
    assert len(steps) == 400 and on_caller >= 396, f"task 0 ran on the caller in {on_caller} of {len(steps)} steps"


def test_a_thread_done_early_takes_the_end_of_the_others_share(tmp_path):
    """4 tasks per thread; the worker's (4-7) take 40 us, the caller's none: the caller runs its own,
    then the worker's last ones, while the worker runs its first. (With one fixed task per thread, as
    before, the caller only waited.)"""
    steps = run_pool(tmp_path, "balance")
    assert all(step[:4] == "cccc" for step in steps)
    assert sum(step[4] == "w" and step[7] == "c" for step in steps) >= 0.9 * len(steps), steps[:5]


def test_a_pool_gone_alone_shares_again_soon_after_the_load_goes(tmp_path):
    """260 jobs while sharing is slower (3 ms shared, 1 ms alone) send the pool alone, trying sharing
    100 ms and then 200 ms of jobs later (RETRY_NS, doubled: jobs 108 and 308); once sharing is faster
    (0.25 ms) the next try finds it so: 48 jobs later. The load ends 48 jobs before that try, not 8: tries
    are spaced over the average job, which a VM stretches (a CI run tried at ~296, inside a load lasting
    to job 300, and went on alone 385 jobs). With tries counted in jobs (8, 16, 32, ... apart) it took 212."""
    jobs = int(run_pool(tmp_path, "", "retry_main.c")[0])
    assert jobs <= 100, f"{jobs} jobs ran alone after the load went"


def test_a_pool_gone_alone_on_long_jobs_shares_again_within_retry_ns(tmp_path):
    """The same with jobs as long as convnext_tiny's at batch 8 (40 ms alone): the load goes one job after
    the pool went alone, and sharing is tried about RETRY_NS (100 ms) of jobs after the switch, 2 jobs. With at
    least PROBE_MIN (8) jobs between tries, 7 more jobs (0.28 s; 5.8 s of convnext_tiny b8) ran alone."""
    jobs = int(run_pool(tmp_path, "long", "retry_main.c")[0])
    assert jobs <= 3, f"{jobs} jobs ran alone after the load went"


def test_a_steady_load_on_jobs_longer_than_retry_max_pays_for_few_tries(tmp_path):
    """pool.c built with RETRY_NS 5 ms, RETRY_MAX_NS 20 ms and 30 ms jobs (as a 1.5 s job is at the real
    ones: alone 1.5 s beat 2.0 s shared under the machine's load): the load never goes, and of the 64
    jobs after the switch only the tries 1, 2, 4 and then 8 jobs apart run shared (slower): 10. With
    tries RETRY_NS of jobs apart but at least 1 job, every job was one (64); at least PROBE_MIN jobs, 8."""
    tries = int(run_pool(tmp_path, "steady", "retry_main.c", ("RETRY_NS=5000000u", "RETRY_MAX_NS=20000000u"))[0])
    assert tries <= 11, f"{tries} of 64 jobs under a steady load were tries of sharing"
