"""Maps compiler/, frontends/, loaders/ into the cerebro package and builds the C runtime."""

import glob
import os

from setuptools import Extension, setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def mapped_packages() -> dict[str, str]:
    packages = {"cerebro": "cerebro"}
    for top in ("compiler", "frontends", "loaders"):
        for dirpath, _dirs, files in os.walk(top):
            if "__init__.py" in files:
                packages["cerebro." + dirpath.replace(os.sep, ".")] = dirpath
    return packages


def runtime_sources() -> list[str]:
    sources = []
    for part in ("core", "arch", "user"):
        sources += sorted(glob.glob(f"runtime_kmod/{part}/*.c"))
    return [s for s in sources if not os.path.basename(s).startswith("tool_")]


packages = mapped_packages()
setup(
    packages=list(packages),
    package_dir=packages,
    ext_modules=[
        Extension(
            "cerebro._runtime",
            sources=runtime_sources(),
            include_dirs=["runtime_kmod/include", "runtime_kmod/core", "runtime_kmod/arch"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
        )
    ],
)
