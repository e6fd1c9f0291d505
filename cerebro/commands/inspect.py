"""cerebroc inspect: what a .cbx holds (target, signature, sizes, hash, IR)."""

from __future__ import annotations

import argparse
import json

from cerebro.commands.model_file import read_model_file
from cerebro.elf import MACHINE_NAMES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="show a .cbx file's metadata or IR",
                       description="Show a .cbx file's target, signature, arena and weight sizes and hash.")
    p.add_argument("model", help="the .cbx file")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="print the metadata as JSON")
    group.add_argument("--ir", action="store_true", help="print the IR the model was compiled from")
    p.set_defaults(run=run)


def describe(meta) -> dict:
    def tensor(t):
        return {"name": t.name, "shape": list(t.shape), "dtype": t.dtype.numpy.name}

    return {
        "model_name": meta.model_name,
        "machine": MACHINE_NAMES.get(meta.machine, str(meta.machine)),
        "triple": meta.triple,
        "cpu": meta.cpu,
        "features": meta.features,
        "num_stages": meta.num_stages,
        "parts": meta.parts,
        "arena_size": meta.arena_size,
        "weights_size": meta.weights_size,
        "flops": meta.flops,
        "max_stage_flops": meta.max_stage_flops,
        "hash": meta.hash.hex(),
        "inputs": [tensor(t) for t in meta.inputs],
        "outputs": [tensor(t) for t in meta.outputs],
    }


def run(args: argparse.Namespace) -> int:
    _, cbx = read_model_file(args.model)
    if args.ir:
        if not cbx.ir_text:
            raise ValueError(f"{args.model} carries no IR section")
        print(cbx.ir_text, end="")
        return 0
    info = describe(cbx.meta)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{args.model}: model '{info['model_name']}' for {info['machine']} ({info['triple']}, cpu {info['cpu']})")
    print(f"  features:  {info['features'] or '(baseline)'}")
    print(f"  stages:    {info['num_stages']} (largest {info['max_stage_flops']:,} of {info['flops']:,} flops); "
          f"threads per call: up to {info['parts']}")
    print(f"  arena:     {info['arena_size']:,} bytes; weights: {info['weights_size']:,} bytes")
    print(f"  sha256:    {info['hash']}")
    for kind in ("inputs", "outputs"):
        for t in info[kind]:
            print(f"  {kind[:-1]:7s}  {t['name']}: {t['dtype']}[{','.join(map(str, t['shape']))}]")
    return 0
