"""A Flax CNN quantized through the CLI (issue 17, "a Keras/Flax CNN ... run quantized through the CLI"):
`cerebroc compile cnn.py:predict --quantize int8 --calibration FILE.npz`, `cerebroc inspect` listing the
integer convs and dense layer, and the .cbx against the f32 model in JAX on inputs it was not calibrated on.

Tolerances (measured: max error 0.7% of the logit range, 98.5% top-1): int8 activations (u8 per tensor)
and per-channel i8 weights keep each logit within 2% of the logit range; top-1 agreement with the f32
model >= 97% of 200 inputs (the benchmark's classifiers reach 99% on 1000, benchmarks.int8); both fail if
a conv's requantization is off by a bit shift or a scale is taken from the wrong tensor.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import jax
import numpy as np

import cerebro

MODEL = textwrap.dedent("""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp


    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(8, (3, 3))(x))
            x = nn.relu(nn.Conv(16, (3, 3), strides=(2, 2))(x))
            x = nn.relu(nn.Conv(32, (3, 3), strides=(2, 2))(x))
            return nn.Dense(10)(x.reshape(x.shape[0], -1))


    PARAMS = Net().init(jax.random.PRNGKey(17), jnp.zeros((1, 16, 16, 1)))


    def predict(x):
        return Net().apply(PARAMS, x)
""")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cerebro.cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_flax_cnn_int8_through_the_cli(tmp_path, monkeypatch) -> None:
    (tmp_path / "cnn.py").write_text(MODEL)
    rng = np.random.default_rng(1717)
    np.savez(tmp_path / "calibration.npz", rng.standard_normal((32, 1, 16, 16, 1)).astype(np.float32))
    out = tmp_path / "cnn.cbx"
    done = cli("compile", f"{tmp_path / 'cnn.py'}:predict", "--arg", "1x16x16x1:f32", "--quantize", "int8",
               "--calibration", str(tmp_path / "calibration.npz"), "-o", str(out), "-q")
    assert done.returncode == 0, done.stderr
    shown = cli("inspect", str(out)).stdout
    # the 1-channel first conv stays float (fewer than 4 input channels); the others and the dense are int8
    assert "int8:      1 matmul_integer node(s), 2 conv_integer node(s); float: 0 matmul, 1 conv" in shown, shown
    monkeypatch.syspath_prepend(str(tmp_path))
    import cnn  # the same module the CLI traced: the f32 reference

    model, reference = cerebro.load(out.read_bytes()), jax.jit(cnn.predict)
    xs = rng.standard_normal((200, 1, 16, 16, 1)).astype(np.float32)
    got = np.stack([np.asarray(model(x)) for x in xs])
    want = np.stack([np.asarray(reference(x)) for x in xs])
    spread = float(want.max() - want.min())
    assert np.abs(got - want).max() < 0.02 * spread, (np.abs(got - want).max(), spread)
    assert (got.argmax(-1) == want.argmax(-1)).mean() >= 0.97
