#!/usr/bin/env bash
# Creates (idempotently) the separate virtual environment for the RecBole 1.2.1 peer at
# benchmarks/.venv-recbole and prints its python path (the last line of stdout).
#
# RecBole 1.2.1 needs NumPy 1 (it and ray 2.6.3 use np.bool8 / np.float_ ...), pandas < 3
# (pandas 3 silently breaks its missing-value filling) and setuptools < 82 (ray imports
# pkg_resources), so it cannot share the main environment (numpy 2). torch is pinned to
# the same CPU build as the main environment and installed first so that no requirement
# pulls another torch build.
#
# Usage: bash benchmarks/peers/recbole_env.sh      (PYTHON=python3.11 to pick the base)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$(cd "$here/.." && pwd)/.venv-recbole"
py="$venv/bin/python"
base="${PYTHON:-python3}"

ready() {
    [ -x "$py" ] && "$py" - <<'PY' >/dev/null 2>&1
import importlib.metadata as md
import numpy, pandas
assert md.version("recbole") == "1.2.1"
assert md.version("torch").split("+")[0] == "2.13.0"
assert int(numpy.__version__.split(".")[0]) < 2
assert int(pandas.__version__.split(".")[0]) < 3
from recbole.model.general_recommender import MultiVAE  # noqa: F401
PY
}

if ! ready; then
    [ -x "$py" ] || nice "$base" -m venv "$venv" >&2
    pip_() { nice "$py" -m pip install --quiet "$@" >&2; }
    pip_ --upgrade pip "setuptools<82" wheel
    pip_ "torch==2.13.0"
    pip_ "recbole==1.2.1" "torch==2.13.0" "numpy<2" "pandas<3" "setuptools<82"
    if ! ready; then
        echo "recbole_env.sh: the environment at $venv is incomplete after install" >&2
        exit 1
    fi
fi
echo "$py"
