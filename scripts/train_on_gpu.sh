#!/usr/bin/env bash
# Train candidates of the default model side by side on a lent GPU machine, in plain PyTorch.
#
# Run from the repository root on the GPU machine, with .gpu/ carried there (training/README.md):
#   .gpu/fer2013-pack.npz.xz  python -m classroom_training pack --out .gpu/fer2013-pack.npz.xz
#   .gpu/v4-named.npz         python -m classroom_training export-weights --model models/emotion/4.keras --out .gpu/v4-named.npz
#   .gpu/stage1.npz           (for re005 only) a first stage's best.npz, brought back and carried again
# Nothing else is needed there: torch_trainer.py imports only numpy and torch.
# Each candidate writes best.npz and history.csv under $OUT/<name>/; logs go to $OUT/train.log.
# Back here: python -m classroom_training import-weights --weights <name>/best.npz --out runs/<name>.keras
set -u
MINUTES=${MINUTES:-8}
DEST=${OUT:-runs/gpu}
mkdir -p "$DEST"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
python3 -c "import lzma; open('/tmp/pack.npz', 'wb').write(lzma.decompress(open('.gpu/fer2013-pack.npz.xz', 'rb').read()))" || exit 1

run() {  # run NAME ARGS...: one candidate in the background, its lines tagged with its name
    local name=$1; shift
    python3 training/classroom_training/torch_trainer.py --data /tmp/pack.npz --out "$DEST/$name" \
        --minutes "$MINUTES" "$@" 2>&1 | sed -u "s/^/[$name] /" >>"$DEST/train.log" &
}
CANDIDATES=${CANDIDATES:-scratch05 scratch10 warm02}  # v5 = warm02, then re005 from its best.npz
for name in $CANDIDATES; do
    case $name in
        scratch05) run "$name" --learning-rate 0.05 --ferplus-weight 0.3 ;;
        scratch10) run "$name" --learning-rate 0.1 --ferplus-weight 0.5 --seed 7 ;;
        warm02) run "$name" --init-from .gpu/v4-named.npz --learning-rate 0.02 --ferplus-weight 0.3 ;;
        re005) run "$name" --init-from .gpu/stage1.npz --learning-rate 0.005 --warmup-minutes 0.1 --seed 11005 ;;
        smoke) run "$name" --limit 1024 --max-epochs 2 ;;
    esac
done
for wait_s in 60 180 300; do  # how busy the GPU is, for the record
    sleep "$wait_s" && nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader | sed "s/^/[gpu at ~${wait_s}s] /" &
done
wait
rm -f "$DEST"/*/last.npz  # the device tool brings back 8 files at most: best.npz and history.csv per run
grep -h "first 20\|finished\|Error\|error" "$DEST/train.log"
