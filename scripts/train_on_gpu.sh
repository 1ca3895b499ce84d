#!/usr/bin/env bash
# Train candidates of the default model side by side on a lent GPU machine (Keras on JAX, no TensorFlow).
#
# Run from the repository root on the GPU machine, with .gpu/ and .whl/ carried there:
#   .gpu/fer2013-pack.npz.xz  python -m classroom_training.accelerated pack --out .gpu/fer2013-pack.npz.xz
#   .gpu/v3-weights.npz       python -m classroom_training.accelerated starting-weights --model models/emotion/3.keras --out .gpu/v3-weights.npz
#   .whl/                     keras, namex and optree wheels for the machine's Python (training/README.md)
# Each candidate writes best.keras and history.csv under $OUT/<name>/; all logs go to $OUT/train.log.
set -u
MINUTES=${MINUTES:-8}
DEST=${OUT:-runs/gpu}
mkdir -p "$DEST" /tmp/shim/classroom_contract
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
# The model code needs only the contract's labels; this shim saves carrying pydantic.
cp contract/classroom_contract/labels.py /tmp/shim/classroom_contract/
echo "from classroom_contract.labels import CROP_SIZE, EMOTIONS, NUM_EMOTIONS" >/tmp/shim/classroom_contract/__init__.py
export PYTHONPATH=/tmp/site:/tmp/shim:training PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import lzma; open('/tmp/pack.npz', 'wb').write(lzma.decompress(open('.gpu/fer2013-pack.npz.xz', 'rb').read()))" || exit 1

train() { python3 -m classroom_training.accelerated train --data /tmp/pack.npz "$@"; }
python3 -c "import jax; print('jax sees', jax.devices())" 2>&1 | tail -1
export KERAS_BACKEND=${KERAS_BACKEND:-jax}
if [ "${SKIP_SMOKE:-0}" != 1 ] && ! train --out /tmp/smoke --minutes 0.3 --max-epochs 2 --limit 2048; then
    echo "$KERAS_BACKEND smoke run failed: falling back to the PyTorch backend"
    export KERAS_BACKEND=torch
    train --out /tmp/smoke --minutes 0.3 --max-epochs 2 --limit 2048 || exit 1
fi

run() {  # run NAME ARGS...: one candidate in the background, its lines tagged with its name
    local name=$1; shift
    train --out "$DEST/$name" --minutes "$MINUTES" "$@" 2>&1 | sed -u "s/^/[$name] /" >>"$DEST/train.log" &
}
CANDIDATES=${CANDIDATES:-warm03}  # one at a time until a lone run is known to use the GPU
for name in $CANDIDATES; do
    case $name in
        warm03) run warm03 --init-from .gpu/v3-weights.npz --learning-rate 0.02 --warmup-epochs 1 --ferplus-weight 0.3 ;;
        warm06) run warm06 --init-from .gpu/v3-weights.npz --learning-rate 0.02 --warmup-epochs 1 --ferplus-weight 0.6 ;;
        scratch03) run scratch03 --learning-rate 0.04 --ferplus-weight 0.3 ;;
    esac
done
wait
grep -h "finished\|Error\|error" "$DEST/train.log"
for name in $CANDIDATES; do grep "^\[$name\].*epoch" "$DEST/train.log" | tail -2; done
