"""cerebroc compile's progress rows and --timings (issue #12 item 4): shown on a terminal once a compile
has taken about a second, printed per phase with --timings, silent when not a terminal or with -q."""

from __future__ import annotations

import io
import time

import pytest
from onnx import TensorProto, helper

from cerebro.commands import compile_progress
from cerebro.commands.compile_progress import CompileDisplay
from cerebro.compiler import build
from cerebro.compiler.progress import phase, reporting
from cerebro.frontends.onnx import import_onnx

# the phases compiler/driver.py marks, in order
BUILD_PHASES = ["verify", "fold constants", "optimise", "stages and memory plan", "lower to LLVM IR",
                "LLVM optimise", "LLVM machine code", "write .cbx"]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def relu_model():
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture
def onnx_file(tmp_path):
    import onnx

    onnx.save(relu_model(), tmp_path / "relu.onnx")
    return tmp_path / "relu.onnx"


def compile_with(display: CompileDisplay) -> None:
    with display, reporting(display):
        build(import_onnx(relu_model()))


def test_a_terminal_sees_every_phase(monkeypatch):
    monkeypatch.setattr(compile_progress, "SHOW_AFTER_S", 0.0)
    monkeypatch.delenv("CEREBRO_PROGRESS", raising=False)
    terminal = FakeTerminal()
    display = CompileDisplay(show=True, stream=terminal)
    compile_with(display)
    shown = terminal.getvalue()
    for name in BUILD_PHASES:
        assert name in shown, (name, shown)
    assert list(display.seconds) == BUILD_PHASES


def test_rows_wait_about_a_second(monkeypatch):
    monkeypatch.delenv("CEREBRO_PROGRESS", raising=False)
    fast = FakeTerminal()
    display = CompileDisplay(show=True, stream=fast)
    with display, reporting(display), phase("a quick phase"):
        pass
    assert fast.getvalue() == "" and "a quick phase" in display.seconds
    slow = FakeTerminal()
    display = CompileDisplay(show=True, stream=slow)
    with display, reporting(display), phase("a slow phase"):
        time.sleep(compile_progress.SHOW_AFTER_S + 0.3)
    assert "a slow phase" in slow.getvalue()


@pytest.mark.parametrize("show, stream, mode", [(True, io.StringIO(), "auto"), (False, FakeTerminal(), "always"),
                                                (True, FakeTerminal(), "never")])
def test_silent_off_a_terminal_when_quiet_or_disabled(monkeypatch, show, stream, mode):
    monkeypatch.setattr(compile_progress, "SHOW_AFTER_S", 0.0)
    monkeypatch.setenv("CEREBRO_PROGRESS", mode)
    display = CompileDisplay(show=show, stream=stream)
    compile_with(display)
    assert stream.getvalue() == ""
    assert list(display.seconds) == BUILD_PHASES  # timed all the same, for --timings


def test_cli_timings_and_quiet(capsys, monkeypatch, onnx_file):
    from cerebro.cli import main

    monkeypatch.setenv("CEREBRO_PROGRESS", "always")
    assert main(["compile", str(onnx_file), "-o", str(onnx_file.with_suffix(".cbx")), "-q", "--timings"]) == 0
    assert capsys.readouterr() == ("", "")
    monkeypatch.delenv("CEREBRO_PROGRESS")
    assert main(["compile", str(onnx_file), "-o", str(onnx_file.with_suffix(".cbx")), "--timings"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("wrote ")
    lines = err.splitlines()
    assert lines[0] == "timings:"
    assert [line.rsplit(None, 2)[0].strip() for line in lines[1:]] == ["import", *BUILD_PHASES, "write file", "total"]
    assert all(line.endswith(" s") for line in lines[1:])
