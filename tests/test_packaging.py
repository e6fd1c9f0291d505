"""`pip install .` and `pip install` of the sdist give a complete Cerebro, used from outside the checkout.

Slow on purpose (about 60-90 s on 2 shared CPUs; one sdist, two builds of the C extension, one
Kbuild run), so the work is shared: both installs are made once per module, and the end-to-end
CLI run uses the `pip install .` copy after checking that the sdist installs exactly the same files.

Each install goes into a fresh venv in a temp dir. To stay fast and work offline, that venv gets the
heavy dependencies (numpy, llvmlite, jax; setuptools and wheel to build) through a .pth file naming
this test venv's site-packages, while Cerebro itself is built from source and installed with
--no-deps. A path added by a .pth file has its own .pth files ignored, so the checkout's editable
finder never loads there: `import cerebro` must find the installed copy (checked).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SUBCOMMANDS = (["compile"], ["run"], ["inspect"], ["kmod", "build"], ["kmod", "run"], ["pkg", "info"],
               ["pkg", "verify"], ["pkg", "extract"], ["pkg", "run"], ["pkg", "binfmt"])
# Build products of setuptools (build/, *.egg-info) go here instead of into the checkout, so a stale
# build/lib there can neither leak into the wheel nor be left behind by this test.
BUILD_CONFIG = "[build]\nbuild_base = {tmp}/build\n[egg_info]\negg_base = {tmp}\n"
MODEL = """
import jax.numpy as jnp

W = jnp.arange(12.0, dtype=jnp.float32).reshape(3, 4) / 10


def predict(x):
    return jnp.tanh(x @ W)
"""

HELP_OF_EACH = """
import contextlib, io, json
from cerebro.cli import main
texts = []
for words in %r:
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
        main([*words, "--help"])
    texts.append(out.getvalue())
print(json.dumps(texts))
"""

pytestmark = pytest.mark.timeout(600)


def run(*cmd, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
    return result


def fresh_venv(path: Path) -> Path:
    """A venv without pip (the test's pip installs into it) that sees this venv's packages as dependencies."""
    run(sys.executable, "-m", "venv", "--without-pip", path)
    python = path / "bin" / "python"
    purelib = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (purelib / "cerebro-test-deps.pth").write_text("".join(f"{p}\n" for p in sorted(deps)))
    return path


def pip_install(venv: Path, target: Path, env: dict[str, str]) -> None:
    run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", "--no-deps",
        "--no-build-isolation", "--no-index", target, env=env)


class Install:
    """One fresh venv holding an installed Cerebro, driven from a directory outside the checkout."""

    def __init__(self, venv: Path, work: Path, cache: Path):
        self.venv, self.work = venv, work
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        self.env["PATH"] = f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"
        self.env["CEREBRO_CACHE"] = str(cache)  # native helpers are built afresh from the installed sources

    def cerebroc(self, *args) -> subprocess.CompletedProcess:
        return run(self.venv / "bin" / "cerebroc", *args, cwd=self.work, env=self.env)

    def python(self, code: str) -> str:
        return run(self.venv / "bin" / "python", "-c", code, cwd=self.work, env=self.env).stdout

    def files(self) -> set[str]:
        """Paths the install wrote, from its RECORD."""
        (record,) = (self.venv / "lib").glob("python*/site-packages/cerebro-*.dist-info/RECORD")
        return {line.split(",")[0] for line in record.read_text().splitlines()}

    def package_dir(self) -> Path:
        return Path(self.python("import cerebro; print(cerebro.__file__)").strip()).parent


@pytest.fixture(scope="module")
def installs(tmp_path_factory) -> dict[str, Install]:
    tmp = tmp_path_factory.mktemp("packaging")
    assert not tmp.is_relative_to(REPO)
    (tmp / "setuptools").mkdir()
    (tmp / "setuptools.cfg").write_text(BUILD_CONFIG.format(tmp=tmp / "setuptools"))
    env = {**os.environ, "DIST_EXTRA_CONFIG": str(tmp / "setuptools.cfg")}
    run(sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", tmp / "dist", REPO, env=env)
    (sdist,) = (tmp / "dist").glob("cerebro-*.tar.gz")
    work = tmp / "work"
    work.mkdir()
    out = {}
    clean_env = {k: v for k, v in os.environ.items() if k != "DIST_EXTRA_CONFIG"}  # pip unpacks it in a fresh dir
    for kind, target, build_env in (("tree", REPO, env), ("sdist", sdist, clean_env)):
        venv = fresh_venv(tmp / f"venv-{kind}")
        pip_install(venv, target, build_env)
        out[kind] = Install(venv, work, tmp / f"cache-{kind}")
    out["sdist"].archive = sdist
    return out


@pytest.fixture(scope="module")
def compiled(installs) -> Path:
    """m.cbx compiled by the installed `cerebroc` from a model.py outside the checkout."""
    tree = installs["tree"]
    (tree.work / "model.py").write_text(MODEL)
    tree.cerebroc("compile", "model.py:predict", "--arg", "2x3:float32", "--target", "x86_64", "-o", "m.cbx")
    return tree.work / "m.cbx"


def test_sdist_holds_every_c_source_and_header(installs):
    with tarfile.open(installs["sdist"].archive) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    wanted = {str(p.relative_to(REPO)) for pattern in ("runtime_kmod/**/*.[ch]", "loaders/native/*.[ch]")
              for p in REPO.glob(pattern)}
    assert wanted and wanted <= names, sorted(wanted - names)


def test_both_installs_are_complete_identical_and_imported(installs):
    tree, sdist = installs["tree"], installs["sdist"]
    assert tree.files() == sdist.files()
    for install in (tree, sdist):
        package = install.package_dir()
        assert package.is_relative_to(install.venv)
        shipped = {p.relative_to(package / "runtime_kmod") for p in (package / "runtime_kmod").rglob("*")}
        sources = {p.relative_to(REPO / "runtime_kmod") for p in (REPO / "runtime_kmod").rglob("*")
                   if p.suffix not in (".o", ".ko", ".so")}
        assert shipped == sources
        assert {p.name for p in (package / "loaders" / "native").iterdir()} >= {"peload.c", "fault_report.h"}
        version = install.python("import cerebro, importlib.metadata as m; print(cerebro.__version__, "
                                 "m.version('cerebro'))").split()
        assert version[0] == version[1]
        assert install.cerebroc("--version").stdout.strip() == f"cerebroc {version[0]}"


def test_every_subcommand_answers_help(installs):
    tree = installs["tree"]
    listing = tree.cerebroc("--help").stdout
    assert all(words[0] in listing for words in SUBCOMMANDS)
    helps = json.loads(tree.python(HELP_OF_EACH % (SUBCOMMANDS,)))  # one process: each --help costs an import
    for words, text in zip(SUBCOMMANDS, helps):
        assert text.startswith("usage: cerebroc " + " ".join(words)), text


def test_compile_run_inspect_from_both_installs(installs, compiled):
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    np.save(compiled.parent / "x.npy", x)
    expected = np.tanh(x @ (np.arange(12.0, dtype=np.float32).reshape(3, 4) / 10))
    for kind, install in installs.items():  # the sdist's C runtime runs what the tree install compiled
        install.cerebroc("run", "m.cbx", "--input", "x.npy", "--output", f"{kind}.npz")
        (got,) = np.load(compiled.parent / f"{kind}.npz").values()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    info = json.loads(installs["tree"].cerebroc("inspect", "m.cbx", "--json").stdout)
    assert [t["shape"] for t in info["inputs"]] == [[2, 3]] and info["outputs"][0]["shape"] == [2, 4]


def test_kmod_build_from_installed_sources(installs, compiled):
    from cerebro.kmod import KmodError, find_kernel_release

    try:
        find_kernel_release()
    except KmodError as error:
        pytest.skip(f"kmod build needs kernel headers: {error}")
    built = installs["tree"].cerebroc("kmod", "build", "m.cbx", "-o", "kmod").stdout.split()
    names = {Path(p).name for p in built}
    assert {"cerebro.ko", "cerebro-ctl"} <= names and any(n.startswith("cbx_") for n in names)
    assert all(Path(p).is_file() and Path(p).is_relative_to(compiled.parent) for p in built)


def test_pkg_info_on_a_debian_package(installs):
    sys.path.insert(0, str(REPO / "tests" / "loaders"))
    from loader_support import download_debs

    deb = download_debs("hello")["hello"]
    info = json.loads(installs["tree"].cerebroc("pkg", "info", deb, "--json").stdout)
    assert info["format"] == "deb" and info["package"] == "hello"


def test_pkg_run_builds_the_pe_loader_from_installed_sources(installs):
    sys.path.insert(0, str(REPO / "tests" / "loaders"))
    from loader_support import need

    need("x86_64-w64-mingw32-gcc", "cc")
    tree = installs["tree"]
    (tree.work / "hello.c").write_text(textwrap.dedent("""
        #include <stdio.h>
        int main(int argc, char **argv) { printf("hello %s\\n", argc > 1 ? argv[1] : "?"); return 0; }
    """))
    run("x86_64-w64-mingw32-gcc", "-O1", "-o", tree.work / "hello.exe", tree.work / "hello.c")
    assert tree.cerebroc("pkg", "run", "hello.exe", "--", "wheel").stdout == "hello wheel\n"
    assert list((Path(tree.env["CEREBRO_CACHE"]) / "native").glob("peload-*"))
