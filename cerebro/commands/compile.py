"""cerebroc compile: a Python function, an ONNX file or a SavedModel to a .cbx file."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cerebro.compiler.ir import DType
from cerebro.compiler.quantize import CALIBRATION_METHODS, QUANTIZE_MODES
from cerebro.frontends.binding import cli_syntax


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compile",
        help="compile a model to a .cbx file",
        description="Compile FILE.py:FUNC (a JAX/Flax function of arrays), MODEL.onnx, or a TensorFlow "
        "SavedModel directory to a .cbx object.",
        epilog="examples:\n"
        "  cerebroc compile model.py:predict --arg 1x784:f32 -o mlp.cbx\n"
        "  cerebroc compile bert.onnx --shape input_ids=1x128 --shape attention_mask=1x128 -o bert.cbx\n"
        "  cerebroc compile bert.onnx --shape batch=1 --shape sequence=128 -o bert.cbx   (symbolic dims)\n"
        "  cerebroc compile saved_model/ --signature serving_default -o model.cbx --target aarch64",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", help="FILE.py:FUNC, MODEL.onnx or SAVED_MODEL_DIR")
    p.add_argument("--arg", action="append", default=[], metavar="SHAPE:DTYPE",
                   help="one per positional argument of FUNC, e.g. 1x784:f32 (scalar: :i32); dtypes: "
                   + ", ".join(DTYPE_NAMES))
    p.add_argument("--shape", action="append", default=[], metavar="NAME=SHAPE",
                   help="bind an ONNX/SavedModel input's shape (input_ids=1x128) or an ONNX symbolic "
                   "dimension by its name (batch=2)")
    p.add_argument("--const", action="append", default=[], metavar="NAME=VALUE",
                   help="fix an ONNX input to a value (sr=16000; a vector: 1,2,3); it stops being an input, "
                   "which specialises shapes and If branches that depend on it")
    p.add_argument("--signature", default=None, help="SavedModel signature (default: serving_default)")
    p.add_argument("-o", "--output", required=True, help="the .cbx file to write")
    p.add_argument("--target", default="host",
                   help="host (default), x86_64, x86_64-v3, x86_64-v4, aarch64, i686, i686-v3, or the "
                   "integer-only x86_64-gpr and aarch64-gpr (no FP/SIMD registers: fpu none in the kernel)")
    p.add_argument("--name", default=None, help="model name recorded in the .cbx")
    p.add_argument("--quantize", default=None, choices=QUANTIZE_MODES,
                   help="int8-weights: constant dense weights int8 with a scale per output column, "
                   "activations f32; int8: matmuls as integer products, activation scales from --calibration")
    p.add_argument("--calibration", default=None, metavar="FILE.npz",
                   help="sample inputs for --quantize int8: one array per input (by name or arr_0, ...), "
                   "with a leading axis of samples")
    p.add_argument("--calibration-method", default=None, choices=CALIBRATION_METHODS,
                   help="how --quantize int8 picks each activation's range from the samples: minmax (default: "
                   "the extremes seen), percentile (the 1e-5 tails clipped) or mse (least expected squared error)")
    p.add_argument("-v", "--timings", action="store_true", help="print the seconds each compile phase took")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print nothing but errors (no progress, no 'wrote' line)")
    p.set_defaults(run=run)


# The element types Cerebro compiles, by short name (f32) and numpy name (float32).
DTYPE_NAMES = {dtype.name: dtype.numpy for dtype in DType}
DTYPE_NAMES.update({dtype.numpy.name: dtype.numpy for dtype in DType})


def parse_arg_spec(spec: str) -> np.ndarray:
    """'1x784:f32' (or 1x784:float32) -> zeros of that shape and dtype."""
    shape_text, sep, dtype_text = spec.rpartition(":")
    if not sep:
        raise ValueError(f"--arg {spec!r}: expected SHAPE:DTYPE such as 1x784:f32")
    if dtype_text.lower() not in DTYPE_NAMES:
        raise ValueError(f"--arg {spec!r}: unknown dtype {dtype_text!r}; use one of {', '.join(DTYPE_NAMES)}")
    return np.zeros(parse_shape(shape_text, f"--arg {spec!r}"), DTYPE_NAMES[dtype_text.lower()])


def parse_shape(text: str, what: str) -> tuple[int, ...]:
    if text in ("", "scalar"):
        return ()
    try:
        dims = tuple(int(d) for d in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"{what}: shape {text!r} is not like 1x784") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"{what}: negative dimension in {text!r}")
    return dims


def parse_named_shapes(specs: list[str], input_names: frozenset[str] | None = None
                       ) -> dict[str, tuple[int, ...] | int]:
    """--shape NAME=SHAPE options as the frontends' shapes: an input's shape by input name, or the size of
    a symbolic dimension (NAME=N, NAME not an input) as the Python API's shapes={'batch': 2} does.
    input_names None: the source has no named dimensions (SavedModel), every NAME is an input."""
    shapes: dict[str, tuple[int, ...] | int] = {}
    for spec in specs:
        name, sep, shape = spec.partition("=")
        if not sep or not name:
            raise ValueError(f"--shape {spec!r}: expected NAME=SHAPE such as input_ids=1x128 or batch=2")
        dims = parse_shape(shape, f"--shape {spec!r}")
        by_dim = input_names is not None and name not in input_names and len(dims) == 1
        shapes[name] = dims[0] if by_dim else dims
    return shapes


def parse_constants(specs: list[str]) -> dict[str, np.ndarray]:
    """--const NAME=VALUE options as import_onnx's constants: a number, or numbers joined by commas
    (a vector); the importer casts them to the input's element type."""
    constants = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            numbers = [float(v) if any(c in v.lower() for c in ".en") else int(v) for v in text.split(",")]
        except ValueError:
            raise ValueError(f"--const {spec!r}: expected NAME=VALUE such as sr=16000 or scales=1,1,2,2") from None
        constants[name] = np.array(numbers[0] if len(numbers) == 1 and "," not in text else numbers)
    return constants


def load_function(source: str):
    file_text, _, func_name = source.rpartition(":")
    path = Path(file_text)
    if not path.is_file():
        raise FileNotFoundError(f"{file_text}: no such file")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    fn = getattr(module, func_name, None)
    if not callable(fn):
        raise ValueError(f"{path} has no function {func_name!r}")
    return fn


def import_source(args: argparse.Namespace) -> tuple[Callable[[], str], Callable[[], Any], Any]:
    """The source as the compile cache takes it (cache.cached_lower): the digest keying it, its IR graph
    (made only when called, so a cache hit of a Python function never lowers its jaxpr) and a Python
    function's calling convention (its pytrees, as cerebro.compile(fn).export writes them; None for
    ONNX/SavedModel)."""
    if args.source.endswith(".py") or ".py:" in args.source:
        from cerebro.compiler.progress import phase
        from cerebro.frontends.jax.tracer import lower

        captured = capture_function(args)

        def lowered() -> Any:
            with phase("lower"):
                return lower(captured).graph

        return (lambda: "jaxpr:" + captured.fingerprint()), lowered, captured.call_tree
    from cerebro.cache import graph_source

    graph = import_model(args)
    return (lambda: graph_source(graph)), (lambda: graph), None


def import_graph(args: argparse.Namespace) -> tuple[Any, Any]:
    """The IR graph for the source and a Python function's calling convention (see import_source)."""
    _, graph, call_tree = import_source(args)
    return graph(), call_tree


def capture_function(args: argparse.Namespace) -> Any:
    """FILE.py:FUNC traced to a jaxpr for the --arg shapes, named --name or FUNC."""
    source = args.source
    if ".py:" not in source:
        raise ValueError(f"{source}: name the function too, as FILE.py:FUNC")
    if not args.arg:
        raise ValueError("a Python function needs one --arg SHAPE:DTYPE per argument")
    from cerebro.frontends.jax.tracer import capture

    captured = capture(load_function(source), *[parse_arg_spec(a) for a in args.arg])
    captured.name = args.name or source.rpartition(":")[2]
    return captured


def import_model(args: argparse.Namespace) -> Any:
    """The IR graph of an ONNX file or a SavedModel directory."""
    source = args.source
    path = Path(source)
    constants = getattr(args, "const", [])  # `cerebroc profile` shares this function and has no --const
    if constants and path.suffix != ".onnx":
        raise ValueError("--const fixes inputs of an ONNX model; it does not apply to " + source)
    if path.is_dir():
        from cerebro.frontends.tensorflow import import_saved_model

        graph = import_saved_model(path, signature=args.signature, shapes=parse_named_shapes(args.shape) or None)
    elif path.suffix == ".onnx":
        if not path.is_file():
            raise FileNotFoundError(f"{source}: no such file")
        from cerebro.frontends.onnx import import_onnx
        from cerebro.frontends.onnx.importer import read_model

        model, raw_weights = read_model(path)
        shapes = parse_named_shapes(args.shape, frozenset(i.name for i in model.graph.input))
        graph = import_onnx(model, shapes=shapes or None, constants=parse_constants(constants),
                            raw_weights=raw_weights)
    else:
        raise ValueError(f"{source}: expected FILE.py:FUNC, a .onnx file or a SavedModel directory")
    graph.name = args.name or path.stem or "model"
    return graph


def run(args: argparse.Namespace) -> int:
    from cerebro.cache import cached_lower
    from cerebro.calibration import quantized_lowering
    from cerebro.commands.compile_progress import CompileDisplay
    from cerebro.compiler.progress import phase, reporting

    with CompileDisplay(show=not args.quiet) as display, reporting(display):
        with cli_syntax(), phase("trace" if ".py:" in args.source else "import"):
            key, graph, call_tree = import_source(args)
        key, graph, quantize = quantized_lowering(key, graph, args.quantize, args.calibration,
                                                  args.calibration_method)
        sealed = cached_lower(key, graph, args.target, quantize=quantize)
        if call_tree is not None:
            from cerebro.compiler.cbx.tree import attach_tree
            from cerebro.compiler.cbx.writer import Sealed

            sealed = Sealed((attach_tree(bytes(sealed), call_tree),))
        with phase("write file"):
            sealed.write(args.output)
    if args.timings and not args.quiet:
        print(display.timings_text(), file=sys.stderr)
    if not args.quiet:
        print(f"wrote {args.output} ({sealed.nbytes} bytes, target {args.target})")
    return 0
