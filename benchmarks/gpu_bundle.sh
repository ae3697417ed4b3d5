#!/usr/bin/env bash
# Build .gpu-bundle/ for a GPU machine that can fetch nothing: wheels (CPython 3.12,
# manylinux x86_64, pinned by constraints.txt) of what a worker and its tests import beyond
# torch, and the generated MNIST-1D cache. Carry the folder with the working tree, then run
# benchmarks/gpu_check.sh there. Usage: bash benchmarks/gpu_bundle.sh [PYTHON_VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
PY_VERSION=${1:-3.12}
OUT=.gpu-bundle
PIP=${PIP:-.venv/bin/pip}
PYTHON=${PYTHON:-.venv/bin/python}
# What `workers`, `studies` and tests/workers import (no server, no plotting, no torch).
PACKAGES="numpy pydantic pydantic_core annotated-types typing_extensions typing-inspection
pydantic-settings python-dotenv optuna SQLAlchemy alembic Mako MarkupSafe colorlog tqdm PyYAML
packaging greenlet cmaes httpx httpcore h11 anyio idna certifi typer click rich markdown-it-py
mdurl Pygments shellingham annotated-doc pytest pluggy iniconfig pytest-timeout"

pins=()
for name in $PACKAGES; do
    pin=$(grep -i -E "^${name//[-_]/[-_]}==" constraints.txt || true)
    if [ -z "$pin" ]; then
        echo "gpu_bundle: $name is not pinned in constraints.txt; pin it there first" >&2
        exit 1
    fi
    pins+=("$pin")
done
rm -rf "$OUT/wheels" && mkdir -p "$OUT/wheels" "$OUT/cache"
"$PIP" download --quiet --no-deps --only-binary=:all: --implementation cp \
    --python-version "$PY_VERSION" --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$OUT/wheels" "${pins[@]}"
AVATUNE_CACHE_DIR="$OUT/cache" "$PYTHON" -c \
    "from workers.tasks.mnist1d_data import mnist1d_splits; mnist1d_splits()"
printf '%s\n' "${pins[@]}" > "$OUT/requirements.txt"
du -sh "$OUT" | awk '{print "gpu_bundle: " $1 " in '"$OUT"'/ (wheels for Python '"$PY_VERSION"', MNIST-1D cache)"}'
