"""cerebroc pkg: the package loaders' commands (defined in cerebro.loaders.cli)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from cerebro.loaders.cli import add_pkg_parser

    add_pkg_parser(sub)
