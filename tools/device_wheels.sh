#!/usr/bin/env bash
# Download the wheels a lent GPU machine lacks for executing chapters and running nbval:
# jupytext, nbclient, ipykernel, ipywidgets, nbval and what they need, for the machine's Python
# (3.12, manylinux x86-64 by default), into .whl/ (git-ignored). Packages the machine already has
# (its image's list, read 2026-11-17) are dropped, so the device's own numpy, torch, matplotlib …
# stay in charge. On the machine, before anything else:
#
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
#       --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
#
# Usage: tools/device_wheels.sh [PYTHON_VERSION]   (e.g. 3.11 to rehearse on this machine)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYVER=${1:-3.12}
ABI="cp${PYVER/./}"
PY=${PY:-python3}
rm -rf .whl
mkdir .whl
platforms=()
for n in 39 35 34 31 28 27 24 17 5; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
"$PY" -m pip download -q --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --abi "$ABI" --abi abi3 --abi none "${platforms[@]}" -d .whl \
    jupytext nbformat nbclient ipykernel jupyter_client ipywidgets nbval

# what the machine's image holds already (the device tool's KINDS.md): keep theirs
have="attrs certifi charset_normalizer click colorama contourpy coverage cycler filelock
fonttools fsspec h5py idna iniconfig jinja2 joblib kiwisolver llvmlite markdown_it_py markupsafe
matplotlib mdurl numba numpy packaging pandas pillow pip platformdirs pluggy psutil pygments
pyparsing pytest pytest_xdist execnet python_dateutil pytz pyyaml requests scikit_learn scipy
setuptools six sympy threadpoolctl torch tqdm typing_extensions tzdata urllib3 wheel"
for name in $have; do
    rm -f .whl/"${name}"-*.whl .whl/"${name^}"-*.whl
done
# one version of each project, or the install on the machine refuses them all
dups=$(ls .whl | sed -E 's/-[0-9].*//' | tr 'A-Z-' 'a-z_' | sort | uniq -d)
if [[ -n "$dups" ]]; then
    echo "more than one version of: $dups" >&2
    exit 1
fi
echo "$(ls .whl | wc -l) wheels, $(du -sh .whl | cut -f1) in .whl/ for Python $PYVER"
