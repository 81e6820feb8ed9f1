#!/usr/bin/env bash
# Run the book's GPU work on a lent machine that gets a copy of this tree without .git and
# without network: its python3 has a CUDA torch, the wheels of tools/device_wheels.sh (carried in
# .whl/) add the notebook tooling, and .dlib-source.json (python -m dlib.results stamp, carried)
# says which commit the copy is. What comes back is written to $OUT (at most 8 files).
#
#   tools/on_device.sh check                  # GPU tests + benchmark  → $OUT/gpu_tests.log,
#                                             #   $OUT/bench.json, $OUT/bench_loop.json
#   tools/on_device.sh study NAME [--scale S --seeds … --steps N]  # run, then export NAME;
#                                             #   Ray's experiment in .work/studies resumes while the
#                                             #   machine stays warm → $OUT/results.tgz. Needs Ray on
#                                             #   the machine (its wheel, ~80 MB, is larger than what
#                                             #   a lent machine gets carried: see the README)
#   tools/on_device.sh module MODULE [ARGS…]  # e.g. dlib.bench --json book/results/bench.json
#   tools/on_device.sh chapter FILE.md …      # execute chapters in the full profile → $OUT/chapters.tgz
#
# BUDGET (seconds, default 540) stops a long step in time for its files to come back; the
# commands resume from their checkpoints when called again.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-/tmp/dlib-out}
BUDGET=${BUDGET:-540}
mkdir -p "$OUT" .work
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1

if [[ ! -f .dlib-source.json && ! -d .git ]]; then
    echo "warning: no .git and no .dlib-source.json: results will say 'unknown commit'" >&2
fi
if [[ -d .whl && ! -f /tmp/site/.dlib-wheels ]]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && touch /tmp/site/.dlib-wheels || exit 1
fi
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"

pack_results() {  # the results folder (exported studies: no checkpoints)
    tar -czf "$OUT/results.tgz" book/results 2>/dev/null || true
}

step=${1:-}
shift || true
case "$step" in
    check)
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
        python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" \
            | tee -a "$OUT/gpu.txt"
        timeout "$BUDGET" python3 -m pytest -q -p no:cacheprovider -m gpu tests 2>&1 \
            | tee "$OUT/gpu_tests.log"
        timeout "$BUDGET" python3 -m dlib.bench --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log"
        timeout "$BUDGET" python3 -m dlib.bench --vectorize loop --methods beta_vae \
            --json "$OUT/bench_loop.json" 2>&1 | tee -a "$OUT/bench.log"
        ;;
    study)
        timeout "$BUDGET" python3 -m dlib.studies run "$@" --storage "$PWD/.work/studies" 2>&1 \
            | tee -a "$OUT/run.log"
        python3 -m dlib.studies export "$@" --storage "$PWD/.work/studies" 2>&1 \
            | tee -a "$OUT/run.log"
        pack_results
        ;;
    module)
        mod=$1
        shift
        timeout "$BUDGET" python3 -m "$mod" "$@" 2>&1 | tee -a "$OUT/run.log"
        pack_results
        ;;
    chapter)
        timeout "$BUDGET" python3 tools/execute.py --profile full "$@" 2>&1 | tee "$OUT/execute.log"
        tar -czf "$OUT/chapters.tgz" chapters/*.ipynb
        ;;
    *)
        sed -n '2,17p' "$0"
        exit 2
        ;;
esac
