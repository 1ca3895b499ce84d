#!/usr/bin/env bash
# Distill efficient students from v5 on the CPU, when no GPU is lent (issue 16).
#
# v5's outputs are computed once (teacher_probs.py), so a training step pays for the student only.
# Each student is its own background process with ONE thread: on two cores shared with other work,
# two single-threaded processes beat one two-threaded one (OpenMP threads wait on each other).
# Every epoch writes checkpoint.pt (RESUME=1 continues it, schedule included) and, at each new best
# PublicTest epoch, best.npz. Logs: $RUNS/<student>.log; curves: $RUNS/<student>/history.csv.
#   bash scripts/distill_on_cpu.sh                       # then: tail -f runs/distill-cpu/*.log
#   MINUTES=48 STUDENTS="separable-w32-d1:bf16 plain-w16-d1:bf16" bash scripts/distill_on_cpu.sh
set -eu
RUNS=${RUNS:-runs/distill-cpu}
MINUTES=${MINUTES:-48}
STUDENTS=${STUDENTS:-separable-w32-d1:bf16 plain-w16-d1:bf16}
PY=${PY:-.venv/bin/python}
mkdir -p "$RUNS"
[ -f "$RUNS/pack.npz" ] || $PY -m classroom_training pack --out "$RUNS/pack.npz"
[ -f "$RUNS/v5-named.npz" ] || $PY -m classroom_training export-weights --model models/emotion/5.keras --out "$RUNS/v5-named.npz"
[ -f "$RUNS/v5-probs.npz" ] || $PY training/classroom_training/teacher_probs.py --threads 2 --data "$RUNS/pack.npz" \
    --teacher "default-w32=$RUNS/v5-named.npz" --flip-tta --out "$RUNS/v5-probs.npz" 2>&1 | tee "$RUNS/teacher-probs.log"
for item in $STUDENTS; do
    spec=${item%%:*} precision=${item##*:}
    flag=$([ "$precision" = fp32 ] && echo --float32 || true)
    PYTHONUNBUFFERED=1 nohup $PY training/classroom_training/torch_trainer.py --data "$RUNS/pack.npz" \
        --teacher-probs "$RUNS/v5-probs.npz" --net "$spec" --out "$RUNS/$spec" --minutes "$MINUTES" \
        --warmup-minutes 1 --learning-rate "${LR:-0.05}" --batch-size 128 --alpha "${ALPHA:-0.7}" \
        --temperature "${TEMPERATURE:-4}" --threads 1 --device cpu --channels-last --checkpoint --save-last $flag \
        $([ "${RESUME:-0}" = 1 ] && echo --resume) >>"$RUNS/$spec.log" 2>&1 &
    echo "$spec ($precision): pid $! -> $RUNS/$spec.log"
done
