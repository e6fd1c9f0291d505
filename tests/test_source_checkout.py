"""A second source checkout (a git worktree on PYTHONPATH) runs its own compiler, not the editable install's."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cerebro", "compiler", "frontends", "loaders")


def test_a_second_checkout_imports_its_own_subpackages(tmp_path: Path) -> None:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    script = "import cerebro, cerebro.compiler, cerebro.frontends, cerebro.loaders as l; " \
             "print(*(m.__file__ for m in (cerebro, cerebro.compiler, cerebro.frontends, l)))"
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path.parent, env={"PYTHONPATH": str(tmp_path)},
                         capture_output=True, text=True, check=True).stdout.split()
    assert len(out) == len(PACKAGES)
    assert all(Path(path).resolve().is_relative_to(tmp_path.resolve()) for path in out), out
