"""binfmt_misc hand-off: rule text, the interpreter contract (`interp FILE ARGS...`), and a real
registration when this machine lets us (binfmt_misc mounted and writable)."""

import os
import re
import shutil
import subprocess

import pytest

from cerebro.loaders import binfmt
from cerebro.loaders.cli import main as cli_main
from cerebro.loaders.native_build import native_program


def test_rule_text():
    exe, apk, deb = binfmt.rules()
    assert exe.text() == f":cerebro-exe:M:0:\\x4d\\x5a::{native_program('peload')}:"
    assert apk.text() == f":cerebro-apk:E::apk::{binfmt.wrapper_script()}:"
    assert deb.text() == f":cerebro-deb:E::deb::{binfmt.wrapper_script()}:"
    for rule in (exe, apk, deb):
        assert re.fullmatch(r":[\w-]+:[ME]:\d*:[^:]+::/[^:]+:", rule.text())
        assert os.access(rule.interpreter, os.X_OK)


def test_cli_dry_run(capfd):
    assert cli_main(["pkg", "binfmt", "install", "--dry-run"]) == 0
    out = capfd.readouterr().out.splitlines()
    assert [line.split(":")[1] for line in out] == ["cerebro-exe", "cerebro-apk", "cerebro-deb"]


def test_interpreter_contract(debian_debs, tmp_path):
    """What the kernel will do: run the interpreter with the package path and the user's arguments."""
    deb = tmp_path / "hello.deb"
    shutil.copy(debian_debs["hello"], deb)
    got = subprocess.run([str(binfmt.wrapper_script()), str(deb), "-g", "via binfmt"], capture_output=True,
                         text=True)
    assert (got.returncode, got.stdout) == (0, "via binfmt\n")
    got = subprocess.run([str(binfmt.wrapper_script()), str(deb), "-g", "--timeout"], capture_output=True, text=True)
    assert (got.returncode, got.stdout) == (0, "--timeout\n")  # after the wrapper's `--`: the program's


@pytest.mark.skipif(not os.access(binfmt.BINFMT_DIR / "register", os.W_OK),
                    reason="binfmt_misc is not mounted/writable here (the kernel VM test covers it)")
def test_real_registration(debian_debs, tmp_path):
    deb = tmp_path / "hello.deb"
    shutil.copy(debian_debs["hello"], deb)
    deb.chmod(0o755)
    try:
        binfmt.install()
        assert all("enabled" in line for line in binfmt.show())
        got = subprocess.run([str(deb)], capture_output=True, text=True)
        assert got.stdout == "Hello, world!\n"
    finally:
        binfmt.uninstall()
    assert all("not registered" in line for line in binfmt.show())
