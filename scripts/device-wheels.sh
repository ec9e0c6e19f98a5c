# Sourced by the device scripts: install the wheels that travel in .whl/ (scripts/
# fetch-gpu-wheels.sh) and put them and the repository on PYTHONPATH; NO_WHEELS=1 skips it
# (a host with the package installed). Expects PY.
if [ -z "${NO_WHEELS:-}" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
