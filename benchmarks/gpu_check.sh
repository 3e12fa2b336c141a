#!/usr/bin/env bash
# GPU check, in one call: the CUDA tests, preset throughput (fp32 / bf16 / bf16 + compile +
# channels-last), E2-dcgan-fixed for 10 epochs with its time and FID, and a 2-GPU torchrun where
# two GPUs exist. Default budget 450 s: under 8 minutes on one GPU. See benchmarks/gpu_check.py.
#
# A session lent a GPU runs, from the repository root, this one command (the timeout leaves
# a margin over the 450 s budget):
#
#     timeout 540 bash benchmarks/gpu_check.sh
#
# and copies the figures (the table it prints; all numbers in benchmarks/results/gpu_check.json)
# into the README's "Scale: CPU speed, GPUs, several processes" section. Where $OUT is set (the
# device machine's folder of files that come back), the JSON and the table are copied there too.
#
# Arguments pass through: --budget-s S, --quick, --device cpu, --data-dir DIR (Fashion-MNIST),
# --celeba-dir DIR (adds e6-faces-gpu), --out PATH. Without a CUDA build of torch it says so in
# one line (with torch.__version__ and torch.version.cuda) and skips the GPU steps.
# Exit status: 1 if a step failed, 3 if python cannot import torch and ganscope, else 0.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -x .venv/bin/python ]]; then
    PY=.venv/bin/python
else
    PY=python3
fi
# The checkout's source first, so a python without ganscope installed still finds it.
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PY" -c "import torch, ganscope" 2>/dev/null; then
    echo "gpu_check: $PY cannot import torch and ganscope (make the .venv first)" >&2
    exit 3
fi

# Where the JSON goes: the last --out given, else the default.
JSON="$ROOT/benchmarks/results/gpu_check.json"
prev=""
for arg in "$@"; do
    case "$arg" in
        --out=*) JSON="${arg#--out=}" ;;
        *) [[ "$prev" == "--out" ]] && JSON="$arg" ;;
    esac
    prev="$arg"
done

rc=0
"$PY" benchmarks/gpu_check.py "$@" || rc=$?

TXT="${JSON%.json}.txt"
if [[ -n "${OUT:-}" && -d "${OUT:-}" ]]; then
    for f in "$JSON" "$TXT"; do
        if [[ -f "$f" ]]; then
            cp "$f" "$OUT/"
        fi
    done
    echo "gpu_check: copied $(basename "$JSON") and $(basename "$TXT") to \$OUT ($OUT)"
fi
echo "gpu_check: JSON in $JSON, table in $TXT (exit $rc)"
exit "$rc"
