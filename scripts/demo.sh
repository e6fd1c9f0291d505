#!/usr/bin/env bash
# The main job: install what is needed, compile a real Flax model with Cerebro,
# run it in the user-space runtime and show that it matches JAX.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python examples/demo.py
