"""cerebroc run: execute a .cbx in the user-space runtime on .npy/.npz inputs."""

from __future__ import annotations

import argparse
import time

import numpy as np

from cerebro.commands.inputs import load_inputs
from cerebro.commands.model_file import read_model_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run a .cbx on .npy/.npz inputs",
        description="Run a .cbx in the user-space runtime. Inputs are .npy files in signature order, "
        "NAME=FILE.npy, or .npz files whose arrays are named as the inputs. An input of another dtype is "
        "cast when the model's dtype holds its values (with a note on stderr). Without --output, prints "
        "each output's shape and leading values.",
    )
    p.add_argument("model", help="the .cbx file")
    p.add_argument("--input", "-i", action="append", default=[], metavar="[NAME=]FILE.npy|FILE.npz")
    p.add_argument("--output", "-o", default=None, metavar="OUT.npz", help="save outputs by name")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="run N times and report min/median/p90 latency")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="split each call across N threads (the file must be compiled with parallel support)")
    p.set_defaults(run=run)


def latency_summary(seconds: list[float]) -> str:
    """min/median/p90 of the call times, in microseconds."""
    us = np.asarray(seconds) * 1e6
    return (f"latency over {len(us)} runs: min {us.min():.1f} us, median {np.median(us):.1f} us, "
            f"p90 {np.percentile(us, 90):.1f} us")


def run(args: argparse.Namespace) -> int:
    from cerebro import runtime

    data, _ = read_model_file(args.model)
    model = runtime.load(data, threads=args.threads)
    inputs = load_inputs(args.input, model.signature.inputs)
    times = []
    for _ in range(max(1, args.repeat)):
        start = time.perf_counter()
        outputs = model(*inputs)
        times.append(time.perf_counter() - start)
    out_names = [t.name for t in model.signature.outputs]
    if args.output:
        np.savez(args.output, **dict(zip(out_names, outputs)))
        print(f"wrote {args.output}")
    else:
        for name, value in zip(out_names, outputs):
            flat = np.asarray(value).ravel()
            print(f"{name}: {value.dtype}{list(value.shape)} {np.array2string(flat[:8], precision=6)}"
                  + (" ..." if flat.size > 8 else ""))
    if args.repeat > 1:
        print(latency_summary(times))
    return 0
