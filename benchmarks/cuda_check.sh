#!/usr/bin/env bash
# The checks that need a CUDA device, in one run: the GPU-marked tests (every balancer's step
# against the CPU's and free of host syncs, bf16 autocast, every architecture with every
# balancer, the masked task losses, SIGKILL and resume on CUDA, the CLI on CUDA), then the
# per-step balancer table on CUDA, then the deep half's other tests with CUDA present (the
# Trainer's default device is then CUDA). CI has no GPU: these are run by hand where one is.
#
#   OUT=cuda-check bash benchmarks/cuda_check.sh [gpu] [bench] [deep]   (default: all three)
#
# Runs from the repository root with the package from src/ (no install). Wheels of packages
# missing on the machine (cvxpy and its solvers, torchjd: the oracles of some tests) may sit
# in .whl/; they are installed into a temporary folder first. Logs and JSON go to $OUT.
set -uo pipefail
OUT=${OUT:-cuda-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
    site=$(mktemp -d)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" .whl/*.whl || exit 1
    export PYTHONPATH="$PYTHONPATH:$site"
fi
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    python3 -c "import sys, torch, numpy, scipy, sklearn; print(sys.version.split()[0], \
'torch', torch.__version__, 'cuda', torch.version.cuda, 'numpy', numpy.__version__, \
'scipy', scipy.__version__, 'sklearn', sklearn.__version__)"
} 2>&1 | tee "$OUT/env.txt"
stages=${*:-gpu bench deep}
status=0
for stage in $stages; do
    case $stage in
    gpu) timeout "${TIMEOUT:-420}" python3 -m pytest -q -p no:cacheprovider -rfE -m gpu -n 4 \
        tests/nn tests/training tests/test_cli_fit.py 2>&1 | tee "$OUT/gpu_tests.log" | tail -40 ;;
    bench) timeout "${TIMEOUT:-420}" python3 benchmarks/balancer_speed.py --device cuda \
        --rounds 9 --out "$OUT/balancer_speed_cuda.json" 2>&1 | tee "$OUT/balancer_speed_cuda.log" ;;
    deep) timeout "${TIMEOUT:-420}" python3 -m pytest -q -p no:cacheprovider -rfE -m "not gpu" \
        -n 8 tests/nn tests/training 2>&1 | tee "$OUT/deep_tests.log" | tail -40 ;;
    *) echo "unknown stage $stage (gpu, bench, deep)" >&2; exit 2 ;;
    esac
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
done
exit $status
