"""Per-node profiles: build(profile=True)'s stage table, `cerebroc profile` on a JAX function and an ONNX
model, Model.profile, and the Perfetto trace. The JAX function profiled is small_model in this very file,
so its rows must point at this file's lines."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cerebro
from cerebro.compiler import build
from cerebro.compiler.cbx.format import CbxError
from cerebro.compiler.cbx.profile_table import NOTE_TYPE, PROFILE_SECTION, NodeInfo, read_profile
from cerebro.compiler.cbx.reader import read_cbx
from cerebro.compiler.cbx.tree import add_note
from cerebro.frontends.onnx import import_onnx
from cerebro.profiling import Profile

W = np.linspace(-1, 1, 8 * 16, dtype=np.float32).reshape(8, 16)


def small_model(x):
    h = x @ W
    h = jnp.tanh(h)  # fused into the matmul with the scale and shift: its row names all three lines
    return jax.nn.softmax(h * 2.0 + 1.0)


def _line_of(text: str) -> int:
    """The line of this file where small_model has text."""
    lines, first = inspect.getsourcelines(small_model)
    return first + next(i for i, line in enumerate(lines) if text in line)


def cli(capsys, *args: object) -> tuple[int, str, str]:
    from cerebro.cli import main

    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def table_rows(out: str) -> list[tuple[int, float, str, str]]:
    """(node, median us, op, where) of each row that `cerebroc profile` printed."""
    found = re.findall(r"^\s*(\d+)\s+([\d.]+)\s+[\d.]+%\s+(\S+)\s+(.+)$", out, re.M)
    return [(int(node), float(us), op, where) for node, us, op, where in found]


def onnx_model() -> bytes:
    """MatMul 'project' -> Relu 'activate' -> Softmax 'normalise' on a (2, 8) input."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("MatMul", ["x", "w"], ["p"], name="project"),
             helper.make_node("Relu", ["p"], ["r"], name="activate"),
             helper.make_node("Softmax", ["r"], ["y"], name="normalise", axis=-1)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 16])],
                              [numpy_helper.from_array(W, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def check_trace(path, nodes: int, repeats: int) -> None:
    """Valid trace-event JSON on one track: per run a 'call' slice, then each node's slice back to back
    inside it (in integer nanoseconds, as Perfetto reads microsecond floats)."""
    trace = json.loads(Path(path).read_text())
    slices = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert {(e["pid"], e["tid"]) for e in trace["traceEvents"]} == {(1, 1)}
    assert len(slices) == repeats * (nodes + 1)
    ns = [(int(e["ts"] * 1000), int(e["dur"] * 1000)) for e in slices]
    assert all(dur >= 0 for _, dur in ns)
    for run in range(repeats):
        call, *inner = range(run * (nodes + 1), (run + 1) * (nodes + 1))
        assert slices[call]["name"] == f"call {run}"
        assert [slices[k]["args"]["node"] for k in inner] == list(range(nodes))
        start, took = ns[call]
        assert ns[inner[0]][0] == start and sum(ns[k][1] for k in inner) == took
        assert all(ns[a][0] + ns[a][1] == ns[b][0] for a, b in zip(inner, inner[1:]))


def test_cli_profiles_a_jax_function_with_its_source_lines(capsys, tmp_path):
    status, out, err = cli(capsys, "profile", f"{__file__}:small_model", "--arg", "4x8:f32", "--repeats", "7",
                           "--trace", tmp_path / "trace.json", "--save", tmp_path / "small.cbx")
    assert status == 0, err
    rows = table_rows(out)
    assert [op for _, _, op, _ in rows if op.startswith("matmul")] == ["matmul+[tanh,mul,add]"]
    where = {op.split("[")[0]: place for _, _, op, place in rows}
    assert where["matmul+"] == (f"test_profile.py:{_line_of('@ W')} (in small_model), "
                                f"test_profile.py:{_line_of('tanh')} (in small_model) (+1 more)")
    assert where["row_kernel"] == f"test_profile.py:{_line_of('softmax')} (in small_model)"
    medians = [us for _, us, _, _ in rows]
    assert medians == sorted(medians, reverse=True) and "small_model: 2 nodes" in out
    check_trace(tmp_path / "trace.json", nodes=2, repeats=7)

    x = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    status, again, err = cli(capsys, "profile", tmp_path / "small.cbx", "--input", tmp_path / "x.npy",
                             "--repeats", "3", "--top", "1")
    assert status == 0, err
    assert len(table_rows(again)) == 1 and "1 faster nodes not shown" in again

    model = cerebro.load(tmp_path / "small.cbx")  # the saved build keeps the function's convention too
    np.testing.assert_allclose(model(x), small_model(x), rtol=1e-5, atol=1e-6)
    profile = model.profile(x, repeats=4)
    assert [node.index for node in profile.nodes] == [0, 1] and profile.repeats == 4
    assert str(profile).splitlines()[0].startswith("small_model: 2 nodes")


def test_cli_profiles_an_onnx_model_by_node_name(capsys, tmp_path):
    (tmp_path / "tiny.onnx").write_bytes(onnx_model())
    status, out, err = cli(capsys, "profile", tmp_path / "tiny.onnx", "--repeats", "5", "--all",
                           "--trace", tmp_path / "trace.json")
    assert status == 0, err
    rows = table_rows(out)
    matmul = next(place for _, _, op, place in rows if op == "matmul+[max]")
    assert matmul == "node 'project' (MatMul), node 'activate' (Relu)"  # the fused Relu keeps its name
    assert any("node 'normalise' (Softmax)" in place for _, _, _, place in rows)
    check_trace(tmp_path / "trace.json", nodes=len(rows), repeats=5)


def test_trace_slices_meet_in_whole_nanoseconds(tmp_path):
    """1001 ns is 1.001 us, which times 1000 truncates to 1000 ns: the trace must not make a node end
    before it starts the next (Perfetto would see overlapping slices)."""
    table = [[NodeInfo("matmul", "matmul+[max]", "2x8 8x16 -> 2x16", ("a.py:1",), 512)],
             [NodeInfo("row_kernel", "row_kernel[exp]", "2x16 -> 2x16", ("a.py:2",), 64)]]
    times = np.arange(1001, 1001 + 2 * 2 * 40, 2, dtype=np.uint64).reshape(40, 2)
    profile = Profile("odd", table, times)
    profile.write_trace(tmp_path / "trace.json")
    check_trace(tmp_path / "trace.json", nodes=2, repeats=40)
    assert [node.where for node in profile.slowest()] == [("a.py:2",), ("a.py:1",)]


def test_names_from_the_file_cannot_drive_the_terminal():
    table = [[NodeInfo("add", "add\x1b[2J", "2 -> 2", ("node '\x1b]0;owned\x07' (Add)",), 2)]]
    text = Profile("m", table, np.ones((3, 1), np.uint64)).table()
    assert "\x1b" not in text and "\x07" not in text and "add\\x1b[2J" in text


@pytest.fixture(scope="module")
def plain() -> bytes:
    """The ONNX model built as usual, without the profile table."""
    return build(import_onnx(onnx_model()))


def test_a_file_not_built_for_profiling_is_refused_in_one_line(capsys, tmp_path, plain):
    (tmp_path / "plain.cbx").write_bytes(plain)
    status, _, err = cli(capsys, "profile", tmp_path / "plain.cbx")
    assert status == 1 and "not built for profiling" in err and len(err.strip().splitlines()) == 1
    status, _, err = cli(capsys, "profile", tmp_path / "plain.cbx", "--save", tmp_path / "out.cbx")
    assert status == 1 and "--save keeps the profiling build of a source" in err
    with pytest.raises(ValueError, match="not built for profiling"):
        cerebro.load(plain).profile(np.zeros((2, 8), np.float32))


GOOD_NODE = {"op": "matmul", "label": "matmul", "shapes": "2x8 8x16 -> 2x16", "where": [], "flops": 512}


@pytest.mark.parametrize(("payload", "kind", "message"), [
    (b"{", NOTE_TYPE, "not JSON"),
    (json.dumps({"format": "cerebro.profile/0", "stages": []}).encode(), NOTE_TYPE, "not a cerebro.profile/1 table"),
    (json.dumps({"format": "cerebro.profile/1", "stages": "[]"}).encode(), NOTE_TYPE, "not a cerebro.profile/1"),
    (json.dumps({"format": "cerebro.profile/1", "stages": [[GOOD_NODE]] * 99}).encode(), NOTE_TYPE,
     "99 stages, the model has"),
    (b'{"format": "cerebro.profile/1", "stages": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}", NOTE_TYPE, "not JSON"),
    (b"{}", 1, "not a Cerebro profile note"),
])
def test_a_malformed_table_is_refused_at_load(plain, payload, kind, message):
    with pytest.raises(CbxError, match=message):
        cerebro.load(add_note(plain, PROFILE_SECTION, payload, kind))


@pytest.mark.parametrize("change", [{"flops": True}, {"flops": -1}, {"where": [3]}, {"label": None}, {"extra": 1},
                                    {"shapes": ["2x8"]}])
def test_a_malformed_node_entry_is_refused(plain, change):
    meta = read_cbx(plain).meta
    last = meta.num_stages - 1
    table = {"format": "cerebro.profile/1", "stages": [[GOOD_NODE]] * last + [[{**GOOD_NODE, **change}]]}
    with pytest.raises(CbxError, match=f"stage {last} has a malformed node"):
        read_profile(add_note(plain, PROFILE_SECTION, json.dumps(table).encode(), NOTE_TYPE), meta)
