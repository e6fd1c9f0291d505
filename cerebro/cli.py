"""cerebroc: the command-line face of Cerebro. Subcommands live in cerebro/commands/."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from importlib import metadata

# Subcommand modules, each with register(subparsers) that sets a `run` default.
COMMANDS = (
    "cerebro.commands.compile",
    "cerebro.commands.run",
    "cerebro.commands.inspect",
    "cerebro.commands.kmod",
    "cerebro.commands.pkg",
    "cerebro.commands.cache",
    "cerebro.commands.embed",
    "cerebro.commands.profile",
)


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


def installed_version() -> str:
    """The installed distribution's version; a source checkout run without installing has only __version__."""
    try:
        return metadata.version("cerebro")
    except metadata.PackageNotFoundError:
        from cerebro import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cerebroc",
        description="Cerebro ahead-of-time model compiler: compile JAX/Flax functions, ONNX files and "
        "TensorFlow SavedModels to .cbx objects, run and inspect them.",
        epilog="Set CEREBRO_DEBUG=1 to see tracebacks.",
    )
    parser.add_argument("--version", action="version", version=f"cerebroc {installed_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("cerebroc: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # one line for the user; the traceback only on request
        if os.environ.get("CEREBRO_DEBUG"):
            raise
        message = str(error) or type(error).__name__
        print(f"cerebroc: error: {message.splitlines()[0] if message else message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
