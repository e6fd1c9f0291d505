"""LLVM's optimisation of a big module on two cores: a worker process optimises half of the node
functions while this process optimises the rest, then the worker's half is linked back in.

Node functions never inline into one another (module.py keeps them out of line), so each half
optimises as it would in the whole module; the worker's functions are external while apart (nothing
in their half calls them) and internal again once linked, so the object exports what it did. The
optimised code keeps its floating-point semantics (no fast-math), so results are bit-identical.
Machine code stays one emit_object on the linked module: the .cbx writer takes one object.
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import llvmlite.binding as llvm

if TYPE_CHECKING:  # the worker runs this file alone: importing cerebro would cost more than it saves
    from cerebro.compiler.targets import Target

# Below this much IR text a second process costs more than it saves (its start is ~0.3 s).
MIN_SPLIT_BYTES = 1_500_000
_DEFINE = re.compile(r'^define (internal )?(.*?@"([^"]+)"\(.*\)[^{]*)\{?$')
_PARAM_NAME = re.compile(r' %"[^"]*"|%"[^"]*"')


@dataclass
class Function:
    """One `define ... { ... }` block of the module text."""

    name: str
    internal: bool
    text: str
    declaration: str


@dataclass
class Split:
    """The module text as lines outside any function (globals, declarations, attributes) and functions."""

    header: list[str]
    functions: list[Function]


def split_text(text: str) -> Split:
    header: list[str] = []
    functions: list[Function] = []
    lines = text.splitlines()
    at = 0
    while at < len(lines):
        match = _DEFINE.match(lines[at])
        if match is None:
            header.append(lines[at])
            at += 1
            continue
        end = lines.index("}", at)
        signature = match.group(2).rstrip()
        declaration = "declare " + _PARAM_NAME.sub("", signature.rsplit(")", 1)[0]) + ")"
        functions.append(Function(match.group(3), bool(match.group(1)), "\n".join(lines[at:end + 1]), declaration))
        at = end + 1
    return Split(header, functions)


def worker_share(split: Split) -> set[str]:
    """Node functions (the model's kernels) worth about half of all function text, biggest first. One
    that calls node functions (a loop's, codegen/loop_op.py, calls its body's) stays here: apart from
    its callees, this half would drop them as unused internal functions."""
    total = sum(len(f.text) for f in split.functions)
    taken: set[str] = set()
    size = 0
    movable = (f for f in split.functions if f.internal and f.name.startswith("node") and '@"node' not in
               f.text.split("\n", 1)[-1])
    for function in sorted(movable, key=lambda f: -len(f.text)):
        if size + len(function.text) <= total // 2:
            taken.add(function.name)
            size += len(function.text)
    return taken


def part_text(split: Split, names: set[str], defines_globals: bool) -> str:
    """The module with only `names` defined (external, so nothing deletes them), every other function
    declared; without defines_globals, the globals of external linkage are declared too (the other
    part defines them)."""
    lines = [line if defines_globals else _declared_global(line) for line in split.header]
    for function in split.functions:
        if function.name in names:
            lines.append(function.text.replace("define internal ", "define ", 1) if not defines_globals
                         else function.text)
        else:
            lines.append(function.declaration)
    return "\n".join(lines) + "\n"


_GLOBAL = re.compile(r'^(@"[^"]+") = (?!internal|private)(?:\w+ )*?(global|constant) (\[[^\]]*\]|\S+)')


def _declared_global(line: str) -> str:
    match = _GLOBAL.match(line)
    return f"{match.group(1)} = external hidden {match.group(2)} {match.group(3)}" if match else line


def worth_splitting(text: str) -> bool:
    return len(text) >= MIN_SPLIT_BYTES and len(os.sched_getaffinity(0)) >= 2


def run_o3(module: llvm.ModuleRef, tm: llvm.TargetMachine, triple: str) -> None:
    """The O3 pipeline (new pass manager) with loop and SLP vectorisation, for tm's target."""
    module.triple = triple
    module.data_layout = str(tm.target_data)
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(module, pb)


def optimise_in_parts(text: str, target: Target, tm: llvm.TargetMachine) -> llvm.ModuleRef:
    """The module optimised as `run_o3` would, half of its node functions in a worker process (a new
    interpreter running this file: no fork under the caller's threads, no re-import of its script)."""
    split = split_text(text)
    theirs = worker_share(split)
    ours = {f.name for f in split.functions} - theirs
    worker = subprocess.Popen([sys.executable, "-I", __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    payload = pickle.dumps((part_text(split, theirs, False), target.triple, target.cpu, target.features))
    answer: list[tuple[bytes, bytes]] = []
    talk = threading.Thread(target=lambda: answer.append(worker.communicate(payload)))
    talk.start()
    module = llvm.parse_assembly(part_text(split, ours, True))
    module.verify()
    run_o3(module, tm, target.triple)
    talk.join()
    bitcode, errors = answer[0]
    if worker.returncode != 0:
        detail = errors.decode(errors="replace")[-2000:]
        raise RuntimeError(f"LLVM worker process failed ({worker.returncode}): {detail}")
    module.link_in(llvm.parse_bitcode(bitcode))
    for name in theirs:
        module.get_function(name).linkage = llvm.Linkage.internal
    return module


def _worker() -> None:
    """stdin: pickled (module text, triple, cpu, features); stdout: the parsed, verified, optimised
    module's bitcode. The target machine as Target.target_machine makes it (targets.py)."""
    text, triple, cpu, features = pickle.load(sys.stdin.buffer)
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    tm = llvm.Target.from_triple(triple).create_target_machine(cpu=cpu, features=features, opt=3, reloc="pic",
                                                               codemodel="small")
    module = llvm.parse_assembly(text)
    module.verify()
    run_o3(module, tm, triple)
    sys.stdout.buffer.write(module.as_bitcode())


if __name__ == "__main__":
    _worker()
