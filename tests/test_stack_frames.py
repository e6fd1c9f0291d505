"""Generated code runs inside cerebro.ko on the calling task's 16 KiB kernel stack: every function's frame stays
within llvm_types.STACK_FRAME_BYTES. An int8 product with wide columns and long K (a MiniLM FFN layer's shape
class) used to keep band rows x all columns of i32 sums and tile rows x all of K of widened a on the stack
(55 KiB frames); it now works in column spans and K passes that fit, with the same bits as numpy's int32
product. compiler/stack_check.py proves the frames on the object and `cerebroc kmod build` refuses a model
whose frame is over the budget, naming the function."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from llvmlite import binding as llvm

from cerebro import kmod, runtime
from cerebro.compiler import driver, fpu_check, stack_check
from cerebro.compiler.codegen import llvm_types
from cerebro.compiler.codegen.llvm_types import STACK_FRAME_BYTES, StackBudgetError, stack_array
from cerebro.compiler.ir import DType, Graph, Value
from cerebro.compiler.ir.int8_layouts import pair_layout
from cerebro.compiler.targets import resolve_target
from cerebro.elf import EM_AARCH64, EM_X86_64

# 7 rows: a row tail; K = 1030: passes of a's widened rows and a short last one; N = 1101: spans of the stack
# band, a tail span, a short vector and a single-column dot block at the end
ROWS, DEPTH, COLUMNS = 7, 1030, 1101
SHIFT = 12  # the i8 output's requantization: clip(sum >> SHIFT)
RNG = np.random.default_rng(1907)


def _product(form: str, output: str) -> tuple[Graph, list[np.ndarray], np.ndarray]:
    """A u8 x i8 matmul_integer (pairs_b or the dot form) whose epilogue writes f32 (the sums wait in the output)
    or i8 (in a stack band), with its inputs and numpy's expected result."""
    a = RNG.integers(0, 256, (ROWS, DEPTH)).astype(np.uint8)
    a_zero = RNG.integers(0, 256, ROWS).astype(np.uint8)
    w = RNG.integers(-128, 128, (COLUMNS, DEPTH)).astype(np.int8)
    w_zero = np.zeros(COLUMNS, np.int8) if form == "pairs" else RNG.integers(-5, 6, COLUMNS).astype(np.int8)
    g = Graph(f"wide_{form}_{output}")
    weights = Value((COLUMNS, DEPTH), DType.i8, data=pair_layout(w.T) if form == "pairs" else w)
    sums = g.add1("matmul_integer", g.add_input(a.shape, DType.u8, "a"), weights,
                  g.add_input(a_zero.shape, DType.u8, "a_zero"), g.const(w_zero), transpose_b=True,
                  pairs_b=form == "pairs")
    want = ((a.astype(np.int64) - a_zero[:, None]) @ (w.astype(np.int64) - w_zero[:, None]).T).astype(np.int32)
    if output == "f32":
        scale = RNG.uniform(0.5, 2, (1, COLUMNS)).astype(np.float32)
        out = g.add1("mul", g.add1("convert", sums, dtype=DType.f32), g.const(scale))
        want = want.astype(np.float32) * scale
    else:
        shifted = g.add1("shift_right_arithmetic", sums, g.const(np.full((1, 1), SHIFT, np.int32)))
        clamped = g.add1("min", g.add1("max", shifted, g.const(np.full((1, 1), -128, np.int32))),
                         g.const(np.full((1, 1), 127, np.int32)))
        out = g.add1("convert", clamped, dtype=DType.i8)
        want = np.clip(want >> SHIFT, -128, 127).astype(np.int8)
    g.set_outputs([out])
    return g, [a, a_zero], want


CASES = [("pairs", "f32"), ("pairs", "i8"), ("dot", "f32"), ("dot", "i8")]


@pytest.mark.parametrize("form,output", CASES)
def test_wide_int8_product_fits_the_kernel_stack_and_is_exact(form: str, output: str) -> None:
    graph, inputs, want = _product(form, output)
    lowered = driver.lower(graph)[0]
    (product,) = [n for n in lowered.nodes if n.op == "matmul_integer"]
    assert "epilogue" in product.attrs and product.outputs[0].dtype.name == output
    data = driver.build(graph)
    frames = stack_check.frame_sizes(data, resolve_target("host").machine)
    assert max(frames.values()) <= STACK_FRAME_BYTES, frames
    (got,) = runtime.load(data)(*inputs)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("target", ["aarch64", "x86_64-v4"])
def test_wide_int8_products_fit_other_targets(target: str) -> None:
    """The tile and band sizes differ per target (AVX-512: 6 x 64 columns, NEON: 8 rows): their frames too."""
    for form, output in CASES[:2] + CASES[3:]:
        data = driver.build(_product(form, output)[0], target)
        stack_check.check_frames(data, resolve_target(target).machine, f"{form} {output} on {target}")


def _object(target: str, text: str) -> bytes:
    module = llvm.parse_assembly(text + """
declare void @llvm.memset.p0.i64(ptr, i8, i64, i1)
attributes #0 = { noinline nounwind }
""")
    module.verify()
    return resolve_target(target).target_machine().emit_object(module)


def _function(name: str, array_bytes: int | str, calls: str = "") -> str:
    """IR of a function `name` that keeps array_bytes on its stack (cleared by memset, one of the runtime's
    imports; "%n": as many as its argument says, at run time), then runs the IR `calls`."""
    return f"""
define void @{name}(i64 %n) #0 {{
  %array = alloca i8, i64 {array_bytes}, align 16
  call void @llvm.memset.p0.i64(ptr %array, i8 0, i64 {array_bytes}, i1 true)
  {calls}
  ret void
}}
"""


def _frame_object(target: str, array_bytes: int | str) -> bytes:
    """An object whose function `deep` keeps array_bytes on its stack."""
    return _object(target, _function("deep", array_bytes))


DISASSEMBLY = [("x86_64", EM_X86_64, "llvm-objdump"), ("x86_64", EM_X86_64, "objdump"),
               ("aarch64", EM_AARCH64, "llvm-objdump"), ("aarch64", EM_AARCH64, "aarch64-linux-gnu-objdump")]


@pytest.mark.parametrize("target,machine,tool", DISASSEMBLY)
def test_check_refuses_an_over_budget_frame(target: str, machine: int, tool: str, monkeypatch) -> None:
    """Both objdumps' syntax: a frame is measured, one over the budget or sized at run time refused."""
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")
    monkeypatch.setitem(fpu_check.DISASSEMBLERS, machine, (tool,))
    assert stack_check.frame_sizes(_frame_object(target, 2000), machine)["deep"] in range(2000, 2100)
    stack_check.check_frames(_frame_object(target, STACK_FRAME_BYTES - 200), machine, "model")
    with pytest.raises(stack_check.StackCheckError, match=r"^model: function deep has a 8\d\d\d-byte stack frame, "
                                                          rf"over the {STACK_FRAME_BYTES}-byte budget"):
        stack_check.check_frames(_frame_object(target, 8000), machine, "model")
    with pytest.raises(stack_check.StackCheckError, match="^model: function deep sizes its stack frame at run time"):
        stack_check.check_frames(_frame_object(target, "%n"), machine, "model")


# Each frame ~2.9 KiB, under STACK_FRAME_BYTES; together on the chain outer -> hop -> middle -> leaf -> memset
# (hop tail-calls middle: a jump, not a call) ~9 KiB, over STACK_CHAIN_BYTES.
CHAIN = (_function("leaf", 2900) + _function("middle", 2900, "call void @leaf(i64 %n)")
         + "define void @hop(i64 %n) #0 {\n  tail call void @middle(i64 %n)\n  ret void\n}\n"
         + _function("outer", 2900, "call void @hop(i64 %n)"))
UNBOUNDED = {  # IR, and the start of the one-line refusal after "model: "
    "recursion": ("define void @ping(i64 %n) #0 {\n  call void @pong(i64 %n)\n  store volatile i64 %n, ptr null\n"
                  "  ret void\n}\n" + _function("pong", 64, "call void @ping(i64 %n)"),
                  r"functions recurse \(ping -> pong -> ping\): the stack depth cannot be bounded"),
    "indirect": ("define void @via(ptr %f) #0 {\n  call void %f()\n  store volatile i8 0, ptr null\n  ret void\n}\n",
                 r"function via branches through a register or memory \('\S+ \S+'\), whose stack use cannot"),
    "external": ("declare void @use(ptr)\n" + _function("calls_out", 64, "call void @use(ptr %array)"),
                 r"function calls_out calls use, whose stack use cannot be bounded"),
}


@pytest.mark.parametrize("target,machine,tool", DISASSEMBLY)
def test_check_refuses_a_call_chain_over_budget(target: str, machine: int, tool: str, monkeypatch) -> None:
    """Every function under STACK_FRAME_BYTES, their chain over STACK_CHAIN_BYTES: refused, naming the chain
    (a tail call and an import's frame counted); the same chain within the budget passes."""
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")
    monkeypatch.setitem(fpu_check.DISASSEMBLERS, machine, (tool,))
    data = _object(target, CHAIN)
    frames = stack_check.frame_sizes(data, machine)
    assert max(frames.values()) < STACK_FRAME_BYTES and sum(frames.values()) > stack_check.STACK_CHAIN_BYTES
    chain = r"outer -> hop -> middle -> leaf -> memset"
    with pytest.raises(stack_check.StackCheckError, match=rf"^model: call chain {chain} uses (\d+) bytes of stack, "
                                                          rf"over the {stack_check.STACK_CHAIN_BYTES}-byte budget"):
        stack_check.check_frames(data, machine, "model")
    monkeypatch.setattr(stack_check, "STACK_CHAIN_BYTES", 1 << 14)
    want = frames["outer"] + frames["hop"] + frames["middle"] + frames["leaf"] + stack_check.IMPORT_FRAME_BYTES
    assert stack_check.check_frames(data, machine, "model") == (want, chain.split(" -> "))


@pytest.mark.parametrize("case", UNBOUNDED)
@pytest.mark.parametrize("target,machine,tool", DISASSEMBLY)
def test_check_refuses_a_chain_it_cannot_bound(case: str, target: str, machine: int, tool: str, monkeypatch) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")
    monkeypatch.setitem(fpu_check.DISASSEMBLERS, machine, (tool,))
    text, refusal = UNBOUNDED[case]
    with pytest.raises(stack_check.StackCheckError, match=f"^model: {refusal}"):
        stack_check.check_frames(_object(target, text), machine, "model")


LISTING = """
0000000000000000 <f>:
       0:      \tjne\t0x40 <g>
       6:      \tje\t0x10 <f+0x10>
       c:      \tcallq\t0x11 <f+0x11>
\t\t000000000000000d:  R_X86_64_PLT32\tmemset-0x4
      11:      \tcallq\t0x18 <f+0x18>
      18:      \tjmp\t0x1d <f+0x1d>
\t\t0000000000000019:  R_X86_64_PLT32\t__x86_return_thunk-0x4
0000000000000040 <g>:
      40:      \tretq
"""


def test_call_graph_of_a_listing() -> None:
    """A conditional jump to another function is a (tail) call, a jump within the function is not, a call
    within it is recursion; a relocation names its target over the placeholder objdump prints."""
    listing = fpu_check.instructions(LISTING)
    calls = stack_check.calls_in([i for i in listing if i.offset != "11"], EM_X86_64, "model")
    assert calls == {"f": {"g", "memset"}, "g": set()}
    with pytest.raises(stack_check.StackCheckError, match=r"^model: functions recurse \(f -> f\)"):
        stack_check.deepest_chain({"f": 8, "g": 8}, stack_check.calls_in(listing, EM_X86_64, "model"), "model")


ARGUMENTS = """
0000000000000000 <h>:
       0:      \tpushq\t%rbp
       1:      \tmovq\t%rsp, %rbp
       4:      \tsubq\t$64, %rsp
       8:      \tmovl\t$1, %eax
       d:      \tpushq\t%rax
       e:      \tpushq\t%rax
       f:      \tcallq\t0x40 <g>
      14:      \tjmp\t0x30 <h+0x30>
      16:      \tcallq\t0x40 <g>
      1b:      \taddq\t$64, %rsp
      1f:      \tpopq\t%rbp
      20:      \tretq
      21:      \tpushq\t%rax
      22:      \tcallq\t0x40 <g>
      27:      \taddq\t$8, %rsp
      30:      \taddq\t$16, %rsp
      34:      \tretq
0000000000000040 <g>:
      40:      \tretq
"""


def test_call_arguments_are_not_frame() -> None:
    """The stack arguments pushed for a call and released by the add right after it (or at the jump's target
    right after it) count once, as the largest call's: 8 return address + 8 rbp + 64 + 16 of arguments. An add
    after a call with nothing pushed since the last branch is an epilogue, not a release."""
    assert stack_check.frame_sizes_in(fpu_check.instructions(ARGUMENTS), EM_X86_64) == {"h": 96, "g": 8}


@pytest.mark.parametrize("tool", ["llvm-objdump", "objdump"])
def test_many_calls_with_stack_arguments_fit(tool: str, monkeypatch) -> None:
    """300 calls of 4 stack arguments each were counted as a 9.6 KiB frame (densenet121's entry: 557 pushes,
    5 KiB); the frame is 48 bytes."""
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")
    monkeypatch.setitem(fpu_check.DISASSEMBLERS, EM_X86_64, (tool,))
    params, args = ", ".join(f"i64 %a{i}" for i in range(10)), ", ".join(["i64 %n"] * 10)
    calls = f"  call void @take({args})\n" * 300
    data = _object("x86_64", f"define void @take({params}) #0 {{\n  ret void\n}}\n"
                             f"define void @many(i64 %n) #0 {{\n{calls}  ret void\n}}\n")
    assert stack_check.frame_sizes(data, EM_X86_64)["many"] < 64
    stack_check.check_frames(data, EM_X86_64, "model")


def test_max_pool_frame_is_static() -> None:
    """A 3x3/2 max pool's scratch was allocated after the entry block's row-range arithmetic; a pass split the
    block and LLVM moved the stack pointer at run time (every CNN stem: DenseNet121, ResNet refused)."""
    x = np.zeros((1, 56, 56, 64), np.float32)
    graph = Graph("pool")
    pooled = graph.add1("reduce_window", graph.add_input(x.shape, DType.f32, "x"), kind="max",
                        window=(1, 3, 3, 1), strides=(1, 2, 2, 1), padding=((0, 0), (1, 1), (1, 1), (0, 0)))
    graph.set_outputs([pooled])
    stack_check.check_frames(driver.build(graph, "x86_64"), EM_X86_64, "max pool")


def _fpu_none_model(path: Path) -> Path:
    graph = Graph("int_add")
    x = graph.add_input((4, 16), DType.i32, "x")
    graph.set_outputs([graph.add1("add", x, graph.const(np.arange(16, dtype=np.int32).reshape(1, 16)))])
    path.write_bytes(driver.build(graph, "x86_64-gpr"))
    return path


def test_kmod_build_disassembles_a_model_once(tmp_path, monkeypatch) -> None:
    """An fpu "none" model's FP/SIMD and stack checks read one disassembly (they ran objdump once each)."""
    runs = []
    real = fpu_check.subprocess.run
    monkeypatch.setattr(fpu_check.subprocess, "run", lambda cmd, **kw: runs.append(cmd) or real(cmd, **kw))
    path = _fpu_none_model(tmp_path / "int.cbx")
    assert kmod.read_cbx(path).fpu == "none"
    runs.clear()
    with pytest.raises(kmod.KmodError, match="0.0.0-no-such-kernel"):  # after the checks, before any build
        kmod.build_modules([path], tmp_path / "out", "0.0.0-no-such-kernel")
    assert len(runs) == 1, runs


def test_kmod_build_refuses_the_model(tmp_path, monkeypatch) -> None:
    """`cerebroc kmod build`'s check (before any build) names the .cbx, the function and its frame, or the
    chain: cerebro_entry and a stage."""
    path = tmp_path / "wide.cbx"
    path.write_bytes(driver.build(_product("dot", "i8")[0]))
    kmod.check_code(path, kmod.read_cbx(path))
    monkeypatch.setattr(stack_check, "STACK_CHAIN_BYTES", 256)
    with pytest.raises(kmod.KmodError, match=rf"^{path}: call chain cerebro_entry -> \w+ uses \d+ bytes of stack, "
                                             "over the 256-byte budget"):
        kmod.check_code(path, kmod.read_cbx(path))
    monkeypatch.setattr(llvm_types, "STACK_FRAME_BYTES", 64)
    with pytest.raises(kmod.KmodError, match=rf"^{path}: function \w+ has a \d+-byte stack frame, over the 64-byte"):
        kmod.check_code(path, kmod.read_cbx(path))


def test_stack_array_keeps_the_budget() -> None:
    """An emitter asking one function for more than STACK_ARRAY_BYTES of arrays is a code generator bug."""
    from llvmlite import ir

    fn = ir.Function(ir.Module(), ir.FunctionType(ir.VoidType(), []), "kernel")
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    stack_array(builder, ir.IntType(32), llvm_types.STACK_ARRAY_BYTES // 8, "half")
    with pytest.raises(StackBudgetError, match="kernel: stack array 'more' of 2052 bytes brings its arrays to 4100"):
        stack_array(builder, ir.IntType(32), llvm_types.STACK_ARRAY_BYTES // 8 + 1, "more")
    builder.branch(later := fn.append_basic_block("later"))
    builder.position_at_end(later)
    late = stack_array(builder, ir.IntType(8), 1, "late")
    assert late.parent is fn.entry_basic_block and builder.block is later


def test_every_emitter_takes_stack_through_stack_array() -> None:
    """A raw builder.alloca escapes the budget (and, outside the entry block, sizes the frame at run time)."""
    codegen = Path(llvm_types.__file__).parent
    raw = [path.name for path in codegen.glob("*.py")
           if path.name != "llvm_types.py" and ".alloca(" in path.read_text()]
    assert raw == []
