"""LLVM's optimisation of the model's module in parts: each node function with the pipeline that pays
(PIPELINES), and for a big module on two cores half of the node functions in a worker process.

Node functions never inline into one another (module.py keeps them out of line), so each part
optimises as it would in the whole module. The part holding the stages, the entry and the globals
keeps its functions' linkage; in every other part, and for a function another part calls, the
functions are external while apart (so no part drops them as unused) and internal again once linked,
so the object exports what it did. The optimised code keeps its floating-point semantics (no
fast-math), so results are bit-identical whatever the level or the split. Machine code stays one
emit_object on the linked module: the .cbx writer takes one object. Where a kernel cache is on
(kernel_cache.py), each kernel is optimised alone in a module of its own (kernel_text) and its bitcode
kept, and no worker process is started.
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import threading
from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING

import llvmlite.binding as llvm

if TYPE_CHECKING:  # the worker runs this file alone: importing cerebro would cost more than it saves
    from cerebro.compiler.kernel_cache import KernelCache
    from cerebro.compiler.targets import Target

# Below this much IR text a second process costs more than it saves (its start is ~0.3 s).
MIN_SPLIT_BYTES = 1_500_000
_DEFINE = re.compile(r'^define (internal )?(.*?@"([^"]+)"\(.*\)[^{]*)\{?$')
_PARAM_NAME = re.compile(r' %"[^"]*"|%"[^"]*"')
_CALLEE = re.compile(r'@"([^"]+)"')
_HEADER_NAME = re.compile(r'^(?:@"([^"]+)" =|declare [^@]*@"([^"]+)"\()')
_ATTRIBUTE_GROUP = re.compile(r"^attributes (#\d+) ")
_GROUP_USE = re.compile(r" (#\d+)\b")
_METADATA_USE = re.compile(r"![\w.{]")
_LOCAL_CONSTANT = re.compile(r'^@"[^"]+" = (?:internal|private) (?:unnamed_addr )?constant ')
_LOCAL_VARIABLE = re.compile(r'^@"[^"]+" = (?:internal|private) (?!(?:unnamed_addr )?constant )')
KERNEL = "cerebro.kernel"  # a kernel's name while alone (the key must not hold the node's number)


@dataclass(frozen=True)
class Pipeline:
    """LLVM's default pipeline at speed_level, with or without its loop unrolling (full and partial) and its
    SLP vectoriser (the loop vectoriser is always on)."""

    speed_level: int = 3
    unroll: bool = True
    slp: bool = True


# Pipeline of node functions by op (default O3). Conv and matmul kernels are hand-tiled and vectorised: O3's
# larger unrolling gave convs no speed (ResNet18/50, MobileNetV3, the benchmark cnn at batch 64: the same
# time per call within noise, results bit-identical) and cost 40% more compile time (ResNet50 8.2 -> 5.3
# CPU s on one core); O2's unrolling is a third of what is left of their optimisation time (MobileNetV3's
# convs: 5.2 -> 3.5 CPU s; swin_t 10.2 -> 8.9 CPU s with its matmuls) for no speed either (bit-identical;
# see docs/benchmarks.md, Compile time). Winograd convs (register-tiled GEMMs between transforms written out
# as vector code) likewise: O3 fully unrolled their tile loops for 1.5x the compile time (ResNet18's eight:
# 1.36 -> 0.91 CPU s) and no speed (bit-identical). Row kernels at O2 without unrolling gained nothing on the
# benchmark transformer; other kernels keep O3 (the mlp row was 4% slower at O2 in one measurement).
# Pads, pools and transposes are written as vector code too (or as copy loops for the vectoriser); O3's
# unrolling of their loops took a third to a half of their LLVM time (the benchmark transformer's 8x8-block
# transpose 0.096 -> 0.052 CPU s, most of it machine code for the unrolled copies; the cnn's two pools
# 0.066 -> 0.032) for no speed (same bits; cnn, transformer, resnet18 per call within noise). Reductions
# likewise (vector accumulators written out, codegen/reduce.py): O3 unrolled ResNet18's global pool (49 x 8
# column blocks) for about 0.03 CPU s of its compile and no speed. None of them leaves the SLP vectoriser
# anything to do (their vector code is written out; their copy loops are the loop vectoriser's): it was 10-20%
# of their optimisation (resnet18's kernels 0.58 -> 0.47 CPU s, its 3x3/1 conv 0.124 -> 0.077) for the same
# machine code, but for the index arithmetic of a few strided convs' set-up (resnet18: one kernel of 13;
# resnet50 one of 24, where it packed a few of the unit's divisions into vector registers) at no speed.
HAND_TILED = Pipeline(2, unroll=False, slp=False)
PIPELINES = {op: HAND_TILED for op in ("conv", "matmul", "winograd_conv", "pad", "reduce_window", "transpose",
                                       "reduce_sum", "reduce_max", "reduce_min", "reduce_prod")}
_OP = re.compile(r"node\d+_(\w+?)(?:\.core\.node\d+_\1)?$")  # a SHARED_CORE's: its node function's op


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


def part_text(split: Split, names: set[str], main: bool) -> str:
    """The module with only `names` defined, every other function declared. The main part keeps the
    globals and its functions' linkage, but for a function called from outside `names`; any other
    part declares the globals of external linkage (main defines them) and makes its functions
    external, so that nothing drops them as unused."""
    called_outside = {callee for f in split.functions if f.name not in names
                      for callee in _CALLEE.findall(f.text.split("\n", 1)[-1])} if main else set()
    lines = [line if main else _declared_global(line) for line in split.header]
    for function in split.functions:
        if function.name not in names:
            lines.append(function.declaration)
        elif main and function.name not in called_outside:
            lines.append(function.text)
        else:
            lines.append(function.text.replace("define internal ", "define ", 1))
    return "\n".join(lines) + "\n"


_GLOBAL = re.compile(r'^(@"[^"]+") = (?!internal|private)(?:\w+ )*?(global|constant) (\[[^\]]*\]|\S+)')


def header_names(split: Split) -> dict[str, str]:
    """The header's globals and declarations by name."""
    named = {}
    for line in split.header:
        match = _HEADER_NAME.match(line)
        if match:
            named[match.group(1) or match.group(2)] = line
    return named


# Defined functions a kernel may call and still be optimised alone, by name prefix: out-of-line helpers
# shared by kernels (codegen/epilogue.rows_function's epilogue.*), kept out of line (noinline) and optimised
# apart from their callers in any case (in the default pipeline's part, the kernels in theirs), so a
# kernel's module declares them (kernel_text) and the main part defines them, external while apart.
SHARED_CALLEES = ("epilogue.",)
# A residual-sharing core (codegen/epilogue.share_residual, named NODE.core.NODE) is a kernel itself, noinline
# too; its callers, each node's own function (a call of it), are kernels that declare it: as callers of a
# defined function they were optimised in the main part on every warm compile (resnet18 warm 1.10 -> 1.19 s).
SHARED_CORE = ".core."


def shared_callee(name: str) -> bool:
    """Whether a kernel may call the defined function `name` (SHARED_CALLEES, a SHARED_CORE) and stay one."""
    return name.startswith(SHARED_CALLEES) or SHARED_CORE in name


def kernel_names(split: Split, named: dict[str, str]) -> set[str]:
    """Node functions that call no function the module defines (but shared callees) and use no internal
    variable (a copy in the kernel's own module would be another variable) nor metadata (kernel_text
    copies none): what kernel_text can hold alone."""
    defined = {f.name for f in split.functions if not shared_callee(f.name)}
    local = {name for name, line in named.items() if _LOCAL_VARIABLE.match(line)}
    return {f.name for f in split.functions if f.internal and f.name.startswith("node")
            and not _METADATA_USE.search(f.text)
            and (defined | local).isdisjoint(_CALLEE.findall(f.text.split("\n", 1)[-1]))}


def kernel_text(split: Split, named: dict[str, str], function: Function) -> str:
    """The module optimising `function` alone, named KERNEL and external (so it is kept): the target lines,
    and the globals, declarations and attribute groups it uses (no other model's names or sizes); its
    internal constants copied, other globals declared, the shared callees it calls declared."""
    body = function.text.replace(f'@"{function.name}"', f'@"{KERNEL}"', 1).replace("define internal ", "define ", 1)
    wanted, lines, pending = set(), [], _CALLEE.findall(body)
    shared = {f.name: f.declaration for f in split.functions if shared_callee(f.name)}
    while pending:
        name = pending.pop()
        if name in shared and name not in wanted:
            wanted.add(name)
            lines.append(shared[name])
        if name in named and name not in wanted:
            wanted.add(name)
            line = named[name]
            lines.append(line if line.startswith("declare") or _LOCAL_CONSTANT.match(line) else _declared_global(line))
            pending.extend(_CALLEE.findall(line.split("=", 1)[-1]))
    groups = set(_GROUP_USE.findall("\n".join([body.split("\n", 1)[0], *lines])))
    kept = [line for line in split.header if line.startswith("target ")
            or (_ATTRIBUTE_GROUP.match(line) and _ATTRIBUTE_GROUP.match(line).group(1) in groups)]
    return "\n".join([*kept, *sorted(lines), body]) + "\n"


def optimise_kernels(split: Split, named: dict[str, str], names: set[str], tm: llvm.TargetMachine,
                     target: Target, cache: KernelCache) -> list[llvm.ModuleRef]:
    """Each kernel of names optimised alone with its pipeline, its bitcode from the cache where it is
    there, else made and stored; each module's function renamed back to the kernel's own name."""
    by_name = {f.name: f for f in split.functions}
    modules = []
    for name in sorted(names):
        text = kernel_text(split, named, by_name[name])
        chosen = pipeline(name)
        machine = f"{target.triple}|{target.cpu}|{target.features}|{target.reloc}"
        key = cache.key(text, machine, astuple(chosen))
        bitcode = cache.get(key)
        if bitcode is None:
            made = llvm.parse_assembly(text)
            made.verify()
            run_pipeline(made, tm, target.triple, chosen)
            bitcode = made.as_bitcode()
            cache.put(key, bitcode)
        module = llvm.parse_bitcode(bitcode)  # from bitcode either way: a hit builds the same object as a miss
        module.get_function(KERNEL).name = name
        modules.append(module)
    return modules


def _declared_global(line: str) -> str:
    match = _GLOBAL.match(line)
    return f"{match.group(1)} = external hidden {match.group(2)} {match.group(3)}" if match else line


def pipeline(name: str) -> Pipeline:
    """The pipeline of function `name` (a node function's ends with its op; a SHARED_CORE's is its node's)."""
    match = _OP.search(name)
    return PIPELINES.get(match.group(1), Pipeline()) if match else Pipeline()


def run_pipeline(module: llvm.ModuleRef, tm: llvm.TargetMachine, triple: str, chosen: Pipeline) -> None:
    """LLVM's default pipeline (new pass manager) as chosen, loop vectorisation on."""
    module.triple = triple
    module.data_layout = str(tm.target_data)
    pto = llvm.create_pipeline_tuning_options(speed_level=chosen.speed_level)
    pto.loop_unrolling = chosen.unroll
    pto.loop_vectorization = True
    pto.slp_vectorization = chosen.slp
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(module, pb)


def worth_processes(text: str) -> int:
    """How many processes optimise the module: two for a big one where two CPUs are usable."""
    return 2 if len(text) >= MIN_SPLIT_BYTES and len(os.sched_getaffinity(0)) >= 2 else 1


def optimise_in_parts(text: str, target: Target, tm: llvm.TargetMachine, processes: int = 2) -> llvm.ModuleRef:
    """The module parsed, verified and optimised, each function with its pipeline; with two processes,
    half of the node functions in a worker (a new interpreter running this file: no fork under the
    caller's threads, no re-import of its script). With a kernel cache, kernels go through it instead."""
    from cerebro.compiler.kernel_cache import active

    split = split_text(text)
    cache = active()
    if cache is not None:
        named = header_names(split)
        kernels = kernel_names(split, named)
        module = optimise_parts(split, {f.name for f in split.functions} - kernels, tm, target.triple, True)
        for part in optimise_kernels(split, named, kernels, tm, target, cache):
            module.link_in(part)
        return _internal_again(module, split)
    theirs = worker_share(split) if processes > 1 else set()
    talk, answer = None, []
    if theirs:
        worker = subprocess.Popen([sys.executable, "-I", __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        payload = pickle.dumps((part_text(split, theirs, False), target.triple, target.cpu, target.features))
        talk = threading.Thread(target=lambda: answer.append(worker.communicate(payload)))
        talk.start()
    module = optimise_parts(split, {f.name for f in split.functions} - theirs, tm, target.triple, True)
    if talk is not None:
        talk.join()
        bitcode, errors = answer[0]
        if worker.returncode != 0:
            detail = errors.decode(errors="replace")[-2000:]
            raise RuntimeError(f"LLVM worker process failed ({worker.returncode}): {detail}")
        module.link_in(llvm.parse_bitcode(bitcode))
    return _internal_again(module, split)


def _internal_again(module: llvm.ModuleRef, split: Split) -> llvm.ModuleRef:
    internal = {f.name for f in split.functions if f.internal}
    for function in module.functions:  # the main part's inlined internal functions are gone
        if function.name in internal:
            function.linkage = llvm.Linkage.internal
    return module


def optimise_parts(split: Split, names: set[str], tm: llvm.TargetMachine, triple: str, main: bool
                   ) -> llvm.ModuleRef:
    """The functions `names` of split optimised with their pipelines (one module per pipeline), linked into
    one; with main, the default pipeline's part is the main one (globals, linkage kept)."""
    groups: dict[Pipeline, set[str]] = {}
    for name in names:
        groups.setdefault(pipeline(name), set()).add(name)
    modules = []
    for chosen in sorted(groups, key=lambda p: p != Pipeline()):  # the default's part first
        module = llvm.parse_assembly(part_text(split, groups[chosen], main and chosen == Pipeline()))
        module.verify()
        run_pipeline(module, tm, triple, chosen)
        modules.append(module)
    for other in modules[1:]:
        modules[0].link_in(other)
    return modules[0]


def _worker() -> None:
    """stdin: pickled (module text, triple, cpu, features); stdout: the parsed, verified, optimised
    module's bitcode. The target machine as Target.target_machine makes it (targets.py)."""
    text, triple, cpu, features = pickle.load(sys.stdin.buffer)
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    tm = llvm.Target.from_triple(triple).create_target_machine(cpu=cpu, features=features, opt=3, reloc="pic",
                                                               codemodel="small")
    split = split_text(text)
    module = optimise_parts(split, {f.name for f in split.functions}, tm, triple, False)
    sys.stdout.buffer.write(module.as_bitcode())


if __name__ == "__main__":
    _worker()
