"""cerebroc kmod: build kernel modules for .cbx models and run them (defined in cerebro.kmod)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from cerebro.kmod import register as register_kmod

    register_kmod(sub)
