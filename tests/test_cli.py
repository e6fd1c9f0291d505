"""cerebroc compile / run / inspect end to end, and its error behaviour."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest


def cerebroc(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cerebro.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "model.py").write_text(textwrap.dedent("""
        import jax, jax.numpy as jnp
        W = jnp.arange(12.0, dtype=jnp.float32).reshape(3, 4) / 10

        def predict(x, y):
            return jax.nn.softmax(jnp.tanh(x @ W) + y)
    """))
    result = cerebroc("compile", tmp / "model.py:predict", "--arg", "2x3:float32", "--arg", "2x4:float32",
                      "-o", tmp / "m.cbx")
    assert result.returncode == 0, result.stderr
    return tmp


def reference(x, y):
    w = np.arange(12.0, dtype=np.float32).reshape(3, 4) / 10
    return np.asarray(jax.nn.softmax(np.tanh(x @ w) + y))


def test_run_matches_reference(compiled):
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    y = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    np.save(compiled / "x.npy", x)
    np.save(compiled / "y.npy", y)
    result = cerebroc("run", compiled / "m.cbx", "--input", compiled / "x.npy", "--input", compiled / "y.npy",
                      "--output", compiled / "out.npz")
    assert result.returncode == 0, result.stderr
    (out,) = np.load(compiled / "out.npz").values()
    np.testing.assert_allclose(out, reference(x, y), rtol=1e-5, atol=1e-6)
    printed = cerebroc("run", compiled / "m.cbx", "-i", compiled / "x.npy", "-i", compiled / "y.npy")
    assert "float32[2, 4]" in printed.stdout


def test_compiled_function_keeps_its_calling_convention(compiled):
    """A .cbx from `cerebroc compile FILE.py:FUNC` carries the function's pytrees, as export() writes
    them: the loaded model returns the function's own result (one array, not a tuple of outputs) and
    names the function's arguments when called wrongly."""
    import cerebro
    from cerebro.compiler.cbx.tree import TreeMismatch

    x = np.ones((2, 3), np.float32)
    y = np.zeros((2, 4), np.float32)
    model = cerebro.load(compiled / "m.cbx")
    got = model(x, y)
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, reference(x, y), rtol=1e-5, atol=1e-6)
    with pytest.raises(TreeMismatch, match=r"\(x, y\)"):
        model(x)


def test_inspect_json_and_ir(compiled):
    info = json.loads(cerebroc("inspect", compiled / "m.cbx", "--json").stdout)
    assert [t["shape"] for t in info["inputs"]] == [[2, 3], [2, 4]]
    assert info["outputs"][0]["dtype"] == "float32" and len(info["hash"]) == 64 and info["parts"] == 256
    assert info["machine"] in ("x86-64", "aarch64")  # named by cerebro/elf.py's one machine table
    ir_text = cerebroc("inspect", compiled / "m.cbx", "--ir").stdout
    assert "matmul" in ir_text and "tanh" in ir_text and "model.py" in ir_text
    text = cerebroc("inspect", compiled / "m.cbx").stdout
    assert "arena" in text and "threads per call: up to 256" in text and "fpu:       simd" in text


@pytest.mark.parametrize("args, message", [
    (["compile", "nope.py:f", "--arg", "1:float32", "-o", "x.cbx"], "no such file"),
    (["compile", "{tmp}/model.py:missing", "--arg", "1:float32", "-o", "x.cbx"], "no function"),
    (["compile", "{tmp}/model.py:predict", "--arg", "2x3", "-o", "x.cbx"], "SHAPE:DTYPE"),
    (["compile", "{tmp}/model.py:predict", "--arg", "2x3:float32", "--arg", "2x4:float32", "-o", "x.cbx",
      "--target", "sparc"], "sparc"),
    (["run", "{tmp}/model.py"], "cbx"),
    (["run", "{tmp}/m.cbx", "-i", "{tmp}/x.npy"], "2 inputs"),
    (["inspect", "{tmp}/missing.cbx"], "missing.cbx"),
])
def test_errors_are_one_line_without_traceback(compiled, args, message):
    np.save(compiled / "x.npy", np.zeros((2, 3), np.float32))
    result = cerebroc(*[a.format(tmp=compiled) for a in args], cwd=compiled)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("cerebroc: error:") and len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr


def test_help_lists_commands():
    result = cerebroc("--help")
    assert result.returncode == 0
    for command in ("compile", "run", "inspect"):
        assert command in result.stdout


# ---- CLI habits (issue #12 item 3), run in process: cerebro.cli.main with captured output ----


def cli(capsys, *args: object) -> tuple[int, str, str]:
    from cerebro.cli import main

    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def int_onnx(tmp_path_factory):
    """y = x + 1 on int32 x of shape (batch, 4): a symbolic dim, and an input dtype that casts can miss."""
    import onnx
    from onnx import TensorProto, helper

    tmp = tmp_path_factory.mktemp("onnx_cli")
    graph = helper.make_graph([helper.make_node("Add", ["x", "one"], ["y"])], "inc",
                              [helper.make_tensor_value_info("x", TensorProto.INT32, ["batch", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, ["batch", 4])],
                              [helper.make_tensor("one", TensorProto.INT32, [1], [1])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp / "inc.onnx")
    return tmp


def test_unbound_dim_error_speaks_cli_syntax(capsys, int_onnx):
    status, _, err = cli(capsys, "compile", int_onnx / "inc.onnx", "-o", int_onnx / "x.cbx")
    assert status == 1
    assert "--shape x=Nx4" in err and "--shape batch=N" in err and "shapes=" not in err
    status, _, err = cli(capsys, "compile", int_onnx / "inc.onnx", "--shape", "x=2x5", "-o", int_onnx / "x.cbx")
    assert status == 1 and "--shape gives 5" in err and "shapes" not in err


def test_shape_binds_a_symbolic_dim_by_name(capsys, int_onnx):
    status, _, err = cli(capsys, "compile", int_onnx / "inc.onnx", "--shape", "batch=2", "-q", "-o", int_onnx / "b.cbx")
    assert status == 0, err
    status, out, _ = cli(capsys, "inspect", int_onnx / "b.cbx", "--json")
    assert json.loads(out)["inputs"][0]["shape"] == [2, 4]


def test_shape_options_bind_inputs_or_named_dims():
    from cerebro.commands.compile import parse_named_shapes

    onnx_inputs = frozenset({"x"})
    assert parse_named_shapes(["x=5", "batch=2", "seq=1x2"], onnx_inputs) == {"x": (5,), "batch": 2, "seq": (1, 2)}
    assert parse_named_shapes(["x=5", "batch=2"]) == {"x": (5,), "batch": (2,)}  # SavedModel: inputs only


def test_run_casts_inputs_that_fit_and_refuses_those_that_do_not(capsys, int_onnx):
    cbx = int_onnx / "b.cbx"
    if not cbx.exists():
        assert cli(capsys, "compile", int_onnx / "inc.onnx", "--shape", "batch=2", "-q", "-o", cbx)[0] == 0
    x = np.arange(8).reshape(2, 4)
    np.save(int_onnx / "x64.npy", x.astype(np.int64))
    status, out, err = cli(capsys, "run", cbx, "-i", int_onnx / "x64.npy", "-o", int_onnx / "y.npz")
    assert status == 0, err
    assert err.strip() == "cerebroc: note: input 'x': cast int64 to the model's int32"
    np.testing.assert_array_equal(np.load(int_onnx / "y.npz")["y"], x + 1)
    for name, bad in {"big": np.full((2, 4), 2**40), "fraction": np.full((2, 4), 0.5), "nan": np.full((2, 4), np.nan)
                      }.items():
        np.save(int_onnx / f"{name}.npy", bad)
        status, _, err = cli(capsys, "run", cbx, "-i", int_onnx / f"{name}.npy")
        assert status == 1 and "int32 cannot hold these" in err and len(err.splitlines()) == 1, err


def test_run_takes_npz_inputs_by_name(capsys, compiled):
    x = np.random.default_rng(2).standard_normal((2, 3))  # float64: cast to float32 with a note
    y = np.random.default_rng(3).standard_normal((2, 4)).astype(np.float32)
    np.savez(compiled / "inputs.npz", y=y, x=x)
    status, _, err = cli(capsys, "run", compiled / "m.cbx", "-i", compiled / "inputs.npz", "-o", compiled / "o.npz")
    assert status == 0, err
    assert "cast float64 to the model's float32" in err
    (out,) = np.load(compiled / "o.npz").values()
    np.testing.assert_allclose(out, reference(x.astype(np.float32), y), rtol=1e-5, atol=1e-6)
    np.savez(compiled / "extra.npz", x=x, y=y, z=y)
    status, _, err = cli(capsys, "run", compiled / "m.cbx", "-i", compiled / "extra.npz")
    assert status == 1 and "z name no input" in err


def test_run_repeat_reports_min_median_p90(capsys, compiled):
    np.save(compiled / "x.npy", np.zeros((2, 3), np.float32))
    np.save(compiled / "y.npy", np.zeros((2, 4), np.float32))
    status, out, _ = cli(capsys, "run", compiled / "m.cbx", "-i", compiled / "x.npy", "-i", compiled / "y.npy",
                         "--repeat", "5")
    assert status == 0
    assert re.search(r"latency over 5 runs: min [\d.]+ us, median [\d.]+ us, p90 [\d.]+ us", out), out


def test_short_dtype_names(capsys, compiled):
    status, _, err = cli(capsys, "compile", compiled / "model.py:predict", "--arg", "2x3:f32", "--arg", "2x4:float32",
                         "-q", "-o", compiled / "short.cbx")
    assert status == 0, err
    status, _, err = cli(capsys, "compile", compiled / "model.py:predict", "--arg", "2x3:c64", "-o", compiled / "z.cbx")
    assert status == 1 and "unknown dtype 'c64'; use one of f32, f64, i8, i16, i32, i64, u8" in err


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_run_and_inspect_give_one_message_for_a_broken_file(capsys, compiled, damage):
    data = bytearray((compiled / "m.cbx").read_bytes())
    broken = {"truncate": data[: len(data) // 2], "garbage": b"hello, not an object",
              "flip": data[:-40] + bytes([data[-40] ^ 1]) + data[-39:]}[damage]
    (compiled / "broken.cbx").write_bytes(bytes(broken))
    _, _, run_err = cli(capsys, "run", compiled / "broken.cbx", "-i", compiled / "x.npy")
    _, _, inspect_err = cli(capsys, "inspect", compiled / "broken.cbx")
    assert run_err == inspect_err and run_err.startswith(f"cerebroc: error: {compiled / 'broken.cbx'}: ")


def test_kmod_run_refuses_a_model_the_vm_cpu_cannot_run(capsys, compiled):
    """x86_64-v4 code needs AVX-512, which QEMU's TCG CPU lacks: refused before any build or boot."""
    status, _, err = cli(capsys, "compile", compiled / "model.py:predict", "--arg", "2x3:f32", "--arg", "2x4:f32",
                         "--target", "x86_64-v4", "-q", "-o", compiled / "v4.cbx")
    assert status == 0, err
    status, _, err = cli(capsys, "kmod", "run", compiled / "v4.cbx", "-i", compiled / "x.npy", "-i", compiled / "y.npy")
    assert status == 1 and len(err.splitlines()) == 1
    assert "needs CPU features avx512f" in err and "--target x86_64" in err


def test_kmod_run_refuses_another_machine_before_booting(tmp_path):
    """x86-64 and aarch64 models boot their own architecture's VM (Cortex-A72 for aarch64: no SVE)."""
    from cerebro.kmod import CbxInfo, KmodError, check_vm_cpu

    riscv = CbxInfo("00" * 32, 243, "m", [], [], "")
    with pytest.raises(KmodError, match="ELF machine 243; kernel modules are built for x86-64 and aarch64 only"):
        check_vm_cpu(tmp_path / "riscv.cbx", riscv)
    sve = CbxInfo("00" * 32, 183, "m", [], [], "+neon,+sve")
    with pytest.raises(KmodError, match="needs CPU features sve, .*cortex-a72.*--target aarch64"):
        check_vm_cpu(tmp_path / "sve.cbx", sve)
    check_vm_cpu(tmp_path / "arm.cbx", CbxInfo("00" * 32, 183, "m", [], [], "+neon,+fp-armv8"))
    check_vm_cpu(tmp_path / "v3.cbx", CbxInfo("00" * 32, 62, "m", [], [], "+sse2,+avx,+avx2,+fma"))


def test_a_failed_vm_run_names_the_guest_error():
    from cerebro.kmod import vm_failure_reason

    log = "booting\ninsmod: can't insert 'model.ko': Operation not permitted\n@@RC 1\n"
    assert vm_failure_reason(log) == "insmod: can't insert 'model.ko': Operation not permitted"
    assert vm_failure_reason("just a kernel log\n") == "no error line from insmod or cerebro-ctl"


def test_savedmodel_compile_is_quiet_and_speaks_cli_syntax(capsys, tmp_path):
    """TensorFlow's start-up lines (absl, cpu_feature_guard, grappler) stay off a compile's stderr."""
    tf = pytest.importorskip("tensorflow")
    pytest.importorskip("tf2onnx")

    class Net(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
        def __call__(self, x):
            return {"probs": tf.nn.softmax(x)}

    net = Net()
    tf.saved_model.save(net, str(tmp_path / "sm"), signatures={"serving_default": net.__call__})
    status, _, err = cli(capsys, "compile", tmp_path / "sm", "-o", tmp_path / "x.cbx")
    assert status == 1 and "bind them with --shape x=Nx8" in err and "shapes=" not in err
    result = cerebroc("compile", tmp_path / "sm", "--shape", "x=2x8", "-o", tmp_path / "sm.cbx")
    assert result.returncode == 0 and result.stderr == "", result.stderr
