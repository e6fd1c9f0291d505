"""Every code block in README.md and docs/*.md runs as written, or says why not and is still checked.

A fenced block's label decides (RULES): `python` and `sh` blocks run, each on its own in a fresh temp
dir holding the input files it names (FIXTURES: small stand-ins made here; `cerebroc` and `python`
are this venv's); `c` blocks compile against the runtime headers;
`text` is not code (diagrams, listings, output). A block that cannot run here (a real kernel, root,
minutes of work) carries a marker on the line before it, `<!-- not-run: REASON -->`, and is still
checked: Python must parse, shell must parse, and every `cerebroc` command in it must be accepted by
cerebroc's own argument parser.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(\S.*?)\s*-->")
RULES = {"python": "runs", "sh": "runs", "c": "compiles against runtime_kmod/include", "text": "not code"}
RUNNABLE = {"python", "sh"}


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # of the opening fence, 1-based
    label: str
    text: str
    not_run: str | None  # the marker's reason

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"


def read_blocks(doc: Path) -> list[Block]:
    """The fenced blocks of @doc, with the not-run marker (if any) on the nearest non-blank line above."""
    lines, blocks, start = doc.read_text().splitlines(), [], None
    for i, line in enumerate(lines):
        if not line.lstrip().startswith("```"):
            continue
        if start is None:
            start = i
            continue
        above = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = NOT_RUN.fullmatch(above.strip())
        text = textwrap.dedent("\n".join(lines[start + 1 : i])) + "\n"
        blocks.append(Block(doc, start + 1, lines[start].strip()[3:].strip(), text, marker and marker.group(1)))
        start = None
    assert start is None, f"{doc}:{start + 1}: unclosed code fence"
    return blocks


BLOCKS = [block for doc in DOCS for block in read_blocks(doc)]
RUN = [b for b in BLOCKS if b.label in RUNNABLE and not b.not_run]
CHECKED = [b for b in BLOCKS if b.label in RUNNABLE and b.not_run]


# ---- input files a block may name, made small ----

MODEL_PY = """
import jax, jax.numpy as jnp

W = jnp.linspace(-1, 1, 7840, dtype=jnp.float32).reshape(784, 10)


def predict(x):
    return jax.nn.softmax(x @ W)
"""


def write_onnx(path: Path, inputs: list[str]) -> None:
    """int64 token-id inputs of symbolic shape (batch, sequence) -> their float product, as BERT-style inputs."""
    from onnx import TensorProto, helper, save

    dims = ["batch", "sequence"]
    nodes = [helper.make_node("Cast", [name], [f"{name}_f"], to=TensorProto.FLOAT) for name in inputs]
    product = f"{inputs[0]}_f"
    for name in inputs[1:]:
        nodes.append(helper.make_node("Mul", [product, f"{name}_f"], [f"{product}_{name}"]))
        product = f"{product}_{name}"
    nodes.append(helper.make_node("Identity", [product], ["embeddings"]))
    graph = helper.make_graph(nodes, "tokens", [helper.make_tensor_value_info(n, TensorProto.INT64, dims)
                                                 for n in inputs],
                              [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, dims)])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def hello_deb(path: Path) -> None:
    sys.path.insert(0, str(REPO / "tests" / "loaders"))
    from loader_support import download_debs

    shutil.copy(download_debs("hello")["hello"], path)


def hello_exe(path: Path) -> None:
    sys.path.insert(0, str(REPO / "tests" / "loaders"))
    from loader_support import need

    need("x86_64-w64-mingw32-gcc")
    source = path.with_suffix(".c")
    source.write_text('#include <stdio.h>\nint main(int argc, char **argv) { printf("hello %s\\n", argv[1]); }\n')
    subprocess.run(["x86_64-w64-mingw32-gcc", "-O1", "-o", str(path), str(source)], check=True)
    source.unlink()


FIXTURES = {
    "model.py": lambda path: path.write_text(MODEL_PY),
    "x.npy": lambda path: np.save(path, np.linspace(0, 1, 784, dtype=np.float32).reshape(1, 784)),
    "bert.onnx": lambda path: write_onnx(path, ["input_ids", "attention_mask"]),
    "model.onnx": lambda path: write_onnx(path, ["input_ids"]),
    "hello.deb": hello_deb,
    "hello.exe": hello_exe,
}


def named(name: str, text: str) -> bool:
    return re.search(rf"(?<![\w./-]){re.escape(name)}(?![\w-])", text) is not None


def prepare(block: Block, work: Path) -> None:
    for name, make in FIXTURES.items():
        if named(name, block.text):
            make(work / name)


# ---- the tests ----


def test_every_block_has_a_rule_and_markers_give_reasons():
    unknown = [f"{b.id} ```{b.label}" for b in BLOCKS if b.label not in RULES]
    assert not unknown, f"label each code block with one of {sorted(RULES)} ({RULES}): {unknown}"
    stray = [b.id for b in BLOCKS if b.not_run and b.label not in RUNNABLE]
    assert not stray, f"not-run markers belong before python or sh blocks only: {stray}"
    for doc in DOCS:  # a marker not directly above a block (a typo, a moved block) would silently run nothing
        markers = len(NOT_RUN.findall(doc.read_text()))
        assert markers == sum(1 for b in BLOCKS if b.doc == doc and b.not_run), f"{doc}: a stray not-run marker"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("block", RUN, ids=[b.id for b in RUN])
def test_block_runs_as_written(block, tmp_path):
    prepare(block, tmp_path)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "CEREBRO_CACHE": str(tmp_path / ".cache")}
    env.pop("PYTHONPATH", None)
    if block.label == "python":
        (tmp_path / "block.py").write_text(block.text)
        cmd = [sys.executable, "block.py"]
    else:
        cmd = ["bash", "-euo", "pipefail", "-c", block.text]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, f"{block.id} failed:\n{block.text}\n{result.stdout[-2000:]}{result.stderr[-3000:]}"


@pytest.mark.parametrize("block", CHECKED, ids=[b.id for b in CHECKED])
def test_not_run_block_still_parses(block):
    if block.label == "python":
        ast.parse(block.text, filename=block.id)
        return
    syntax = subprocess.run(["bash", "-n", "-c", block.text], capture_output=True, text=True)
    assert syntax.returncode == 0, f"{block.id}: {syntax.stderr}"
    from cerebro.cli import build_parser

    for line in block.text.splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["cerebroc"]:
            try:
                build_parser().parse_args(words[1:])
            except SystemExit:
                pytest.fail(f"{block.id}: cerebroc rejects `{line.strip()}`")


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.label == "c"],
                         ids=[b.id for b in BLOCKS if b.label == "c"])
def test_c_block_compiles_against_the_runtime_headers(block, tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    (tmp_path / "block.c").write_text(block.text)
    include = REPO / "runtime_kmod" / "include"
    result = subprocess.run(["gcc", "-fsyntax-only", "-std=gnu11", "-Wall", "-Werror", f"-I{include}", "-include",
                             "stdint.h", "-include", "cerebro/abi.h", str(tmp_path / "block.c")],
                            capture_output=True, text=True)
    assert result.returncode == 0, f"{block.id}:\n{result.stderr}"
