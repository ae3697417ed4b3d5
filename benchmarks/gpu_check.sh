#!/usr/bin/env bash
# The GPU check, about four minutes on one H100/H200: the worker tests on CUDA, agreement
# with the CPU, batch composition and divergence isolation, memory per configuration and
# the job sizes picked from it, kernels and syncs per step, and throughput.
#
# Run it from the project root on a machine with a CUDA build of torch (2.11 or later).
# Where nothing can be fetched, build the bundle first (`bash benchmarks/gpu_bundle.sh`
# here) and carry .gpu-bundle/ along: its wheels are unpacked beside the system's torch.
# Every finding prints a [tag] line saying what to expect; sections time out on their own.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
export PYTHONUNBUFFERED=1
SITE=${TMPDIR:-/tmp}/avatune-gpu-site
if [ -d .gpu-bundle/wheels ]; then
    rm -rf "$SITE" && mkdir -p "$SITE"
    for wheel in .gpu-bundle/wheels/*.whl; do
        name=$(basename "$wheel" | cut -d- -f1)
        if [ "$name" = numpy ] && $PY -c "import numpy" 2>/dev/null; then
            continue  # the system's numpy is the one its torch was tested with
        fi
        $PY -m zipfile -e "$wheel" "$SITE"
    done
    export AVATUNE_CACHE_DIR=$PWD/.gpu-bundle/cache
fi
export PYTHONPATH=$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/avatune-gpu-check.XXXXXX")
failed=()

echo "[setup] $($PY -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "gpus", torch.cuda.device_count(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "NONE")')"
$PY -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' || {
    echo "[setup] no CUDA device visible: nothing to check"; exit 1; }

# 1. The worker tests: train(device=None) picks cuda, so they run on the GPU (~90 s); the
#    three that start a server or the whole CLI need packages the bundle leaves out, and
#    test_gpu_scripts.py checks these scripts on a CPU.
PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 timeout 200 $PY -m pytest -q -rf -p pytest_timeout \
    --timeout 120 tests/workers tests/optim/test_radam.py tests/optim/test_capturable.py \
    --ignore tests/workers/test_worker_logs.py --ignore tests/workers/test_grid_cli.py \
    --ignore tests/workers/test_prefetch.py --ignore tests/workers/test_gpu_scripts.py 2>&1 | tail -25 | sed 's/^/[suite] /'
[ "${PIPESTATUS[0]}" -eq 0 ] || failed+=(suite)

# 2. Agreement, composition, isolation, memory and sizing (a job at sizing's job size per
#    task: expect 0 out-of-memory splits), kernels and syncs (~90 s). Exits 1 when a
#    finding misses its target (its line says FAIL), 124 on the timeout.
timeout 200 $PY benchmarks/gpu_check.py --device cuda || failed+=(gpu_check)

# 3. Throughput: the 441-point grid, 1000 steps, Adam and AvaGrad (target ≤ 2 s each and
#    ≥ 30 % of the card's float32 matmul rate, TF32 off, measured on the same card) (~40 s).
timeout 150 $PY benchmarks/grid_throughput.py --device cuda --sequential 5 \
    >"$LOGS/throughput.out" 2>"$LOGS/throughput.err"
rc=$?
BENCH=$(tail -1 "$LOGS/throughput.out")
if [ "$rc" -ne 0 ]; then
    echo "[throughput] FAIL: grid_throughput.py exited $rc; its last lines:"
    tail -15 "$LOGS/throughput.err" | sed 's/^/[throughput] /'
    failed+=(throughput)
else
    echo "[throughput] $BENCH"
    $PY - "$BENCH" <<'EOF' || failed+=(throughput)
import json, sys

b = json.loads(sys.argv[1])
bad = 0
for opt in ("adam", "avagrad"):
    s = b[f"grid_seconds_{opt}"]
    bad += s > 2
    print(f"[throughput] {'ok' if s <= 2 else 'FAIL'}: {opt}: {b['grid_points']}-point grid, "
          f"{b['steps']} steps in {s} s (target ≤ 2 s); {b.get(f'launches_per_step_{opt}')} "
          f"launches and {b.get(f'syncs_per_step_{opt}')} syncs per step, "
          f"{b[f'peak_mb_per_config_{opt}']} MB per configuration")
u = b["flop_utilisation"]
bad += u is None or u < 0.3
share = "n/a" if u is None else f"{u:.1%}"
print(f"[throughput] {'ok' if u is not None and u >= 0.3 else 'FAIL'}: {share} of the card's fp32 "
      f"GEMM rate (target ≥ 30 %): model {(b['model_gflops_per_s'] or 0) / 1e3:.2f} TFLOP/s, "
      f"GEMM {b['gemm_gflops'] / 1e3:.1f} TFLOP/s; batched {b['speedup']}x one at a time")
sys.exit(1 if bad else 0)
EOF
fi
rm -rf "$LOGS"
if [ ${#failed[@]} -eq 0 ]; then
    echo "[summary] ok: suite, gpu_check and throughput met their targets"
    exit 0
fi
echo "[summary] FAIL: ${failed[*]}"
exit 1
