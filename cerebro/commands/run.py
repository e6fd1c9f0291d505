"""cerebroc run: execute a .cbx in the user-space runtime on .npy inputs."""

from __future__ import annotations

import argparse
import time

import numpy as np


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run a .cbx on .npy inputs",
        description="Run a .cbx in the user-space runtime. Inputs are .npy files in signature order, "
        "or NAME=FILE.npy. Without --output, prints each output's shape and leading values.",
    )
    p.add_argument("model", help="the .cbx file")
    p.add_argument("--input", "-i", action="append", default=[], metavar="[NAME=]FILE.npy")
    p.add_argument("--output", "-o", default=None, metavar="OUT.npz", help="save outputs by name")
    p.add_argument("--repeat", type=int, default=1, help="run N times and report the median latency")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="split each call across N threads (the file must be compiled with parallel support)")
    p.set_defaults(run=run)


def order_inputs(specs: list[str], names: list[str]) -> list[np.ndarray]:
    """Positional or NAME=FILE inputs, in the model's signature order."""
    positional, named = [], {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if sep and not name.endswith(".npy"):
            if name not in names:
                raise ValueError(f"--input {spec!r}: the model has no input {name!r} (inputs: {', '.join(names)})")
            named[name] = np.load(path, allow_pickle=False)
        else:
            positional.append(np.load(spec, allow_pickle=False))
    if named and positional:
        raise ValueError("give inputs either all by position or all as NAME=FILE.npy")
    if named:
        missing = [n for n in names if n not in named]
        if missing:
            raise ValueError(f"missing inputs: {', '.join(missing)}")
        return [named[n] for n in names]
    if len(positional) != len(names):
        raise ValueError(f"the model takes {len(names)} inputs ({', '.join(names)}), got {len(positional)}")
    return positional


def run(args: argparse.Namespace) -> int:
    from cerebro import runtime

    model = runtime.load(args.model, threads=args.threads)
    names = [t.name for t in model.signature.inputs]
    inputs = order_inputs(args.input, names)
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
        print(f"median latency over {args.repeat} runs: {np.median(times) * 1e6:.1f} us")
    return 0
