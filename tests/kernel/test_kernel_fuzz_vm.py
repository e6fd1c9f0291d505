"""cerebro.ko under a fuzzer: one QEMU boot runs fuzz_guest.c (see its header) against /dev/cerebro and sysfs.

The VM panics at the first WARN, oops, soft lockup, RCU stall or hung task (see GUEST_SCRIPT), and
slub_debug=FZPU (kmod.qemu_command) makes a use-after-free fault or be reported. The tests then read
the serial log: no kernel problem line, no taint but the modules' own, no log line forged by the caller,
refusals rate-limited; and the fuzzer's report: it ran to the end, no checked run failed, no call hung.

CI runs CI_IOCTLS ioctls or CI_SECONDS of guest time, whichever comes first. The long run (docs/kernel.md):

    CEREBRO_KFUZZ_IOCTLS=100000 .venv/bin/python -m pytest -p no:cacheprovider -q tests/kernel/test_kernel_fuzz_vm.py

CEREBRO_KFUZZ_SEED picks another seed; the serial log is kept as kernel_fuzz*/serial.log under pytest's tmp dir.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from vm_support import skip_reason

from cerebro import kmod

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: cbx_fixtures

CI_IOCTLS = 20000
CI_SECONDS = 20
SECONDS_PER_1000_IOCTLS = 5  # the guest-time cap of a longer run (TCG manages about 1000 per second)
MODULE_TAINTS = {"O", "E"}  # out-of-tree, unsigned: what loading our modules sets
TAINT_FLAGS = "PFSRMBUDAWCIOELKXT"  # bit i of /proc/sys/kernel/tainted

# How each kind of kernel report starts (after the console's timestamp). The VM runs with the console at
# warning level (see GUEST_SCRIPT), so all of them reach the serial log even if the ring buffer wraps.
KERNEL_PROBLEMS = {
    "BUG": r"BUG[: ]",  # BUG: ..., and slub_debug's "BUG kmalloc-64 (...): Poison overwritten"
    "kernel BUG": r"kernel BUG at",
    "Oops": r"Oops",
    "WARNING": r"WARNING:",
    "general protection fault": r"general protection fault",
    "soft lockup": r"watchdog: BUG: soft lockup",
    "hard lockup": r"watchdog: Watchdog detected hard LOCKUP",
    "RCU stall": r"rcu: INFO: .*stall",
    "hung task": r"INFO: task .* blocked for more than",
    "UBSAN": r"UBSAN:",
    "list corruption": r"list_(add|del) corruption",
    "allocation failure": r"\S+: (page allocation failure|vmalloc error)",  # "<comm>: vmalloc error: size ..."
    "stack trace": r"Call Trace:",
    "panic": r"Kernel panic",
}
# A kernel line starts a line or follows its timestamp (user output on the same console may precede it).
LINE_START = r"(?:^|\[\s*\d+\.\d+\]\s*)"
FORGED = re.compile(LINE_START + r"KFUZZ-FORGED", re.M)
CEREBRO_LINE = re.compile(LINE_START + r"cerebro", re.M)

GUEST_SCRIPT = """
# A sign of trouble panics the VM at once (WARN and oops already do: kmod.qemu_command).
echo 1 > /proc/sys/kernel/softlockup_panic
echo 1 > /proc/sys/kernel/panic_on_rcu_stall
echo 1 > /proc/sys/kernel/hung_task_panic
echo 20 > /proc/sys/kernel/hung_task_timeout_secs
echo 5 > /proc/sys/kernel/printk  # warnings and worse reach the console, even once the ring buffer wraps
insmod cerebro.ko && insmod checked.ko && insmod victim.ko && echo @@MODULES loaded
kfuzz {seed} {ioctls} {seconds} /root/victim.cbx /root/victim.ko /root/checked.cbx
echo "@@TAINT $(cat /proc/sys/kernel/tainted)"
echo @@BEGIN kfuzz; base64 /tmp/kfuzz/report; echo @@END kfuzz
"""


@dataclass
class FuzzRun:
    log: str
    console: str  # the serial log up to the dmesg dump: what the kernel printed while the fuzzer ran
    report: str  # the fuzzer's "@@KFUZZ" lines
    ioctls_wanted: int

    def done(self) -> dict[str, str]:
        """The fuzzer's final counts ("@@KFUZZ done key=value ...")."""
        m = re.search(r"^@@KFUZZ done (.*)$", self.report, re.M)
        return dict(kv.split("=", 1) for kv in m.group(1).split()) if m else {}


def run_fuzz_vm(workdir: Path, ioctls: int, seconds: float, seed: int) -> FuzzRun:
    """Builds the modules and the fuzzer, boots the VM, returns what it printed."""
    import cbx_fixtures

    release = kmod.find_kernel_release()
    victim, checked = workdir / "victim.cbx", workdir / "checked.cbx"
    victim.write_bytes(cbx_fixtures.build(cbx_fixtures.STAGED, "x86_64"))  # two stages, an arena
    checked.write_bytes(cbx_fixtures.build(cbx_fixtures.TWO_IO, "x86_64"))
    out = workdir / "out"
    core, victim_ko, checked_ko, _ = kmod.build_modules([victim, checked], out, release)
    files = {"/root/cerebro.ko": core, "/root/victim.ko": victim_ko, "/root/checked.ko": checked_ko,
             "/root/victim.cbx": victim, "/root/checked.cbx": checked,
             "/bin/kfuzz": kmod.build_ctl(out, HERE / "fuzz_guest.c", "kfuzz")}
    script = kmod.INIT_HEADER + GUEST_SCRIPT.format(seed=seed, ioctls=ioctls, seconds=seconds) + kmod.INIT_FOOTER
    initrd = kmod.build_initramfs(workdir / "initrd.cpio", files, script)
    log = kmod.run_in_vm(kmod.kernel_image(release), initrd, timeout=seconds + 180)
    (workdir / "serial.log").write_text(log)
    sections = kmod.vm_sections(log)
    report = kmod.vm_file(log, "kfuzz").decode(errors="replace") if "kfuzz" in sections else ""
    return FuzzRun(log, log.split("@@BEGIN dmesg")[0], report, ioctls)


@pytest.fixture(scope="module")
def fuzz_run(tmp_path_factory) -> FuzzRun:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    ioctls = int(os.environ.get("CEREBRO_KFUZZ_IOCTLS", 0))
    seconds = max(CI_SECONDS, ioctls * SECONDS_PER_1000_IOCTLS // 1000)
    ioctls = ioctls or CI_IOCTLS
    seed = int(os.environ.get("CEREBRO_KFUZZ_SEED", 1))
    return run_fuzz_vm(tmp_path_factory.mktemp("kernel_fuzz"), ioctls, seconds, seed)


def kernel_problems(log: str) -> list[str]:
    """Every line of @log that shows a kernel problem, with its kind."""
    found = []
    for kind, pattern in KERNEL_PROBLEMS.items():
        found += [f"{kind}: {m.group(0).strip()}" for m in re.finditer(LINE_START + pattern + r".*$", log, re.M)]
    return found


def test_the_kernel_survives_the_fuzzer(fuzz_run):
    problems = kernel_problems(fuzz_run.log)
    assert not problems, "the kernel reported problems:\n" + "\n".join(problems[:20]) + \
        "\n\nlog tail:\n" + fuzz_run.log[-4000:]
    assert "@@DONE" in fuzz_run.log, "the VM did not finish its script; log tail:\n" + fuzz_run.log[-4000:]


def test_no_taint_beyond_loading_our_modules(fuzz_run):
    m = re.search(r"^@@TAINT (\d+)$", fuzz_run.log, re.M)
    assert m, "the guest printed no taint value"
    flags = {flag for bit, flag in enumerate(TAINT_FLAGS) if int(m.group(1)) >> bit & 1}
    assert flags <= MODULE_TAINTS, f"kernel tainted {sorted(flags - MODULE_TAINTS)} (B: bad page, D: oops, " \
                                   "W: warning, L: soft lockup)"


def test_the_fuzzer_ran_to_the_end_without_failures_or_hangs(fuzz_run):
    assert "@@MODULES loaded" in fuzz_run.log, "insmod failed; log tail:\n" + fuzz_run.log[-3000:]
    done = fuzz_run.done()
    assert done, "the fuzzer printed no final line; log tail:\n" + fuzz_run.log[-3000:]
    bad = re.findall(r"^@@KFUZZ (?:FAIL|HANG) .*$", fuzz_run.report, re.M)
    assert not bad, "\n".join(bad)
    assert int(done["failures"]) == 0 and int(done["hangs"]) == 0
    # the budget must have bought real work from every kind of worker (even on a host busy enough to slow TCG 5x)
    assert int(done["ioctls"]) >= min(fuzz_run.ioctls_wanted, 300), done
    for kind in ("sysfs", "mutants", "checked_runs", "racer_cycles"):
        assert int(done[kind]) > 0, f"no {kind}: {done}"


def test_callers_cannot_forge_kernel_log_lines(fuzz_run):
    forged = FORGED.findall(fuzz_run.log)
    assert not forged, f"{len(forged)} log lines start with text a caller wrote (a path with a newline)"


def test_refusals_are_rate_limited(fuzz_run):
    """Thousands of refused calls leave a bounded number of log lines (the reasons stay in last_error)."""
    done = fuzz_run.done()
    lines = len(CEREBRO_LINE.findall(fuzz_run.console))
    assert lines <= 50 + float(done.get("seconds", 0)) * 20, \
        f"{lines} cerebro lines on the console for {done.get('ioctls')} ioctls in {done.get('seconds')} s"
