#!/usr/bin/env bash
# The whole test suite: installs what it needs, lints, then runs pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k conv).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -p no:cacheprovider --timeout=900 "$@"
