"""docs/coverage.md: every JAX primitive and ONNX op with its status, read from the frontends' rule tables.

    python -m cerebro.frontends.coverage          # rewrite docs/coverage.md (in a source checkout)
    python -m cerebro.frontends.coverage --check  # exit 1 if it is stale

A primitive or op is supported when a rule handles it, "supported with limits" when its rule
module declares a note for it in LIMITS (a dict next to RULES: name -> what is not covered),
unsupported otherwise. JAX's primitives are those with a lowering rule in JAX's own registry (what
jax.jit can compile for CPU); ONNX's ops are the default domain's non-deprecated schemas at the
newest opset the installed onnx knows.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import pkgutil
import sys
from dataclasses import dataclass
from pathlib import Path

SUPPORTED, LIMITED, UNSUPPORTED = "supported", "supported with limits", "unsupported"
DOC = Path(__file__).resolve().parent.parent / "docs" / "coverage.md"
REGENERATE = "python -m cerebro.frontends.coverage"
# Modules that define JAX's primitives; importing them fills its lowering registry the same way every time.
JAX_MODULES = ("jax", "jax.numpy", "jax.lax", "jax.random", "jax.nn", "jax.scipy.special", "jax.scipy.linalg")


@dataclass(frozen=True)
class Entry:
    name: str
    status: str
    note: str = ""


def _limits(package: str, prefix: str = "") -> dict[str, str]:
    """The LIMITS dicts of every module in package whose name starts with prefix."""
    found: dict[str, str] = {}
    root = importlib.import_module(package)
    for info in pkgutil.iter_modules(root.__path__):
        if info.name.startswith(prefix):
            found.update(getattr(importlib.import_module(f"{package}.{info.name}"), "LIMITS", {}))
    return found


def _status(name: str, handled: bool, limits: dict[str, str], otherwise: str = "") -> Entry:
    if not handled:
        return Entry(name, UNSUPPORTED, otherwise)
    return Entry(name, LIMITED, limits[name]) if name in limits else Entry(name, SUPPORTED)


def jax_primitives() -> list[str]:
    """Names of the primitives JAX can lower for CPU (its platform-independent and CPU lowering rules)."""
    for module in JAX_MODULES:
        importlib.import_module(module)
    from jax._src.interpreters import mlir

    registered = list(mlir._lowerings) + list(mlir._platform_specific_lowerings.get("cpu", {}))
    return sorted({p.name for p in registered})


def jax_entries() -> list[Entry]:
    from cerebro.frontends.jax import tracer

    limits = _limits("cerebro.frontends.jax", "rules_")
    inlined = set(tracer._CALLS)
    names = jax_primitives()  # rules for names JAX no longer defines (older versions' primitives) are left out
    return [Entry(n, SUPPORTED, "inlined") if n in inlined
            else _status(n, n in tracer.RULES, limits) for n in names]


def onnx_opset() -> int:
    import onnx

    return onnx.defs.onnx_opset_version()


def _function_body_ops(schema: object, opset: int) -> set[str] | None:
    """The default-domain op types of the schema's plain function body; None for a context-dependent
    one (its body depends on the node's input types)."""
    import onnx

    versions = [v for v in schema.function_opset_versions if v <= opset]
    if not versions:
        return None
    body = onnx.FunctionProto()
    body.ParseFromString(schema.get_function_with_opset_version(max(versions)))
    return {n.op_type for n in body.node if n.domain in ("", "ai.onnx")}


def onnx_entries() -> list[Entry]:
    """Default-domain ops: a rule for the opset, else the schema's function body (imported in place,
    so supported when every op in it is)."""
    import onnx

    from cerebro.frontends.onnx import importer, table

    opset = onnx_opset()
    limits = _limits("cerebro.frontends.onnx.rules")
    schemas = {s.name: s for s in onnx.defs.get_all_schemas()  # each op's newest schema, all at or below opset
               if s.domain in ("", "ai.onnx") and not s.deprecated}

    def entry(name: str, seen: frozenset = frozenset()) -> Entry:
        schema = schemas.get(name)
        if table.lookup(name, opset) is not None:
            return _status(name, True, limits)
        if name in importer.NONDETERMINISTIC:
            return Entry(name, UNSUPPORTED, "random (a compiled model is deterministic)")
        if schema is None or not (schema.has_function or schema.has_context_dependent_function):
            return Entry(name, UNSUPPORTED)
        body = _function_body_ops(schema, opset)
        if body is None:
            return Entry(name, LIMITED, "imported as its ONNX function body, built for the node's input types")
        missing = sorted(op for op in body - seen - {name} if entry(op, seen | {name}).status == UNSUPPORTED)
        if missing:
            return Entry(name, UNSUPPORTED, f"its ONNX function body uses {', '.join(missing)}")
        return Entry(name, SUPPORTED, "imported as its ONNX function body")

    return [entry(name) for name in sorted(schemas)]


ML = "ai.onnx.ml"


def onnx_ml_opset() -> int:
    import onnx

    return max(s.since_version for s in onnx.defs.get_all_schemas() if s.domain == ML)


def onnx_ml_entries() -> list[Entry]:
    """ai.onnx.ml ops (classical ML), deprecated ones too: exports at older opsets of the domain use them."""
    import onnx

    from cerebro.frontends.onnx import table

    prefix = table.rule_key("", ML)
    limits = {k.removeprefix(prefix): v for k, v in _limits("cerebro.frontends.onnx.rules").items()
              if k.startswith(prefix)}
    names = sorted({s.name for s in onnx.defs.get_all_schemas() if s.domain == ML})
    return [_status(n, table.lookup(n, onnx_ml_opset(), ML) is not None, limits) for n in names]


def _table(entries: list[Entry], kind: str) -> list[str]:
    counts = {s: sum(e.status == s for e in entries) for s in (SUPPORTED, LIMITED, UNSUPPORTED)}
    lines = [", ".join(f"{n} {s}" for s, n in counts.items()) + f" (of {len(entries)}).", "",
             f"| {kind} | status | notes |", "|---|---|---|"]
    lines += [f"| `{e.name}` | {e.status} | {e.note.replace('|', '/')} |" for e in entries]
    return lines


def render() -> str:
    import jax
    import onnx

    lines = ["# Frontend coverage", "",
             f"Generated by `{REGENERATE}` from the frontends' rule tables (RULES, and the LIMITS notes next",
             "to them); tests/test_coverage_table.py fails when this file is stale. An unsupported primitive or op",
             "fails to compile with an error naming it and where it came from.", "",
             f"## JAX primitives (jax {jax.__version__})", "",
             "Every primitive JAX can lower for CPU. `inlined`: a call whose body is lowered in place.", "",
             *_table(jax_entries(), "primitive"), "",
             f"## ONNX ops (default domain, opset {onnx_opset()}, onnx {onnx.__version__})", "",
             "Every non-deprecated op. An op without a rule whose schema defines a function body is imported",
             "as that body, which compiles when the body's ops do.", "",
             *_table(onnx_entries(), "op"), "",
             f"## ONNX ops (ai.onnx.ml, opset {onnx_ml_opset()})", "",
             "Every op of the classical-ML domain, deprecated ones included.", "",
             *_table(onnx_ml_entries(), "op"), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/coverage.md is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        old = DOC.read_text() if DOC.exists() else ""
        if old != text:
            changed = [line for line in difflib.unified_diff(old.splitlines(), text.splitlines(), lineterm="", n=0)
                       if line[:1] in "+-" and line[:3] not in ("+++", "---")]
            print(f"{DOC} is stale: regenerate it with `{REGENERATE}`", *changed[:20], sep="\n", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
