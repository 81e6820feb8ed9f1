#!/usr/bin/env bash
# Set up the environment (see tools/setup.sh) and build the book into _build/html.
# Nothing is executed: the book renders the outputs stored in the chapter notebooks.
# Re-running is cheap: the set-up skips what is done and Sphinx rebuilds only changed pages.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$REPO_ROOT"
dlib_setup
t0=$SECONDS
jupyter-book build . -W -n --keep-going
echo
echo "book: built in $((SECONDS - t0)) s; open file://$REPO_ROOT/_build/html/index.html"
