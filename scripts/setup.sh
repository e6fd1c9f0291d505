#!/usr/bin/env bash
# Installs everything Cerebro and its tests need: Debian packages (when root),
# a virtual environment at .venv with the pinned Python packages, and the
# project itself in editable mode (which builds the C runtime extension).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

missing_debs() {
    local pkg
    for pkg in $(grep -v '^#' scripts/apt-packages.txt); do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || echo "$pkg"
    done
}

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    debs=$(missing_debs)
    if [ -n "$debs" ]; then
        log "installing Debian packages: $(echo $debs | tr '\n' ' ')"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $debs
    fi
else
    log "not root: skipping Debian packages (tests that need them say so)"
fi

# pip on these machines warns about local index folders that do not exist; keep the output readable.
pip_quiet() {
    .venv/bin/pip "$@" 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
    return "${PIPESTATUS[0]}"
}

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
    log "creating .venv with $($PY --version)"
    "$PY" -m venv .venv
fi
stamp=.venv/.cerebro-deps
want=$(cat scripts/requirements-test.txt pyproject.toml setup.py | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing Python packages (first time: several minutes)"
    pip_quiet install -q --upgrade pip setuptools wheel
    pip_quiet install -q -r scripts/requirements-test.txt
    echo "$want" > "$stamp"
fi
log "building and installing cerebro (editable)"
pip_quiet install -q --no-deps --no-build-isolation -e .
log "ready: $(.venv/bin/python -c 'import cerebro, sys; print("cerebro on Python", sys.version.split()[0])')"
