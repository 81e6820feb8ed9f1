# Shared set-up of tools/book.sh and tools/test.sh (sourced, not run).
#
# Chooses the Python environment, creates it when needed and installs what the book needs;
# re-running skips what is already done. Which environment:
#   1. $DLIB_VENV, when set: a virtualenv at that path (created if absent);
#   2. else the environment you activated: a virtualenv ($VIRTUAL_ENV) or a conda env other
#      than `base` ($CONDA_PREFIX) -- the book is installed into it;
#   3. else .venv/ in the repository (created if absent).
# Then: torch==2.13.0 if torch is not importable (install another build first if you prefer,
# e.g. a CPU-only wheel), and `pip install -e ".[book,test]"` unless this checkout is already
# installed with the current pyproject.toml and constraints.txt. Every install is constrained by
# constraints.txt: the exact versions CI tested (regenerated on purpose by tools/lock.sh).
# Last, JupyterLab in that environment is set to open .md files as notebooks (see the end).
# Afterwards PY is the interpreter and its bin/ is first on PATH. $PYTHON (default python3)
# creates new virtualenvs.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PIP_DISABLE_PIP_VERSION_CHECK=1

dlib_setup() {
  local venv="" reason=""
  if [[ -n "${DLIB_VENV:-}" ]]; then
    venv=$DLIB_VENV; reason="DLIB_VENV"
  elif [[ -n "${VIRTUAL_ENV:-}" ]]; then
    PY="$VIRTUAL_ENV/bin/python"; reason="active virtualenv"
  elif [[ -n "${CONDA_PREFIX:-}" && "${CONDA_DEFAULT_ENV:-base}" != "base" ]]; then
    PY="$CONDA_PREFIX/bin/python"; reason="active conda env ${CONDA_DEFAULT_ENV}"
  else
    venv="$REPO_ROOT/.venv"; reason="default"
  fi
  if [[ -n "$venv" ]]; then
    if [[ ! -x "$venv/bin/python" ]]; then
      echo "setup: creating virtualenv $venv with ${PYTHON:-python3}"
      "${PYTHON:-python3}" -m venv "$venv"
    fi
    PY="$venv/bin/python"
  fi
  [[ -x "$PY" ]] || { echo "setup: no python at $PY" >&2; return 1; }
  "$PY" -c 'import sys; assert sys.version_info >= (3, 10), sys.version' \
    || { echo "setup: dlib needs Python >= 3.10" >&2; return 1; }
  PATH="$(dirname "$PY"):$PATH"
  export PATH
  echo "setup: python $("$PY" -c 'import sys; print(sys.prefix)') ($reason)"

  local lock="$REPO_ROOT/constraints.txt"
  [[ -f "$lock" ]] || { echo "setup: $lock is missing (bash tools/lock.sh makes it)" >&2; return 1; }
  if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
    echo "setup: installing torch==2.13.0"
    "$PY" -m pip install -q -c "$lock" "torch==2.13.0" || return 1
  fi

  # Installed already? The stamp names this checkout and the hash of its pyproject.toml and
  # constraints.txt, and the import check (run outside the repository) catches an env that points
  # at another checkout.
  local prefix stamp want
  prefix=$("$PY" -c 'import sys; print(sys.prefix)')
  stamp="$prefix/.dlib-book-setup"
  want="$REPO_ROOT $("$PY" -c 'import hashlib, sys; print(hashlib.sha256(b"".join(open(f, "rb").read() for f in sys.argv[1:])).hexdigest())' "$REPO_ROOT/pyproject.toml" "$lock")"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && (cd / && "$PY" - "$REPO_ROOT" <<'PYCHECK'
import sys
from pathlib import Path
import dlib, jupyter_book, jupytext, nbval, nbclient, pytest, ruff, xdist, numba  # noqa: F401
import disentanglement_lib  # noqa: F401
assert getattr(dlib, "BOOK_PACKAGE", False)
assert Path(dlib.__file__).resolve().is_relative_to(Path(sys.argv[1]).resolve())
PYCHECK
  ) >/dev/null 2>&1; then
    echo "setup: dlib[book,test] already installed from this checkout"
  else
    echo "setup: pip install -c constraints.txt -e \".[book,test]\""
    "$PY" -m pip install -q -c "$lock" -e "$REPO_ROOT[book,test]" || return 1
    # the reference metrics for the cross-check tests; --no-deps keeps TensorFlow out
    "$PY" -m pip install -q -c "$lock" --no-deps "disentanglement-lib==1.5" || return 1
    echo "$want" >"$stamp"
  fi

  # JupyterLab in this environment opens a .md as a notebook on double-click (jupytext's viewer;
  # the pairing itself is chapters/jupytext.toml). One file of its own, in the environment's
  # JupyterLab settings; delete it to get the text editor back.
  local viewer="$prefix/share/jupyter/lab/settings/overrides.d/dlib-book.json"
  if [[ ! -f "$viewer" ]]; then
    "$PY" -m jupytext_config --settings-file "$viewer" set-default-viewer markdown myst \
      || echo "setup: could not set JupyterLab's default viewer (open a chapter with" \
        "right-click -> Open With -> Jupytext Notebook)" >&2
  fi
}

# What the browser check of the rendered book (tools/check_browser.py, test.sh's "browser check"
# stage) needs besides Playwright (the test extra above): Debian's chromium, installed with apt-get
# when it is missing and this is a root Debian machine (as on CI), and a local copy of MathJax
# (the npm package, fetched once with npm into ~/.cache/dlib/). Where either cannot be had, this
# says so and goes on: the check then skips itself, except under CI=true, where it fails.
dlib_browser_setup() {
  if [[ -n "${DLIB_CHROMIUM:-}" ]] || command -v chromium >/dev/null 2>&1; then
    echo "setup: chromium $(command -v chromium || echo "$DLIB_CHROMIUM")"
  elif [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: apt-get install chromium (for the browser check)"
    { apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
             chromium >/dev/null; } \
      || echo "setup: could not install chromium; the browser check cannot run" >&2
  else
    echo "setup: no chromium; the browser check will be skipped (install Debian's chromium:" \
         "sudo apt-get install chromium, or set DLIB_CHROMIUM to a Chromium binary)"
  fi
  "$PY" "$REPO_ROOT/tools/check_browser.py" --fetch-mathjax \
    || echo "setup: no local MathJax; the browser check cannot run" >&2
}
