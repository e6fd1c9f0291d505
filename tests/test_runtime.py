"""The user-space runtime: C loader + Python binding, run in-process against numpy references.

Every model here is hand-written LLVM IR (tests/cbx_fixtures.py); results are compared with
numpy exactly (tolerance 0: each op is a single IEEE f32 operation or an integer op).
"""

from __future__ import annotations

import mmap
import struct
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from cbx_fixtures import (
    AFFINE,
    COPY,
    FAILING,
    HOST_ARCH,
    MACHINES,
    OTHER_ARCH,
    STAGED,
    TWO_IO,
    Model,
    build,
    built,
    patch,
    patch_relocation_type,
    random_inputs,
    rename_symbol,
    seal,
    section,
)

from cerebro import _runtime, runtime
from cerebro.compiler.cbx import CbxError, TensorSpec
from cerebro.compiler.cbx import Meta as CbxMeta
from cerebro.compiler.cbx.format import meta_size
from cerebro.compiler.cbx.writer import ELF_LAYOUTS
from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.targets import CPU_FEATURES
from cerebro.elf import ElfFile

pytestmark = pytest.mark.skipif(HOST_ARCH == "unsupported", reason="the runtime supports x86-64 and aarch64 hosts")

MODELS = [AFFINE, TWO_IO, STAGED, COPY]


def check(model, loaded, seed=0):
    inputs = random_inputs(model, seed)
    outputs = loaded(*inputs)
    expected = model.reference(*inputs)
    assert isinstance(outputs, list) and len(outputs) == len(expected)
    for got, want in zip(outputs, expected):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
        assert got.ctypes.data % 64 == 0


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_models_match_numpy(model):
    loaded = runtime.load(built(model))
    check(model, loaded)
    check(model, loaded, seed=1)


def test_signature_and_meta_come_from_the_file(tmp_path):
    path = tmp_path / "two_io.cbx"
    path.write_bytes(built(TWO_IO))
    loaded = runtime.load(path)
    assert loaded.signature.inputs == [TensorSpec("a", (3,), DType.f32), TensorSpec("b", (3,), DType.i32)]
    assert loaded.signature.outputs == [TensorSpec("s", (3,), DType.f32), TensorSpec("d", (3,), DType.i32)]
    assert loaded.meta == CbxMeta.unpack(section_bytes(built(TWO_IO), ".cerebro.meta"))
    assert str(loaded.signature) == "(a: float32[3], b: int32[3]) -> (s: float32[3], d: int32[3])"


def section_bytes(data, name):
    sec = section(data, name)
    return data[sec.offset:sec.offset + sec.size]


def test_non_contiguous_and_unaligned_inputs_are_copied():
    loaded = runtime.load(built(AFFINE))
    wide = np.arange(16, dtype=np.float32).reshape(2, 8)
    strided = wide[:, ::2]
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(loaded(strided)[0], AFFINE.reference(strided)[0])
    unaligned = runtime.aligned_empty((36,), np.dtype(np.uint8))[4:].view(np.float32).reshape(2, 4)
    unaligned[...] = random_inputs(AFFINE)[0]
    assert unaligned.flags.c_contiguous and unaligned.ctypes.data % 64 == 4
    np.testing.assert_array_equal(loaded(unaligned)[0], AFFINE.reference(unaligned)[0])


@pytest.mark.parametrize("args, message", [
    ((), r"model 'affine' takes 1 inputs \(x\), got 0"),
    ((np.zeros((2, 4), np.float32),) * 2, r"takes 1 inputs \(x\), got 2"),
    ((np.zeros((2, 4), np.float64),), r"input 'x' \(#0\): expected float32\[2,4\], got float64\[2,4\]"),
    ((np.zeros((4, 2), np.float32),), r"input 'x' \(#0\): expected float32\[2,4\], got float32\[4,2\]"),
    ((np.zeros(8, np.float32),), r"input 'x' \(#0\): expected float32\[2,4\], got float32\[8\]"),
])
def test_bad_inputs_are_named(args, message):
    loaded = runtime.load(built(AFFINE))
    with pytest.raises(ValueError, match=message):
        loaded(*args)


def test_second_input_is_named():
    loaded = runtime.load(built(TWO_IO))
    with pytest.raises(ValueError, match=r"input 'b' \(#1\): expected int32\[3\], got int64\[3\]"):
        loaded(np.zeros(3, np.float32), np.zeros(3, np.int64))


def test_binding_checks_raw_buffers():
    loaded = runtime.load(built(AFFINE))
    x = runtime.aligned_empty((2, 4), np.dtype(np.float32))
    y = runtime.aligned_empty((2, 4), np.dtype(np.float32))
    x[...] = 1
    loaded.run_raw((x,), (y,))
    np.testing.assert_array_equal(y, AFFINE.reference(x)[0])
    with pytest.raises(ValueError, match=r"expected 1 inputs and 1 outputs, got 2 and 1"):
        loaded.run_raw((x, x), (y,))
    with pytest.raises(ValueError, match=r"input 'x' \(#0\): expected 32 bytes, got 28"):
        loaded.run_raw((x.reshape(-1)[:7],), (y,))
    raw = runtime.aligned_empty((40,), np.dtype(np.uint8))
    with pytest.raises(ValueError, match=r"input 'x' \(#0\): buffer is not 64-byte aligned"):
        loaded.run_raw((raw[4:36],), (y,))
    with pytest.raises(ValueError, match=r"output 'y' \(#0\): need a C-contiguous writable buffer"):
        loaded.run_raw((x,), (bytes(32),))
    with pytest.raises(ValueError, match=r"input 'x' \(#0\): need a C-contiguous buffer"):
        loaded.run_raw((np.zeros((4, 4), np.float32)[:, ::2],), (y,))
    with pytest.raises(TypeError, match="inputs must be a tuple"):
        loaded.run_raw(5, (y,))


def test_profile_times_every_stage_and_computes_the_outputs():
    loaded = runtime.load(built(STAGED))
    inputs = random_inputs(STAGED, 0)
    times = loaded.profile(*inputs, repeats=7)
    assert times.shape == (7, 2) and times.dtype == np.uint64 and (times > 0).all()
    for value in (0, 2_000_000):
        with pytest.raises(ValueError, match="repeats must be 1..1000000"):
            loaded.profile(*inputs, repeats=value)
    with pytest.raises(RuntimeError, match="model returned error 1 at stage 0"):
        runtime.load(build(FAILING)).profile(np.zeros(1, np.float32), repeats=3)


def test_model_error_code_is_reported():
    loaded = runtime.load(build(FAILING))
    with pytest.raises(RuntimeError, match="model returned error 1 at stage 0"):
        loaded(np.zeros(1, np.float32))


def test_concurrent_calls_from_eight_threads():
    loaded = runtime.load(built(STAGED))
    failures = []

    def worker(seed):
        for k in range(40):
            x = random_inputs(STAGED, seed * 1000 + k)[0]
            if not np.array_equal(loaded(x)[0], STAGED.reference(x)[0]):
                failures.append((seed, k))

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_weights_are_read_only_at_run_time():
    """A model that writes into .cerebro.weights must fault: the host maps it read-only."""
    writer = Model(
        name="writer", inputs=AFFINE.inputs, outputs=AFFINE.outputs, weights=AFFINE.weights,
        body="  store volatile float 1.0, ptr @cerebro_weights\n  ret i32 0")
    data = build(writer)
    script = textwrap.dedent("""
        import sys
        import numpy as np
        from cerebro import runtime
        model = runtime.load(sys.stdin.buffer.read())
        print("loaded", flush=True)
        model(np.zeros((2, 4), np.float32))
        print("wrote to read-only weights")
    """)
    result = subprocess.run([sys.executable, "-c", script], input=data, capture_output=True, timeout=60)
    assert result.stdout.decode().strip() == "loaded"
    assert result.returncode == -11, result.stderr.decode()[-2000:]


# --- malformed files: each gives its specific error from the C loader ---------------------------------


def _meta_offset(data):
    return section(data, ".cerebro.meta").offset


MALFORMED = {
    "truncated header": (lambda d: d[:40], r"truncated file: 40 bytes, an ELF header needs 64"),
    "truncated tables": (lambda d: d[:len(d) // 2], r"truncated file"),
    "ELF magic": (lambda d: b"\x7fELG" + d[4:], r"bad magic: not a .cbx file \(no ELF header\)"),
    "32-bit ELF": (lambda d: d[:4] + b"\x01" + d[5:], r"bad magic: not a 64-bit little-endian ELF file"),
    "not relocatable": (lambda d: d[:16] + struct.pack("<H", 3) + d[18:], r"not a relocatable object"),
    "meta magic": (lambda d: patch(d, _meta_offset(d), b"CBXMETX\0"), r"bad magic in .cerebro.meta"),
    "hash": (lambda d: patch(d, section(d, ".text").offset, bytes([d[section(d, ".text").offset] ^ 0x40]),
                             reseal=False), r"corrupt .cbx: content hash mismatch"),
    "relocation": (lambda d: patch_relocation_type(d, ".rela.text", 0, 42),
                   r"unknown relocation type 42 in .rela.text"),
    "import": (lambda d: rename_symbol(d, "memset", "sinf"), r"undefined symbol 'sinf' is not provided by the runtime"),
    "nbytes lie": (lambda d: patch(d, _meta_offset(d) + meta_size(0) + 136, struct.pack("<Q", 7)),
                   r"tensor 'x' claims 7 bytes but its shape and dtype need 16384"),
    "dtype": (lambda d: patch(d, _meta_offset(d) + meta_size(0) + 64, struct.pack("<I", 42)),
              r"tensor 'x' has unknown dtype code 42"),
    "meta machine": (lambda d: patch(d, _meta_offset(d) + 16, struct.pack("<I", 40)),
                     r"machine 40 disagrees with the ELF header"),
    "no stages": (lambda d: patch(d, _meta_offset(d) + 28, struct.pack("<I", 0)), r"num_stages is 0"),
    "arena": (lambda d: patch(d, _meta_offset(d) + 32, struct.pack("<Q", 2**64 - 8)),
              r"arena_size 18446744073709551608 is impossibly large"),
    "abi": (lambda d: patch(d, _meta_offset(d) + 12, struct.pack("<I", 7)), r"unsupported entry ABI version 7"),
    "meta renamed": (lambda d: rename_section(d, ".cerebro.meta", ".cerebro.mota"), r"no .cerebro.meta section"),
}


def rename_section(data, old, new):
    sec = section(data, ".shstrtab") if _has(data, ".shstrtab") else section(data, ".strtab")
    table = data[sec.offset:sec.offset + sec.size]
    return patch(data, sec.offset + table.index(old.encode() + b"\0"), new.encode(), reseal=False)


def _has(data, name):
    from cerebro.elf import ElfFile

    return ElfFile.parse(data).section(name) is not None


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_files_give_specific_errors(case):
    corrupt, message = MALFORMED[case]
    bad = corrupt(built(COPY))
    with pytest.raises(CbxError, match=message):
        runtime.load(bad)
    with pytest.raises(ValueError, match=message):
        _runtime.Model(bad)


def test_wrong_machine():
    host = {"x86_64": "x86-64", "aarch64": "aarch64"}
    with pytest.raises(CbxError, match=f"wrong machine: file is {host[OTHER_ARCH]}, host is {host[HOST_ARCH]}"):
        runtime.load(built(AFFINE, OTHER_ARCH))


@pytest.mark.skipif(HOST_ARCH != "x86_64", reason="absolute 32-bit relocations are an x86-64 kernel-model form")
def test_relocation_overflow_is_refused_not_wrapped():
    """The kernel code model uses R_X86_64_32S; a user-space mapping lies above 2 GiB, so it cannot fit."""
    data = build(AFFINE, reloc="static", codemodel="kernel")
    with pytest.raises(CbxError, match=r"relocation R_X86_64_32S against 'cerebro_weights' at .text\+0x[0-9a-f]+ "
                                       r"overflows its field"):
        runtime.load(data)


def test_every_truncation_is_refused():
    data = built(AFFINE)
    for size in range(len(data)):
        with pytest.raises(ValueError):
            _runtime.Model(data[:size])


def test_random_corruption_never_crashes_the_loader():
    """Single-byte corruptions, resealed so the checks past the hash see them; loading (not running) must be safe."""
    data = built(COPY)
    rng = np.random.default_rng(1234)
    refused = 0
    for _ in range(400):
        at = int(rng.integers(0, len(data)))
        value = bytes([int(rng.integers(0, 256))])
        bad = patch(data, at, value, reseal=False)
        try:
            bad = seal(bad)
        except ValueError:
            pass
        try:
            _runtime.Model(bad)
        except ValueError:
            refused += 1
    assert refused > 50


def test_model_type_errors():
    with pytest.raises(TypeError):
        _runtime.Model(12)
    with pytest.raises(ValueError, match="bad magic: not a .cbx file \\(no ELF header\\)"):
        _runtime.Model(b"\0" * 100)


# LLVM's names for the features the meta may record (compiler/targets.py), per host arch.
CHECKABLE = {arch: CPU_FEATURES[machine] for arch, machine in MACHINES.items()}  # cerebro/cpu_features.h


def llvm_host_features() -> set[str]:
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    found = llvm.get_host_cpu_features()
    return {name for name in CHECKABLE[HOST_ARCH] if found.get(name)}


def test_cpu_feature_detection_agrees_with_llvm():
    ours = {f.lstrip("+") for f in _runtime.cpu_features().split(",") if f}
    assert ours == llvm_host_features()


def test_models_needing_missing_cpu_features_are_refused():
    have = sorted(llvm_host_features())
    loaded = runtime.load(build(AFFINE, features=",".join("+" + f for f in have) + ",-avx512fp16"))
    check(AFFINE, loaded)
    with pytest.raises(CbxError, match=r"the model needs CPU feature 'warp-drive', which this runtime cannot check"):
        runtime.load(build(AFFINE, features="+sse2,+warp-drive"))
    lacking = [f for f in CHECKABLE[HOST_ARCH] if f not in have]
    if not lacking:
        pytest.skip("this CPU has every checkable feature (the aarch64 test covers refusal under qemu)")
    with pytest.raises(CbxError, match=f"this CPU lacks '{lacking[0]}'"):
        runtime.load(build(AFFINE, features="+" + lacking[0]))


def _unchecked(monkeypatch, model, text):
    """A .cbx the writer would refuse, finished with its checks off, to exercise the C loader's own."""
    from cbx_fixtures import compile_object, meta_for

    from cerebro.compiler.cbx import writer

    monkeypatch.setattr(writer, "check_object", lambda elf, machine: None)
    return writer.finish_object(compile_object(text, HOST_ARCH), meta_for(model, HOST_ARCH), model.weights)


def test_loader_refuses_real_calls_to_missing_functions(monkeypatch):
    from cbx_fixtures import SINF, module_text

    data = _unchecked(monkeypatch, SINF, module_text(SINF, HOST_ARCH))
    with pytest.raises(CbxError, match=r"undefined symbol 'sinf' is not provided by the runtime"):
        runtime.load(data)


def test_loader_refuses_constructors(monkeypatch):
    from cbx_fixtures import module_text

    text = module_text(AFFINE, HOST_ARCH) + (
        "define internal void @init() {\n  ret void\n}\n"
        "@llvm.global_ctors = appending global [1 x { i32, ptr, ptr }] [{ i32, ptr, ptr } { i32 65535, ptr @init, "
        "ptr null }]\n")
    with pytest.raises(CbxError, match=r"constructor/destructor section \.(init_array|ctors) is not supported"):
        runtime.load(_unchecked(monkeypatch, AFFINE, text))


def test_loader_refuses_external_data(monkeypatch):
    from cbx_fixtures import module_text

    text = module_text(AFFINE, HOST_ARCH).replace(
        "  ret i32 0", "  %g = load volatile i32, ptr @outside\n  ret i32 %g", 1) + "@outside = external global i32\n"
    with pytest.raises(CbxError, match=r"undefined symbol 'outside' is not provided by the runtime"):
        runtime.load(_unchecked(monkeypatch, AFFINE, text))


# --- the call path: the C fast path, the Python slow path and out= ------------------------------------

def aligned_copy(array: np.ndarray) -> np.ndarray:
    copy = runtime.aligned_empty(array.shape, array.dtype)
    copy[...] = array
    return copy


def out_buffers(loaded: runtime.LoadedModel, fill: int = 0x5A) -> tuple[np.ndarray, ...]:
    outs = tuple(runtime.aligned_empty(spec.shape, spec.dtype.numpy) for spec in loaded.signature.outputs)
    for out in outs:
        out.view(np.uint8)[...] = fill
    return outs


def test_out_buffers_are_written_in_place_bit_identical_to_fresh_outputs():
    loaded = runtime.load(built(TWO_IO))
    inputs = [aligned_copy(a) for a in random_inputs(TWO_IO, 3)]
    fresh = loaded(*inputs)
    outs = out_buffers(loaded)
    for given in (outs, list(outs)):
        result = loaded(*inputs, out=given)
        assert isinstance(result, list) and all(r is o for r, o in zip(result, outs, strict=True))
        assert [o.tobytes() for o in outs] == [f.tobytes() for f in fresh]
    strided = [np.repeat(a, 2)[::2] for a in inputs]  # the slow path copies them, with the same bits out
    assert [s.tobytes() for s in loaded(*strided, out=out_buffers(loaded))] == [f.tobytes() for f in fresh]


def test_fast_and_slow_paths_agree_and_fast_refuses_what_does_not_fit():
    loaded = runtime.load(built(AFFINE))
    x = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    aligned = aligned_copy(x)
    raw = runtime.aligned_empty((40,), np.dtype(np.uint8))
    unaligned = raw[4:36].view(np.float32).reshape(2, 4)
    unaligned[...] = x
    strided = np.repeat(x, 2, axis=1)[:, ::2]
    fast = loaded.fast(aligned)
    assert fast is not None and fast[0].tobytes() == AFFINE.reference(x)[0].tobytes()
    copied = loaded.fast(unaligned)  # a misaligned input is copied in C, not sent to the Python path
    assert copied is not None and copied[0].tobytes() == fast[0].tobytes()
    for other in (strided, x.astype(np.float64), x.reshape(8), x.tolist()):
        assert loaded.fast(other) is None  # nothing ran: the caller takes its own slow path
    for same in (unaligned, strided):
        assert loaded(same)[0].tobytes() == fast[0].tobytes()
    assert loaded.fast(aligned, aligned) is None
    with pytest.raises(TypeError, match="bare _runtime.Model"):
        _runtime.Model(built(AFFINE))(aligned)


def _read_only(outs, inputs):
    outs[0].flags.writeable = False
    return outs


def _unaligned(outs, inputs):
    raw = runtime.aligned_empty((16,), np.dtype(np.uint8))
    return (raw[4:16].view(np.float32), outs[1])


BAD_OUT = {
    "not a tuple": (lambda outs, inputs: outs[0], TypeError,
                    r"out= takes a tuple of 2 arrays \(one per output: s, d\)"),
    "too few": (lambda outs, inputs: outs[:1], TypeError, r"out= takes a tuple of 2 arrays"),
    "wrong dtype": (lambda outs, inputs: (outs[0], outs[0].view(np.float32).copy()), ValueError,
                    r"^out\[1\] \('d'\): expected int32\[3\], got float32\[3\]$"),
    "wrong shape": (lambda outs, inputs: (runtime.aligned_empty((4,), np.dtype(np.float32)), outs[1]), ValueError,
                    r"^out\[0\] \('s'\): expected float32\[3\], got float32\[4\]$"),
    "not an array": (lambda outs, inputs: (bytearray(12), outs[1]), ValueError,
                     r"^out\[0\] \('s'\): expected a numpy array, got bytearray$"),
    "strided": (lambda outs, inputs: (runtime.aligned_empty((6,), np.dtype(np.float32))[::2], outs[1]), ValueError,
                r"^out\[0\] \('s'\): must be C-contiguous$"),
    "read-only": (_read_only, ValueError, r"^out\[0\] \('s'\): is read-only$"),
    "unaligned": (_unaligned, ValueError, r"^out\[0\] \('s'\): data is not 64-byte aligned"),
    "aliases an input": (lambda outs, inputs: (inputs[0], outs[1]), ValueError,
                         r"^out\[0\] \('s'\): shares memory with an input or another output"),
    "aliases an output": (lambda outs, inputs: (outs[0], outs[0].view(np.int32)), ValueError,
                          r"^out\[1\] \('d'\): shares memory with an input or another output"),
}


@pytest.mark.parametrize("case", BAD_OUT, ids=list(BAD_OUT))
def test_bad_out_buffers_are_refused_with_one_line_and_nothing_is_written(case):
    make, error, message = BAD_OUT[case]
    loaded = runtime.load(built(TWO_IO))
    inputs = [aligned_copy(a) for a in random_inputs(TWO_IO, 4)]
    before = [a.copy() for a in inputs]
    outs = out_buffers(loaded)
    with pytest.raises(error, match=message) as caught:
        loaded(*inputs, out=make(outs, inputs))
    assert "\n" not in str(caught.value)
    assert all(o.view(np.uint8).tolist() == [0x5A] * o.nbytes for o in outs)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(inputs, before, strict=True))


def test_unknown_keywords_are_refused():
    loaded = runtime.load(built(AFFINE))
    with pytest.raises(TypeError, match="unexpected keyword argument 'outs'"):
        loaded(aligned_copy(np.zeros((2, 4), np.float32)), outs=None)


def test_compiled_functions_take_the_fast_path_only_for_exact_fits():
    import cerebro

    f = cerebro.compile(lambda x: (x * 2, {"y": x + 1}), cache=False)
    x = aligned_copy(np.arange(4, dtype=np.float32))
    want = (x * 2, {"y": x + 1})
    for args in ((x,), (x,), (x.astype(np.float64),), (np.repeat(x, 2)[::2],)):  # fast, then the full path
        got = f(*args)
        assert got[0].tobytes() == want[0].tobytes() and got[1]["y"].tobytes() == want[1]["y"].tobytes()
    assert len(f._cache) == 1  # float64 is float32 to JAX: no second compile
    three = aligned_copy(np.ones(3, np.float32))
    assert f(three)[0].tolist() == [2.0, 2.0, 2.0] and f(x)[0].tobytes() == want[0].tobytes()


# --- loading from a path: the file read into private memory, its weights' pages moved into the model --------

SPREAD = 4096  # floats between the 8 weights BIG_AFFINE reads: each on its own page, the section 32 pages
_BIG = np.random.default_rng(7).standard_normal(8 * SPREAD).astype(np.float32)
_BIG[::SPREAD] = np.linspace(-2.0, 3.0, 8, dtype=np.float32)
BIG_AFFINE = Model(
    name="big_affine", inputs=AFFINE.inputs, outputs=AFFINE.outputs, weights=_BIG.tobytes(),
    body=AFFINE.body.replace("ptr @cerebro_weights, i64 %i", "ptr @cerebro_weights, i64 %j").replace(
        "  %pw =", f"  %j = mul i64 %i, {SPREAD}\n  %pw =", 1),
    reference=lambda x: [x * _BIG[::SPREAD].reshape(2, 4) + np.float32(1.0)])


def _written(tmp_path, data, name="model.cbx"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_a_file_is_read_privately_and_its_weights_pages_move_into_the_model(tmp_path):
    """The runtime's own copy of the file is checked like bytes; then the weights' whole pages leave it (read as
    zeros there) for the model, which computes with them; every other byte of the copy is as read."""
    data = built(BIG_AFFINE)
    weights = section(data, ".cerebro.weights")
    with open(_written(tmp_path, data), "rb") as file:
        copy = _runtime.read_file(file.fileno())
    assert bytes(copy) == data
    loaded = runtime.LoadedModel(copy)
    check(BIG_AFFINE, loaded)
    after = bytes(copy)
    start, end = weights.offset, weights.offset + weights.size
    assert after[:start] == data[:start] and after[end:] == data[end:]
    moved = after[start:end]
    assert moved.count(0) >= len(moved) - 2 * mmap.PAGESIZE > data[start:end].count(0)  # all but partial pages
    check(BIG_AFFINE, runtime.load(_written(tmp_path, data, "again.cbx")), seed=1)


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_files_on_disk_give_the_same_errors(case, tmp_path):
    corrupt, message = MALFORMED[case]
    with pytest.raises(CbxError, match=message):
        runtime.load(_written(tmp_path, corrupt(built(COPY))))


def test_weights_corrupted_on_disk_are_refused(tmp_path):
    data = bytearray(built(BIG_AFFINE))
    weights = section(bytes(data), ".cerebro.weights")
    data[weights.offset + weights.size // 2] ^= 1
    with pytest.raises(CbxError, match="corrupt .cbx: content hash mismatch"):
        runtime.load(_written(tmp_path, bytes(data)))


def test_weights_sharing_bytes_with_other_sections_are_copied_not_moved(tmp_path):
    """A hostile file whose weights section overlaps the code and tables: moving its pages would leave holes in
    bytes the loader reads again, so it is loaded as bytes are (the same outputs from the same garbage)."""
    data = built(BIG_AFFINE)
    weights = section(data, ".cerebro.weights")
    index = [s.name for s in ElfFile.parse(data).sections].index(".cerebro.weights")
    lay = ELF_LAYOUTS[64]
    shoff = struct.unpack_from("<Q", data, lay.e_shoff)[0]
    hostile = seal(patch(data, shoff + index * lay.shdr.size + lay.sh_offset, struct.pack("<Q", 64), reseal=False))
    assert section(hostile, ".cerebro.weights").offset == 64 and weights.size < len(hostile) - 64
    x = random_inputs(BIG_AFFINE)[0]
    from_disk = runtime.load(_written(tmp_path, hostile))
    np.testing.assert_array_equal(from_disk(x)[0], runtime.load(hostile)(x)[0])


def test_random_corruption_of_files_on_disk_is_judged_as_bytes_are(tmp_path):
    """Single-byte corruptions of the big-weights model, resealed: loading from disk (weights moved) accepts and
    refuses exactly what loading the bytes does, with the same message."""
    data = built(BIG_AFFINE)
    weights = section(data, ".cerebro.weights")
    rng = np.random.default_rng(99)
    outcomes = set()
    for k in range(120):
        at = int(rng.integers(0, len(data))) if k % 4 else int(rng.integers(0, weights.offset))
        bad = patch(data, at, bytes([int(rng.integers(0, 256))]), reseal=False)
        try:
            bad = seal(bad)
        except ValueError:
            pass
        results = []
        for source in (bad, _written(tmp_path, bad)):
            try:
                runtime.load(source)
                results.append("loaded")
            except CbxError as error:
                results.append(str(error))
        assert results[0] == results[1], at
        outcomes.add(results[0] == "loaded")
    assert outcomes == {True, False}


def test_moved_weights_are_read_only_at_run_time(tmp_path):
    """The weights' pages moved into the model are mapped read-only like copied ones: a write faults."""
    writer = Model(name="big_writer", inputs=AFFINE.inputs, outputs=AFFINE.outputs, weights=_BIG.tobytes(),
                   body=f"  %p = getelementptr i8, ptr @cerebro_weights, i64 {8 * SPREAD}\n"
                        "  store volatile float 1.0, ptr %p\n  ret i32 0")
    path = _written(tmp_path, build(writer))
    script = textwrap.dedent("""
        import sys
        import numpy as np
        from cerebro import runtime
        model = runtime.load(sys.argv[1])
        print("loaded", flush=True)
        model(np.zeros((2, 4), np.float32))
        print("wrote to read-only weights")
    """)
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, timeout=60)
    assert result.stdout.decode().strip() == "loaded"
    assert result.returncode == -11, result.stderr.decode()[-2000:]


def test_a_path_that_is_not_a_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        runtime.load(tmp_path / "missing.cbx")
    with pytest.raises(IsADirectoryError):
        runtime.load(tmp_path)
