#!/usr/bin/env bash
# `make lock`: refresh the hashed lock files from pyproject.toml, against PyPI itself.
#
#   requirements-dev.lock  runtime + otel + local + dev extras: what `make setup` installs
#   requirements.lock      runtime + otel: what the Docker image installs
#
# Both are made with pip-tools (pip-compile --generate-hashes: every file of each pinned release,
# so the locks install on any platform PyPI has wheels for), for CPython 3.11 (the image's and
# CI's). Existing pins are kept unless a changed requirement forces a new one; `make lock-upgrade`
# (LOCK_UPGRADE=1) moves every package to its newest allowed version. requirements.lock is compiled
# from a copy of requirements-dev.lock, so a package has the same version in both.
# This machine's pip configuration (extra indexes, find-links) is ignored: the locks must resolve
# the same on a fresh machine with plain pip.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=${LOCK_TOOLS_VENV:-.lock-tools}
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
unset PIP_FIND_LINKS PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_CONSTRAINT || true
INDEX=https://pypi.org/simple

if [ ! -x "$TOOLS/bin/pip-compile" ]; then
    python3 -m venv "$TOOLS"
    # pip-tools 7.5 uses pip internals that pip >= 25.3 changed: pin both.
    "$TOOLS/bin/pip" install --quiet --index-url "$INDEX" "pip==25.1.1" "pip-tools==7.5.3"
fi

common=(--quiet --generate-hashes --strip-extras --unsafe-package encore --index-url "$INDEX"
        --no-emit-index-url --no-emit-trusted-host)
upgrade=()
if [ "${LOCK_UPGRADE:-0}" = 1 ]; then
    upgrade=(--upgrade)
fi

echo "locking requirements-dev.lock (runtime + otel + local + dev) ..."
"$TOOLS/bin/pip-compile" "${common[@]}" "${upgrade[@]}" --extra dev --extra otel --extra local \
    --output-file requirements-dev.lock pyproject.toml
echo "locking requirements.lock (runtime + otel: the image) ..."
cp requirements-dev.lock requirements.lock
"$TOOLS/bin/pip-compile" "${common[@]}" --extra otel --output-file requirements.lock pyproject.toml
python3 scripts/check_lock.py
