"""cerebroc profile: where a model spends its time, node by node, with each node's source location."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cerebro.commands.compile import DTYPE_NAMES, import_graph
from cerebro.commands.inputs import load_inputs
from cerebro.commands.model_file import read_model_file
from cerebro.compiler.quantize import QUANTIZE_MODES

SEED = 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile",
        help="time every node of a model and name its source",
        description="Time every node of a model (after fusion) on its own in the user-space runtime and print "
        "them slowest first: median microseconds over the runs, share of the total, the op with what is fused "
        "into it, and where it comes from (FILE.py:LINE of a JAX function, an ONNX node's name). MODEL is a "
        "source (FILE.py:FUNC, MODEL.onnx or a SavedModel directory), compiled here for profiling, or a .cbx "
        "built for profiling (--save, or build(graph, profile=True)). Without --input, the inputs are seeded "
        "random floats and zero integers.",
        epilog="examples:\n"
        "  cerebroc profile model.py:predict --arg 1x784:f32 --trace trace.json\n"
        "  cerebroc profile bert.onnx --shape batch=1 --shape sequence=128 --save bert-profile.cbx\n"
        "  cerebroc profile bert-profile.cbx --input inputs.npz --all",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", metavar="MODEL", help="FILE.py:FUNC, MODEL.onnx, SAVED_MODEL_DIR or a profiling .cbx")
    p.add_argument("--input", "-i", action="append", default=[], metavar="[NAME=]FILE.npy|FILE.npz",
                   help="inputs as for cerebroc run (default: seeded random)")
    p.add_argument("--arg", action="append", default=[], metavar="SHAPE:DTYPE",
                   help="one per positional argument of FUNC, e.g. 1x784:f32; dtypes: " + ", ".join(DTYPE_NAMES))
    p.add_argument("--shape", action="append", default=[], metavar="NAME=SHAPE",
                   help="bind an ONNX/SavedModel input's shape or an ONNX symbolic dimension (batch=2)")
    p.add_argument("--signature", default=None, help="SavedModel signature (default: serving_default)")
    p.add_argument("--name", default=None, help="model name (default: the function's or file's)")
    p.add_argument("--repeats", type=int, default=100, metavar="N", help="timed runs (default 100)")
    p.add_argument("--top", type=int, default=20, metavar="N", help="rows of the slowest nodes (default 20)")
    p.add_argument("--all", action="store_true", help="every node")
    p.add_argument("--trace", default=None, metavar="OUT.json",
                   help="write a Chrome/Perfetto trace of the runs (open in https://ui.perfetto.dev)")
    p.add_argument("--save", default=None, metavar="OUT.cbx", help="keep the profiling build of a source")
    p.add_argument("--quantize", default=None, choices=QUANTIZE_MODES,
                   help="build a source quantized as `cerebroc compile --quantize` does")
    p.add_argument("--calibration", default=None, metavar="FILE.npz",
                   help="sample inputs for --quantize int8, as for `cerebroc compile --calibration`")
    p.set_defaults(run=run)


def is_source(model: str) -> bool:
    """Whether MODEL names something to compile (a function, an ONNX file, a SavedModel), not a .cbx."""
    return ".py:" in model or model.endswith((".py", ".onnx")) or Path(model).is_dir()


def compile_for_profiling(args: argparse.Namespace) -> bytes:
    """The source built with one node per stage and the stage table (build(..., profile=True)) for this
    host, keeping a Python function's calling convention."""
    from cerebro.calibration import quantize_graph
    from cerebro.commands.compile_progress import CompileDisplay
    from cerebro.compiler import build
    from cerebro.compiler.cbx.tree import attach_tree
    from cerebro.compiler.progress import phase, reporting
    from cerebro.frontends.binding import cli_syntax

    with CompileDisplay(show=True) as display, reporting(display):
        with cli_syntax(), phase("trace" if ".py:" in args.source else "import"):
            graph, call_tree = import_graph(args)
        graph, quantize = quantize_graph(graph, args.quantize, args.calibration)
        data = build(graph, "host", profile=True, quantize=quantize)
    return data if call_tree is None else attach_tree(data, call_tree)  # as `cerebroc compile` keeps it


def example_inputs(specs: list) -> list[np.ndarray]:
    """Seeded standard-normal floats and zero integers/booleans, one array per input."""
    rng = np.random.default_rng(SEED)
    arrays = []
    for spec in specs:
        dtype = spec.dtype.numpy
        arrays.append(rng.standard_normal(spec.shape).astype(dtype) if dtype.kind == "f"
                      else np.zeros(spec.shape, dtype))
    return arrays


def run(args: argparse.Namespace) -> int:
    from cerebro import runtime
    from cerebro.profiling import NO_TABLE, measure

    if args.save and not is_source(args.source):
        raise ValueError("--save keeps the profiling build of a source; MODEL is already a .cbx")
    if is_source(args.source):
        data = compile_for_profiling(args)
        if args.save:
            Path(args.save).write_bytes(data)
    else:
        data, _ = read_model_file(args.source)
    model = runtime.load(data)
    if model.profile_table is None:
        raise ValueError(f"{args.source}: {NO_TABLE}")
    inputs = load_inputs(args.input, model.signature.inputs) if args.input else example_inputs(model.meta.inputs)
    profile = measure(model, tuple(inputs), args.repeats)
    print(profile.table(None if args.all else args.top))
    if args.save:
        print(f"wrote {args.save}")
    if args.trace:
        profile.write_trace(args.trace)
        print(f"wrote {args.trace} (open it in https://ui.perfetto.dev)")
    return 0
