"""Maps compiler/, frontends/, loaders/ into the cerebro package, ships the C sources and builds the C runtime.

The C sources travel inside the package (cerebro/runtime_kmod/, cerebro/loaders/native/) because an
installed Cerebro compiles them on demand: `cerebroc kmod build` (Kbuild), cbxrun, the PE loader.
"""

import glob
import os

from setuptools import Extension, setup

# top-level source folder -> the package it becomes
PACKAGE_ROOTS = {"cerebro": "cerebro", "compiler": "cerebro.compiler", "frontends": "cerebro.frontends",
                 "loaders": "cerebro.loaders"}
RUNTIME_FILES = ["**/*.c", "**/*.h", "user/Makefile", "kernel/Kbuild", "kernel/Kbuild.model"]


def mapped_packages() -> dict[str, str]:
    packages = {}
    for top, package in PACKAGE_ROOTS.items():
        for dirpath, _dirs, files in os.walk(top):
            if "__init__.py" in files:
                packages[package + dirpath[len(top):].replace(os.sep, ".")] = dirpath
    packages["cerebro.runtime_kmod"] = "runtime_kmod"  # data only: the C runtime and kernel module sources
    return packages


def runtime_sources() -> list[str]:
    sources = []
    for part in ("core", "arch", "user"):
        sources += sorted(glob.glob(f"runtime_kmod/{part}/*.c"))
    # tool_*: programs; cerebro_runtime.c: the C library's API (cerebroc runtime-lib), not the binding's
    return [s for s in sources if not os.path.basename(s).startswith("tool_") and not s.endswith("/cerebro_runtime.c")]


packages = mapped_packages()
setup(
    packages=list(packages),
    package_dir=packages,
    package_data={"cerebro.runtime_kmod": RUNTIME_FILES, "cerebro.loaders": ["native/*.c", "native/*.h"]},
    include_package_data=False,  # the wheel gets exactly package_data; MANIFEST.in shapes only the sdist
    ext_modules=[
        Extension(
            "cerebro._runtime",
            sources=runtime_sources(),
            depends=sorted(glob.glob("runtime_kmod/*/*.h") + glob.glob("runtime_kmod/include/cerebro/*.h")),
            include_dirs=["runtime_kmod/include", "runtime_kmod/core", "runtime_kmod/arch"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
        )
    ],
)
