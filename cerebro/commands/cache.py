"""cerebroc cache: show or empty the persistent compile cache (cerebro/cache.py)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cache",
        help="show or clear the compile cache",
        description="The compile cache keeps compiled .cbx files keyed by model, target, options and compiler "
        "version. Location: $CEREBRO_CACHE_DIR, else ~/.cache/cerebro/compile; size bound: "
        "$CEREBRO_CACHE_MAX_BYTES (default 2 GiB); CEREBRO_COMPILE_CACHE=0 turns it off.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("info", help="directory, entries, bytes and size bound").set_defaults(run=info)
    actions.add_parser("clear", help="delete every entry").set_defaults(run=clear)


def info(args: argparse.Namespace) -> int:
    from cerebro.cache import CompileCache, compile_cache_enabled

    state = CompileCache().info()
    print(f"directory: {state.directory}")
    print(f"entries:   {state.entries}")
    print(f"bytes:     {state.bytes} ({state.bytes / 2**20:.1f} MiB)")
    print(f"limit:     {state.max_bytes} ({state.max_bytes / 2**20:.1f} MiB)")
    print(f"enabled:   {'yes' if compile_cache_enabled() else 'no (CEREBRO_COMPILE_CACHE)'}")
    return 0


def clear(args: argparse.Namespace) -> int:
    from cerebro.cache import CompileCache

    store = CompileCache()
    print(f"removed {store.clear()} entries from {store.directory}")
    return 0
