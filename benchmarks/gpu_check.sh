#!/usr/bin/env bash
# Issue 15's GPU check: kerasjob's script on JAX against the classic method, same backend, same GPU.
#
# Made for the lent GPU machine (Python 3.12 with JAX and CUDA, no TensorFlow, no internet). Prepare here, once:
#   echo /.whl/ >> .git/info/exclude; echo /.gpu_data/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
#       -d .whl keras==3.15.1 namex==0.1.0 optree==0.20.0        # keras = the version in .venv
#   mkdir -p .gpu_data && cp ../shared/data/mnist/*.gz .gpu_data/
# then run it there with carry [".whl", ".gpu_data"] and a timeout of 420 s:
#   bash benchmarks/gpu_check.sh
# It writes to $OUT: environment.txt, train_speed_jax.txt/.json (classic, Keras fit with its fast
# settings, kerasjob's fused epoch; 20 epochs, 2 repeats, alternating) and script.txt (keras_mnist.py
# itself for one epoch: metrics and outputs). About 4 minutes on an H100; the benchmark stops at 330 s.
#
# Here, on the CPU, a rehearsal with tiny settings (uses .venv; TensorFlow blocked as on the GPU machine):
#   PYTHON=.venv/bin/python EPOCHS=1 REPEATS=1 OUT=/tmp/gpu-check BLOCK_TENSORFLOW=1 bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
case $PYTHON in */*) PYTHON=$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON") ;; esac  # the script runs elsewhere
OUT=${OUT:-/tmp/gpu-check}
EPOCHS=${EPOCHS:-20}
REPEATS=${REPEATS:-2}
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

timeout 330 "$PYTHON" benchmarks/train_speed.py --keras-backend jax --data-folder "$DATA" --epochs "$EPOCHS" \
    --repeats "$REPEATS" --with-fit --json-out "$OUT/train_speed_jax.json" 2>&1 | tee "$OUT/train_speed_jax.txt" \
    || echo "train_speed.py failed or ran past 330 s (exit $?)" | tee -a "$OUT/train_speed_jax.txt"

RUN_DIR=$(mktemp -d)
(cd "$RUN_DIR" && timeout 120 "$PYTHON" "$ROOT/src/kerasjob/training/keras_mnist.py" --data-folder "$DATA" \
    --epochs 1 --seed 1 --keras-backend jax && ls -R outputs) 2>&1 | tee "$OUT/script.txt"
