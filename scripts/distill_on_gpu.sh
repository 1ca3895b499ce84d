#!/usr/bin/env bash
# One GPU call: train teachers, then distill efficient students from [v5 + those teachers] (issue 16).
#
# Run from the repository root on the GPU machine, with .gpu/ carried there (training/README.md):
#   .gpu/fer2013-pack6.npz.xz  python -m classroom_training pack --train-bits 6 --out .gpu/fer2013-pack6.npz.xz
#   .gpu/v5-named.npz          python -m classroom_training export-weights --model models/emotion/5.keras --out .gpu/v5-named.npz
# Nothing else is needed there: torch_trainer.py imports only numpy and torch.
#
# Phase A trains the TEACHERS side by side in one process for A_MINUTES (time-budgeted cosine);
# phase B trains the STUDENTS side by side in one process for B_MINUTES, each step's augmented
# batch going through every teacher once (eval mode, no_grad) for the distillation target. Each
# phase is killed KILL_SLACK_S seconds after its budget if it has not ended, so the files always
# come back: best.npz is written (atomically) at every new best epoch.
#
# $OUT gets at most 8 files: summary.json (best PublicTest per run, the teachers' ensemble),
# train.log, and runs.tar cut into 15 MiB parts (runs.tar.part00, ...; every run's best.npz and
# history.csv). Back here: cat runs.tar.part* | tar x -C runs/distill, then import-weights.
# Smoke run on a CPU: SMOKE=1 bash scripts/distill_on_gpu.sh (tiny data, seconds of budget).
set -u
STARTED=$(date +%s)
DEST=${OUT:-runs/distill-out}
WORK=${WORK:-/tmp/distill}
PACK=${PACK:-.gpu/fer2013-pack6.npz.xz}
V5=${V5:-.gpu/v5-named.npz}
TEACHERS=${TEACHERS:-default-w48}
STUDENTS=${STUDENTS:-separable-w32-d1 plain-w16-d1 separable-w48-d1 separable-w32-d2 plain-w32-d1}
A_MINUTES=${A_MINUTES:-3.3}
B_MINUTES=${B_MINUTES:-4.1}
A_LR=${A_LR:-0.05}
PREWARM=${PREWARM:-1}
B_LR=${B_LR:-$([ "$PREWARM" = 1 ] && echo 0.02 || echo 0.05)}
BATCH=${BATCH:-128}
ALPHA=${ALPHA:-0.7}
TEMPERATURE=${TEMPERATURE:-4}
MIXUP=${MIXUP:-0}  # phase B's mixup concentration (0: off); the teachers label each blend (torch_trainer.mix)
KILL_SLACK_S=${KILL_SLACK_S:-25}
EXTRA=${EXTRA:-}
if [ "${SMOKE:-0}" = 1 ]; then  # a CPU rehearsal of the whole call: same commands, tiny everything
    A_MINUTES=${SMOKE_MINUTES:-0.15} B_MINUTES=${SMOKE_MINUTES:-0.15} KILL_SLACK_S=${SMOKE_KILL_SLACK_S:-150}
    EXTRA="--limit 128 --val-limit 256 --max-epochs 2 --batch-size 64 --float32 --device cpu --warmup-minutes 0.01"
fi
mkdir -p "$DEST" "$WORK"
LOG=$DEST/train.log
say() { echo "[$(($(date +%s) - STARTED))s] $*" | tee -a "$LOG"; }
export PYTHONUNBUFFERED=1
TRAINER=training/classroom_training/torch_trainer.py

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$LOG"
say "decoding $PACK"
python3 - "$PACK" "$WORK/pack.npz" <<'EOF' 2>&1 | tee -a "$LOG" || exit 1
import sys, numpy as np, torch
sys.path.insert(0, "training/classroom_training")
import torch_trainer
data = torch_trainer.load_pack(sys.argv[1])
np.savez(sys.argv[2], **data)
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), {k: v.shape for k, v in data.items()})
EOF
samplers=()
for wait_s in 60 200 380; do  # how busy the GPU is, for the record
    (sleep "$wait_s" && nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null |
        sed "s/^/[gpu at ~${wait_s}s] /" >>"$LOG") >/dev/null 2>&1 &
    samplers+=($!)
done

phase() {  # phase TAG OUT MINUTES ARGS...: one trainer process, killed KILL_SLACK_S after its budget
    local tag=$1 out=$2 minutes=$3; shift 3
    local limit_s; limit_s=$(python3 -c "print(int($minutes * 60 + $KILL_SLACK_S))")
    say "phase $tag: $minutes min (killed at ${limit_s}s): $*"
    timeout -k 5 "$limit_s" python3 "$TRAINER" --data "$WORK/pack.npz" --out "$out" --minutes "$minutes" \
        --batch-size "$BATCH" $EXTRA "$@" 2>&1 | sed -u "s/^/[$tag] /" >>"$LOG"
    say "phase $tag ended (exit ${PIPESTATUS[0]})"
}

nets_out() {  # nets_out DIR SPECS...: where the trainer writes (one net: DIR/<spec>, several: DIR/<spec> too)
    local dir=$1; shift
    if [ $# -eq 1 ]; then echo "$dir/$1"; else echo "$dir"; fi
}
net_args() { for spec in "$@"; do printf -- '--net\n%s\n' "$spec"; done; }
mapfile -t teacher_nets < <(net_args $TEACHERS)
mapfile -t student_nets < <(net_args $STUDENTS)

# Phase A: the teachers from scratch and, beside them (PREWARM=1), the students distilling from v5
# alone; two processes sharing the GPU. Phase B then restarts the students from their phase-A best.
phase_a=()
if [ -n "$TEACHERS" ]; then
    phase A "$(nets_out "$WORK/runs" $TEACHERS)" "$A_MINUTES" "${teacher_nets[@]}" --learning-rate "$A_LR" \
        --ferplus-weight 0.3 &
    phase_a=($!)
fi
if [ "$PREWARM" = 1 ]; then
    phase A-students "$(nets_out "$WORK/pre" $STUDENTS)" "$A_MINUTES" "${student_nets[@]}" \
        --teacher "default-w32=$V5" --learning-rate "$A_LR" --ferplus-weight 0.3 --alpha "$ALPHA" \
        --temperature "$TEMPERATURE" --seed 2 &
    phase_a+=($!)
fi
[ ${#phase_a[@]} -gt 0 ] && wait "${phase_a[@]}"

# Phase B: the students, distilling from v5 and every teacher that left a best.npz.
ensemble=(--teacher "default-w32=$V5")
for spec in $TEACHERS; do
    if [ -f "$WORK/runs/$spec/best.npz" ]; then ensemble+=(--teacher "$spec=$WORK/runs/$spec/best.npz")
    else say "teacher $spec left no best.npz: not in the ensemble"; fi
done
warm=()
[ "$PREWARM" = 1 ] && warm=(--init-dir "$WORK/pre" --warmup-minutes 0.1)
phase B "$(nets_out "$WORK/runs" $STUDENTS)" "$B_MINUTES" "${student_nets[@]}" "${ensemble[@]}" "${warm[@]}" \
    --learning-rate "$B_LR" --ferplus-weight 0.3 --alpha "$ALPHA" --temperature "$TEMPERATURE" --mixup "$MIXUP"
for spec in $STUDENTS; do  # phase A's curves come back too (runs/<spec>/history-prewarm.csv)
    [ -f "$WORK/pre/$spec/history.csv" ] && cp "$WORK/pre/$spec/history.csv" "$WORK/runs/$spec/history-prewarm.csv"
done

# What comes back: summary.json, train.log and runs.tar in 15 MiB parts (the device tool takes 8 files).
python3 - "$WORK/runs" "$LOG" "$DEST/summary.json" <<'EOF' 2>&1 | tee -a "$LOG"
import csv, json, re, sys
from pathlib import Path
runs, log, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
summary = {"runs": {}}
for history in sorted(runs.glob("*/history.csv")):
    rows = list(csv.DictReader(history.open()))
    if rows:
        best = max(rows, key=lambda r: float(r["val_accuracy"]))
        summary["runs"][history.parent.name] = {
            "best_val_accuracy": float(best["val_accuracy"]), "best_epoch": int(best["epoch"]),
            "epochs": len(rows), "seconds": float(rows[-1]["seconds"]),
            "has_best_npz": (history.parent / "best.npz").exists(),
        }
for line in log.read_text().splitlines():
    found = re.search(r"teacher (ensemble of \d+|\S+): PublicTest ([0-9.]+)", line)
    if found:
        summary.setdefault("teachers", {})[found.group(1)] = float(found.group(2))
out.write_text(json.dumps(summary, indent=1))
print(json.dumps(summary, indent=1))
EOF
tar -cf "$WORK/runs.tar" -C "$WORK/runs" $(cd "$WORK/runs" && ls -d */ 2>/dev/null) &&
    split -b 15M -d "$WORK/runs.tar" "$DEST/runs.tar.part"
kill "${samplers[@]}" 2>/dev/null
say "done: $(ls "$DEST" | tr '\n' ' ')"
grep -h "teacher\|first 20\|finished\|Error\|error\|Killed" "$LOG" | tail -40
