#!/usr/bin/env bash
# Set up the environment (see tools/setup.sh), then run every check CI runs:
#   ruff, the chapter pairs, a strict book build, the browser check of the built pages, the unit
#   tests, and every chapter under nbval in the quick profile.
# Every stage runs even when an earlier one failed (only a failed set-up stops it: nothing else
# can run without the environment). Prints a summary with each stage's result and wall time, and
# exits non-zero if any stage failed.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$REPO_ROOT"

results=()
failed=()

summary() {
  echo
  echo "== summary =="
  printf '%s\n' "${results[@]}"
  printf '%6s s  total\n' "$SECONDS"
  if ((${#failed[@]})); then
    echo "FAILED: ${failed[*]}"
  else
    echo "all ${#results[@]} stages passed"
  fi
}

stage() {  # stage NAME CMD...: run CMD, record whether it passed and its wall time
  local name=$1 t0=$SECONDS rc=0
  shift
  echo
  echo "== $name =="
  "$@" || rc=$?  # in this shell: the set-up's PY and PATH must outlive its stage
  if [[ $rc -eq 0 ]]; then
    results+=("$(printf '%6s s  %-34s passed' "$((SECONDS - t0))" "$name")")
  else
    results+=("$(printf '%6s s  %-34s FAILED (exit %s)' "$((SECONDS - t0))" "$name" "$rc")")
    failed+=("$name")
  fi
  return $rc
}

pytest_() {  # pytest exits 5 when it collects nothing; that is not a failure here
  local rc=0
  "$PY" -m pytest "$@" || rc=$?
  if [[ $rc -eq 5 ]]; then echo "(no tests collected)"; return 0; fi
  return $rc
}

browser_check() {  # the checker on a small synthetic site, then every page of the built book
  local rc=0
  pytest_ -q -p no:cacheprovider -m browser tests/test_browser_check.py || rc=$?
  "$PY" tools/check_browser.py || rc=$?  # screenshots and report.txt in _build/browser/
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

unit_tests() {  # two workers on two cores: one BLAS thread each. GPU tests skip without CUDA.
  # --dist loadgroup: the Ray tests (one xdist group) share one worker and one local Ray cluster
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} pytest_ tests -n 2 --dist loadgroup
}

if ! stage "set-up" dlib_setup; then
  summary
  echo "set-up failed: no other stage can run" >&2
  exit 1
fi
stage "browser set-up" dlib_browser_setup
stage "ruff" "$PY" -m ruff check .
stage "chapter pairs" "$PY" tools/check_pairs.py
stage "book build (-W -n)" jupyter-book build . -W -n --keep-going --quiet
stage "browser check" browser_check
stage "unit tests" unit_tests
stage "chapters (nbval, quick profile)" nbval_chapters
summary
((${#failed[@]} == 0))
