"""What the kernel VM tests share: whether a VM can run here, and the models' constants.

It lives outside conftest.py because pytest imports every conftest.py under the one name
"conftest": in a run over several test directories, `from conftest import ...` in a test
module gets another directory's conftest.
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

from cerebro import kmod

TARGET = "x86_64"  # x86-64-v2: runs under TCG and on any CI host
WIDE_OUTPUTS = 250  # its signature is longer than sysfs's one page
WIDE_ARENA = 16 << 20  # one handle of it: 16 MiB to charge to the caller's memory cgroup
CHUNKS = 4  # the chunked model's batch, run in chunks of one sample


def skip_reason() -> str | None:
    """Why the VM tests cannot run here, or None."""
    if platform.machine() not in ("x86_64", "amd64"):
        return f"the kernel tests boot an x86-64 kernel; this host is {platform.machine()}"
    tools = {"qemu-system-x86_64": "qemu-system-x86", "busybox": "busybox-static", "cpio": "cpio",
             "gcc": "gcc", "make": "make"}
    missing = [pkg for tool, pkg in tools.items() if not shutil.which(tool)]
    if missing:
        return f"missing Debian packages: {' '.join(missing)} (see scripts/apt-packages.txt)"
    try:
        release = kmod.find_kernel_release()
    except kmod.KmodError as error:
        return str(error)
    if not Path(f"/boot/vmlinuz-{release}").exists() and not (kmod.CACHE_DIR / "kernel" / release).exists():
        if os.geteuid() != 0 and not shutil.which("apt-get"):
            return f"no kernel image for {release} and no apt-get to fetch it"
    return None
