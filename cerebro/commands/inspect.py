"""cerebroc inspect: what a .cbx holds (target, signature, sizes, hash, IR)."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from typing import Any

from cerebro.commands.model_file import read_model_file
from cerebro.compiler.cbx.format import CbxError
from cerebro.compiler.cbx.tree import CallTree, read_tree
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
        "fpu": meta.fpu,
        "arena_size": meta.arena_size,
        "regions": meta.regions,
        "region_size": meta.region_size,
        "weights_size": meta.weights_size,
        "flops": meta.flops,
        "max_stage_flops": meta.max_stage_flops,
        "hash": meta.hash.hex(),
        "inputs": [tensor(t) for t in meta.inputs],
        "outputs": [tensor(t) for t in meta.outputs],
    }


_PRODUCT = re.compile(r"^  %\S+: (\S+) = (matmul_integer|conv_integer|matmul|conv)\(.*?(?:  # (.*))?$", re.M)
_INTEGER = {"matmul_integer": "matmul", "conv_integer": "conv"}


def int8_nodes(ir_text: str | None) -> dict | None:
    """Which products the IR runs in int8 (matmul_integer, conv_integer: the op, its output type and source
    line) and how many stay float; None for a model without integer products."""
    found = _PRODUCT.findall(ir_text or "")
    integer = [f"{_INTEGER[op]} -> {out_type} at {loc or '?'}" for out_type, op, loc in found if op in _INTEGER]
    if not integer:
        return None
    return {"int8": integer, "float_matmul": sum(op == "matmul" for _, op, _ in found),
            "float_conv": sum(op == "conv" for _, op, _ in found)}


def call_text(name: str, tree: CallTree, inputs: list[str], outputs: list[str]) -> str:
    """The calling convention as a Python call, each leaf shown as its signature tensor:
    predict(params={'w': params.w}, x, n=3) -> (y, aux)."""
    leaves = iter(inputs)
    args = [_param(arg, node, leaves) for arg, node in tree.args]
    kwargs = [_param(arg, node, leaves, keyword=True) for arg, node in tree.kwargs]
    params = ", ".join(args + (["*"] + kwargs if kwargs else []))
    return f"{name}({params}) -> {_node(tree.output, iter(outputs))}"


def _param(name: str, node: Any, leaves: Iterator[str], keyword: bool = False) -> str:
    if isinstance(node, dict) and "static" in node:
        return f"{name}={node['static']} (static)"
    text = _node(node, leaves)
    return text if text == name and not keyword else f"{name}={text}"


def _node(node: Any, leaves: Iterator[str]) -> str:
    """One NODE of compiler/cbx/tree.py's format, its leaves named by the next tensors of the signature."""
    if node is None:
        return "None"
    if not isinstance(node, dict):
        return next(leaves)
    if "dict" in node:
        return "{" + ", ".join(f"{key!r}: {_node(child, leaves)}" for key, child in node["dict"]) + "}"
    kind = "list" if "list" in node else "tuple"
    items = [_node(child, leaves) for child in node[kind]]
    return f"[{', '.join(items)}]" if kind == "list" else f"({', '.join(items)}{',' if len(items) == 1 else ''})"


def run(args: argparse.Namespace) -> int:
    data, cbx = read_model_file(args.model)
    if args.ir:
        if not cbx.ir_text:
            raise ValueError(f"{args.model} carries no IR section")
        print(cbx.ir_text, end="")
        return 0
    info = describe(cbx.meta)
    int8 = int8_nodes(cbx.ir_text)
    if int8 is not None:
        info["int8"] = int8
    try:
        tree = read_tree(data, cbx.meta)
    except CbxError as error:
        raise ValueError(f"{args.model}: {error}") from None
    if tree is not None:
        info["call"] = {"args": tree.args, "kwargs": tree.kwargs, "output": tree.output,
                        "text": call_text(info["model_name"], tree, [t["name"] for t in info["inputs"]],
                                          [t["name"] for t in info["outputs"]])}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{args.model}: model '{info['model_name']}' for {info['machine']} ({info['triple']}, cpu {info['cpu']})")
    print(f"  features:  {info['features'] or '(baseline)'}")
    print(f"  stages:    {info['num_stages']} (largest {info['max_stage_flops']:,} of {info['flops']:,} flops); "
          f"threads per call: up to {info['parts']}")
    print(f"  fpu:       {info['fpu']}" + ("  (integer-only: the kernel runs it without an FPU section)"
                                          if info["fpu"] == "none" else ""))
    regions = (f" a region, {info['regions']} regions {info['region_size']:,} bytes apart (one per thread)"
               if info["regions"] > 1 else "")
    print(f"  arena:     {info['arena_size']:,} bytes{regions}; weights: {info['weights_size']:,} bytes")
    print(f"  sha256:    {info['hash']}")
    if int8 is not None:
        kinds = [where.split(" -> ")[0] for where in int8["int8"]]
        counts = ", ".join(f"{kinds.count(kind)} {kind}_integer node(s)" for kind in _INTEGER.values()
                           if kind in kinds)
        print(f"  int8:      {counts}; float: {int8['float_matmul']} matmul, {int8['float_conv']} conv")
        for where in int8["int8"]:
            print(f"    int8 {where}")
    for kind in ("inputs", "outputs"):
        for t in info[kind]:
            print(f"  {kind[:-1]:7s}  {t['name']}: {t['dtype']}[{','.join(map(str, t['shape']))}]")
    if "call" in info:
        print(f"  call:      {info['call']['text']}  (.note.cerebro.tree)")
    return 0
