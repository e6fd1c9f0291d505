"""The JVM as the reference of the interpreter tests: `build` makes programs.jar (and whatever else the
test reads) once, `java` runs each program, and both are cached under loader_support.CACHE by a hash
of the sources and the runs, so only the first run pays for the tools."""

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from loader_support import CACHE, need


def jvm_reference(cache_name: str, sources: list[Path], build: Callable[[Path], None],
                  runs: dict[str, list[str]], stdin: dict[str, str],
                  main_of: dict[str, str] | None = None) -> tuple[Path, dict[str, list]]:
    """The folder `build` filled and each run's [exit status, stdout, stderr] on the JVM, run in CACHE (a
    program may print user.dir: the interpreter's runs must chdir there too, not to wherever the suite
    runs); main_of names the class of a run whose class is another run's."""
    digest = hashlib.sha256(json.dumps([runs, stdin, main_of or {}, "cwd: cache"]).encode())
    for path in sources:
        digest.update(path.name.encode() + path.read_bytes())
    folder = CACHE / cache_name / digest.hexdigest()[:16]
    if (folder / "expected.json").exists():
        return folder, json.loads((folder / "expected.json").read_text())
    need("java")
    work = folder.with_suffix(".part")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    build(work)
    expected = {}
    for name, args in runs.items():
        main = (main_of or {}).get(name, name)
        proc = subprocess.run(["java", "-cp", str(work / "programs.jar"), main, *args], cwd=CACHE,
                              capture_output=True, text=True, timeout=60, input=stdin.get(name, ""))
        expected[name] = [proc.returncode, proc.stdout, proc.stderr]
    (work / "expected.json").write_text(json.dumps(expected))
    shutil.rmtree(folder, ignore_errors=True)
    work.rename(folder)
    return folder, expected
