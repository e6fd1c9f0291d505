"""Explicit padding: a padded dense conv with few input channels reads a padded copy of its input.

The conv tile (codegen/conv.py) checks every row's window against the input's bounds at every
kernel position and reads padding from a row of zeros; over a ci loop of Cin/groups steps that
costs little when Cin/groups is large, but a stem conv (Cin 3) spends most of its time on it. A
`pad` node writing zeros around the input once, and the conv reading that copy with no padding,
drops the checks: measured on AVX2 (one thread, the pad's copy included) 1.45x on ResNet's 7x7/2
stem (Cin 3), 1.1x on 3x3 convs with Cin 16-32, 1.0-1.08x at 64, none at 256; so only convs with
Cin below MAX_CHANNELS. Re-measured at commit 850c165's conv tile (one pinned CPU, CPU time per call
at load ~10, interleaved, the pad included; 3x3/1 convs at ResNet/SqueezeNet/DenseNet shapes, batch 1
and 8): Cin 16 1.10-1.16x, Cin 32-64 0.99-1.04x, Cin 128 0.96-1.02x, so the limit stays (neutral from 32
on; the pad of ResNet's 1x56x56x64 is ~0.5% of its conv). Grouped and depthwise convs are left alone: the
copy moves every group's channels for little work per group (RegNet's group-width-8 3x3 convs: 1.0-1.2x
slower, depthwise 1.3-1.5x), as are convs with input dilation or negative padding (cropping). The copy is
as exact as the checks. Strided convs keep the same limit: ResNet18's 3x3/2 conv at 1x56x56x64 -> 128 ran
0.97x the time with the padding in its tile (batch 8 0.96x; Zen 4, one pinned core, the pad counted), but
that tile took 0.134 CPU s of LLVM against 0.079 for the unpadded one (its column runs: 3 kernel-row loops,
not 9 positions) and 0.013 for the pad, so the copy stays for compile time.
"""

from __future__ import annotations

from cerebro.compiler.ir import Graph, Node, make_node

MAX_CHANNELS = 128  # Cin from which the checks cost nothing next to the ci loop


def _wants_padding(node: Node) -> bool:
    padding = node.attrs["padding"]
    return (any(lo or hi for lo, hi in padding) and all(lo >= 0 and hi >= 0 for lo, hi in padding)
            and all(d == 1 for d in node.attrs.get("lhs_dilation") or ())
            and node.attrs.get("groups", 1) == 1 and node.inputs[0].shape[-1] < MAX_CHANNELS)


def pad_conv_inputs(graph: Graph) -> Graph:
    """Give each qualifying conv a pad node before it and no padding of its own, in place; returns graph."""
    nodes = []
    for node in graph.nodes:
        if node.op == "conv" and _wants_padding(node):
            x, padding = node.inputs[0], node.attrs["padding"]
            lo, hi = (0, *(p[0] for p in padding), 0), (0, *(p[1] for p in padding), 0)
            pad = make_node("pad", [x], node.loc, lo=lo, hi=hi, value=0)
            nodes.append(pad)
            node.inputs[0] = pad.outputs[0]
            node.attrs["padding"] = tuple((0, 0) for _ in padding)
        nodes.append(node)
    graph.nodes = nodes
    return graph
