"""`cerebroc pkg ...`: info, verify, extract, run and binfmt for .deb, .exe and .apk (and ELF info).

The lead wires `add_pkg_parser(subparsers)` into cerebro/cli.py. Every error is one line on
stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from cerebro.binread import FormatError
from cerebro.loaders.limits import MAX_INPUT


def _load_deb(data: bytes | Path):
    from cerebro.loaders.deb import read_deb
    return read_deb(data)


def _load_pe(data: bytes):
    from cerebro.loaders.pe_package import PePackage
    return PePackage.parse(data)


def _load_apk(data: bytes):
    from cerebro.loaders.apk import read_apk
    from cerebro.loaders.jvmjar import is_jar, read_jar
    return read_jar(data) if is_jar(data) else read_apk(data)


def _load_class(data: bytes):
    from cerebro.loaders.jvmjar import read_class
    return read_class(data)


def _load_elf(data: bytes):
    from cerebro.loaders.image import ElfPackage
    return ElfPackage.parse(data)


LOADERS: dict[bytes, Callable] = {b"!<arch>\n": _load_deb, b"MZ": _load_pe, b"PK\x03\x04": _load_apk,
                                   b"\x7fELF": _load_elf, b"\xca\xfe\xba\xbe": _load_class}


def load_package(path: str | Path):
    """Parse a package file by its magic bytes into an object with info/verify/extract/run."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as e:
        raise FormatError(f"{path}: {e.strerror}") from None
    if size > MAX_INPUT:
        raise FormatError(f"{path}: {size} bytes is over the {MAX_INPUT}-byte input limit")
    with p.open("rb") as f:
        is_deb = p.is_file() and f.read(8) == b"!<arch>\n"  # (a pipe is read once, whole, below)
    if is_deb:  # a .deb is read from the file in pieces, never held whole (loaders/deb.py)
        pkg = _load_deb(p)
        pkg.source = p
        return pkg
    data = p.read_bytes()
    for magic, loader in LOADERS.items():
        if data.startswith(magic):
            pkg = loader(data)
            pkg.source = p
            return pkg
    raise FormatError(f"{path}: not a .deb, .exe, .apk, .jar, .class or ELF file (unknown magic {data[:4]!r})")


def _print_info(info: dict, indent: str = "") -> None:
    for key, value in info.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _print_info(value, indent + "  ")
        elif isinstance(value, list):
            print(f"{indent}{key}: ({len(value)})")
            for item in value:
                print(f"{indent}  {json.dumps(item) if isinstance(item, dict) else item}")
        else:
            text = str(value).replace("\n", "\n" + indent + "  ")  # multi-line fields stay indented
            print(f"{indent}{key}: {text}")


def cmd_info(args: argparse.Namespace) -> int:
    pkg = load_package(args.file)
    info = pkg.info()
    if args.imports:
        if not hasattr(pkg, "import_support"):
            raise FormatError(f"{args.file}: --imports applies to .exe files (the native loader's shims)")
        support = pkg.import_support()
        info["imports"] = support if args.json else [
            f"{i['import']} ({'supported' if i['supported'] else 'no shim'})" for i in support]
        info["unsupported_imports"] = sum(not i["supported"] for i in support)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_info(info)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    problems = load_package(args.file).verify()
    for problem in problems:
        print(f"{args.file}: {problem}", file=sys.stderr)
    if not problems:
        print(f"{args.file}: OK")
    return 1 if problems else 0


def cmd_extract(args: argparse.Namespace) -> int:
    names = load_package(args.file).extract(args.dir)
    print(f"extracted {len(names)} entries to {args.dir}")
    return 0


EXIT_TIMEOUT = 124  # as timeout(1)


def seconds(text: str) -> float:
    """A positive, finite number of seconds (argparse names this type in its errors)."""
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(text)
    return value


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The tool's own `pkg run` options (before FILE, or after it but before `--`)."""
    parser.add_argument("--program", help=".deb: program to run (default: the one named after the package)")
    parser.add_argument("--scripts", action="store_true", help=".deb: run preinst/postinst in the private root first")
    parser.add_argument("--main", help=".apk/.jar: class whose main(String[]) to run (default: from the manifest)")
    parser.add_argument("--timeout", type=seconds, metavar="SECONDS",
                        help=".exe/.deb: kill the program after SECONDS (exit 124); default: no limit")


def split_run_arguments(args: argparse.Namespace) -> tuple[str, list[str]]:
    """(FILE, program arguments) from `pkg run`'s words: the tool's options that follow FILE but come
    before `--` are the tool's (set on @args); everything else, and all after `--`, is the program's."""
    words = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not words:
        raise FormatError("pkg run: no FILE given")
    rest = words[1:]
    cut = rest.index("--") if "--" in rest else len(rest)
    after_file = argparse.ArgumentParser(prog="cerebroc pkg run", add_help=False, allow_abbrev=False,
                                         exit_on_error=False)
    add_run_options(after_file)
    try:
        _, program_words = after_file.parse_known_args(rest[:cut], namespace=args)
    except argparse.ArgumentError as e:
        raise FormatError(f"pkg run: {e}") from None
    return words[0], program_words + rest[cut + 1:]


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:  # real-time signals have no name
        return f"signal {number}"


def cmd_run(args: argparse.Namespace) -> int:
    path, program_args = split_run_arguments(args)
    pkg = load_package(path)
    options = {"program": args.program, "scripts": args.scripts, "main": args.main, "timeout": args.timeout}
    given = {k: v for k, v in options.items() if v}
    for name in given.keys() - set(pkg.run_options):
        accepted = ", ".join(f"--{o}" for o in pkg.run_options) or "none"
        raise FormatError(f"{path}: --{name} does not apply to this kind of package (its options: {accepted})")
    try:
        result = pkg.run(program_args, **given)
    except subprocess.TimeoutExpired:
        print(f"cerebroc pkg: error: {path}: still running after {args.timeout:g} s; killed (--timeout)",
              file=sys.stderr)
        return EXIT_TIMEOUT
    if result.returncode < 0:  # killed by a signal nobody reported (the PE loader reports its own faults)
        print(f"cerebroc pkg: error: {path}: the program was killed by {_signal_name(-result.returncode)}",
              file=sys.stderr)
        return 128 - result.returncode
    return result.returncode


def cmd_binfmt(args: argparse.Namespace) -> int:
    from cerebro.loaders import binfmt
    actions = {"install": binfmt.install, "uninstall": binfmt.uninstall, "show": binfmt.show}
    for line in actions[args.action](dry_run=args.dry_run):
        print(line)
    return 0


def add_pkg_parser(subparsers) -> argparse.ArgumentParser:
    """Adds `pkg` with its subcommands to an argparse subparsers object."""
    pkg = subparsers.add_parser("pkg", help="inspect, verify, extract and run .deb, .exe and .apk packages")
    pkg.set_defaults(run=run_pkg_command)  # cerebro/cli.py calls args.run(args)
    sub = pkg.add_subparsers(dest="pkg_command", required=True)
    p = sub.add_parser("info", help="show package metadata")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--imports", action="store_true", help=".exe: mark each import supported or not by `pkg run`")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("verify", help="check checksums and signatures")
    p.add_argument("file")
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser("extract", help="extract contents safely into DIR")
    p.add_argument("file")
    p.add_argument("dir")
    p.set_defaults(func=cmd_extract)
    p = sub.add_parser("run", help="run the package's program",
                       usage="%(prog)s [OPTIONS] FILE [-- ARGS...]  (OPTIONS may also follow FILE, before --)")
    add_run_options(p)
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="FILE [-- ARGS]",
                   help="the package, then the program's arguments (all of them after --)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("binfmt", help="register .exe/.apk/.deb with the kernel's binfmt_misc")
    p.add_argument("action", choices=["install", "uninstall", "show"])
    p.add_argument("--dry-run", action="store_true", help="print the rules instead of writing them")
    p.set_defaults(func=cmd_binfmt)
    return pkg


register = add_pkg_parser  # the cerebro.commands.* convention: register(subparsers)


def run_pkg_command(args: argparse.Namespace) -> int:
    """Runs a parsed `pkg` command: one-line errors, exit status 2 for bad input."""
    try:
        return args.func(args)
    except FormatError as e:
        print(f"cerebroc pkg: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"cerebroc pkg: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - the CLI promise: one line, never a traceback
        print(f"cerebroc pkg: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return 3


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (python -m cerebro.loaders.cli pkg ...), the same parser cerebroc uses."""
    parser = argparse.ArgumentParser(prog="cerebroc")
    add_pkg_parser(parser.add_subparsers(dest="command", required=True))
    return run_pkg_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
