#!/usr/bin/env bash
# Issues 15 and 23's GPU check: kerasjob on JAX against the classic method, same backend, same GPU, timed as
# whole processes (split into start, first epoch, steady epochs, rest), with kerasjob's compile cache cold and warm.
#
# Made for the lent GPU machine (Python 3.12 with JAX and CUDA, no TensorFlow, no internet). Prepare here, once:
#   echo /.whl/ >> .git/info/exclude; echo /.gpu_data/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
#       -d .whl keras==3.15.1 namex==0.1.0 optree==0.20.0        # keras = the version in .venv
#   mkdir -p .gpu_data && cp ../shared/data/mnist/*.gz .gpu_data/
# then run it there with carry [".whl", ".gpu_data"] and a timeout of 420 s:
#   bash benchmarks/gpu_check.sh
# It writes to $OUT (each file as soon as its step ends, so a run cut short keeps what it measured):
#   environment.txt               the card, driver, Python, JAX, Keras; whether TensorFlow imports
#   train_speed_jax.txt/.json     benchmarks/train_speed.py --only-cache-arms: the classic method, kerasjob with the
#                                 cache cold (empty folder) and warm (second process); EPOCHS epochs, REPEATS
#                                 repeats alternating; training time AND whole process with its phases; the ratios
#   compile_cache.txt/.json       benchmarks/compile_cache_speed.py: keras_mnist.py itself as a run starts it:
#                                 cold, then 1 warm process; a 4-trial sweep (learning rates, 5 epochs
#                                 each) with the cache cold, then warm; autotune level 0 cold/warm
#   timings.txt                   each step's wall time
# About 5 minutes on an H200: train_speed stops at 200 s, compile_cache_speed at 170 s.
#
# Here, on the CPU, a rehearsal with tiny settings (uses .venv; TensorFlow blocked as on the GPU machine):
#   PYTHON=.venv/bin/python EPOCHS=1 REPEATS=1 SWEEP_EPOCHS=1 OUT=/tmp/gpu-check BLOCK_TENSORFLOW=1 \
#       bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
case $PYTHON in */*) PYTHON=$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON") ;; esac  # the script runs elsewhere
OUT=${OUT:-/tmp/gpu-check}
EPOCHS=${EPOCHS:-20}
REPEATS=${REPEATS:-2}
SWEEP_EPOCHS=${SWEEP_EPOCHS:-5}
DATA=${DATA:-$ROOT/.gpu_data}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 KERAS_BACKEND=jax

# Keras and the two packages it needs beyond the machine's own, from the carried wheels.
if ! "$PYTHON" -c "import keras" 2>/dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if [ -n "${BLOCK_TENSORFLOW:-}" ]; then  # rehearsal: make `import tensorflow` fail, as where it is absent
    mkdir -p /tmp/no-tensorflow/tensorflow
    echo "raise ImportError('TensorFlow is not installed here (gpu_check rehearsal)')" \
        > /tmp/no-tensorflow/tensorflow/__init__.py
    export PYTHONPATH=/tmp/no-tensorflow${PYTHONPATH:+:$PYTHONPATH}
fi

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
    "$PYTHON" -c "import sys, jax, keras; print(sys.version.split()[0], 'jax', jax.__version__, jax.devices(),
'keras', keras.__version__, keras.backend.backend())"
    "$PYTHON" -c "
try:
    import tensorflow
    print('tensorflow importable: yes')
except ImportError:
    print('tensorflow importable: no')"
} 2>&1 | tee "$OUT/environment.txt"

step() {  # step NAME SECONDS COMMAND...: runs it under a timeout, records its wall time, never stops the script
    local name=$1 limit=$2 started=$SECONDS
    shift 2
    timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.txt" \
        || echo "$name failed or ran past $limit s (exit ${PIPESTATUS[0]})" | tee -a "$OUT/$name.txt"
    echo "$name $((SECONDS - started)) s" | tee -a "$OUT/timings.txt"
}

step train_speed_jax 200 "$PYTHON" benchmarks/train_speed.py --keras-backend jax --data-folder "$DATA" \
    --epochs "$EPOCHS" --repeats "$REPEATS" --only-cache-arms --json-out "$OUT/train_speed_jax.json"
step compile_cache 170 "$PYTHON" benchmarks/compile_cache_speed.py --keras-backend jax --data-folder "$DATA" \
    --epochs "$EPOCHS" --warm 1 --autotune-level 0 --sweep-trials 4 --sweep-epochs "$SWEEP_EPOCHS" \
    --json-out "$OUT/compile_cache.json"
