#!/usr/bin/env bash
# Set up the environment (see tools/setup.sh), then run every check CI runs:
#   ruff, the chapter pairs, a strict book build, the unit tests, and every chapter under nbval in
#   the quick profile.
# Prints a timing summary per stage; exits non-zero at the first failing stage.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$REPO_ROOT"

timings=()
current=""
summary() {
  local rc=$?
  [[ -n "$current" ]] && timings+=("$(printf '%6s s  %s  FAILED' "$((SECONDS - stage_t0))" "$current")")
  echo
  echo "== timing summary =="
  printf '%s\n' "${timings[@]}"
  printf '%6s s  total\n' "$SECONDS"
  return $rc
}
trap summary EXIT

stage() {  # stage NAME CMD...: run CMD, record its wall time
  current=$1; shift
  echo
  echo "== $current =="
  stage_t0=$SECONDS
  "$@"
  timings+=("$(printf '%6s s  %s' "$((SECONDS - stage_t0))" "$current")")
  current=""
}

pytest_() {  # pytest exits 5 when it collects nothing; that is not a failure here
  local rc=0
  "$PY" -m pytest "$@" || rc=$?
  if [[ $rc -eq 5 ]]; then echo "(no tests collected)"; return 0; fi
  return $rc
}

nbval_chapters() {
  if ! compgen -G "chapters/*.ipynb" >/dev/null; then
    echo "(no chapter notebooks)"
    return 0
  fi
  OMP_NUM_THREADS=1 TQDM_DISABLE=1 DLIB_PROFILE=quick pytest_ -n 2 --dist loadfile \
    --nbval --nbval-current-env --nbval-sanitize-with nbval_sanitize.cfg chapters
}

stage "set-up" dlib_setup
stage "ruff" "$PY" -m ruff check .
stage "chapter pairs" "$PY" tools/check_pairs.py
stage "book build (-W -n)" jupyter-book build . -W -n --keep-going --quiet
# Two workers on two cores: one BLAS thread each. GPU tests skip themselves without CUDA.
# --dist loadgroup: the Ray tests (one xdist group) share one worker and one local Ray cluster
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} stage "unit tests" pytest_ tests -n 2 --dist loadgroup
stage "chapters (nbval, quick profile)" nbval_chapters
