"""cerebroc export-c and runtime-lib: the two ways to put a model into a C program (docs/embedding.md)."""

from __future__ import annotations

import argparse
import platform
import shutil
from pathlib import Path

# the headers a program using libcerebro_runtime.a includes, from runtime_kmod/include/cerebro/
PUBLIC_HEADERS = ("cerebro_runtime.h", "abi.h", "cbx.h")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-c",
        help="write a .cbx as a linkable object and its C header",
        description="Write DIR/PREFIX.o (the model's object, its globals renamed PREFIX_entry, ...) and "
        "DIR/PREFIX.h (entry prototype, arena size, input/output names, shapes, dtypes, byte sizes, "
        "PREFIX_run()). Link with: cc main.c DIR/PREFIX.o",
        epilog="example:\n  cerebroc export-c mlp.cbx -o build/ --prefix mlp",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="the .cbx file")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="directory for PREFIX.o and PREFIX.h")
    p.add_argument("--prefix", default=None,
                   help="C name prefix and file stem (default: the .cbx file's stem as a C identifier)")
    p.set_defaults(run=run_export)

    p = sub.add_parser(
        "runtime-lib",
        help="build the runtime as a static C library",
        description="Build DIR/lib/libcerebro_runtime.a and copy its headers to DIR/include/cerebro/. "
        "Link with: cc -IDIR/include main.c DIR/lib/libcerebro_runtime.a -pthread",
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="install directory")
    p.add_argument("--arch", default=None, choices=("x86_64", "aarch64"),
                   help="target architecture (default: this machine's)")
    p.set_defaults(run=run_runtime_lib)


def run_export(args: argparse.Namespace) -> int:
    from cerebro.compiler.cbx.cheader import model_header
    from cerebro.compiler.cbx.reader import read_cbx
    from cerebro.compiler.cbx.relink import c_prefix, linkable_object

    source = Path(args.model)
    data = source.read_bytes()
    prefix = args.prefix or c_prefix(source.stem)
    obj = linkable_object(data, prefix)
    header = model_header(read_cbx(data).meta, prefix)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{prefix}.o").write_bytes(obj)
    (out / f"{prefix}.h").write_text(header)
    print(f"wrote {out / f'{prefix}.o'} and {out / f'{prefix}.h'}")
    return 0


def run_runtime_lib(args: argparse.Namespace) -> int:
    from cerebro.toolchain import RUNTIME_DIR, build_runtime_lib

    arch = args.arch or {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(),
                                                                     platform.machine().lower())
    out = Path(args.output)
    library = build_runtime_lib(arch, out / "lib")
    include = out / "include" / "cerebro"
    include.mkdir(parents=True, exist_ok=True)
    for name in PUBLIC_HEADERS:
        shutil.copyfile(RUNTIME_DIR / "include" / "cerebro" / name, include / name)
    print(f"wrote {library} and {include}/ ({', '.join(PUBLIC_HEADERS)})")
    return 0
