# What the ModelZoo entry points share (sourced by test/train_{full,performance}_{1p,8p}.sh, which set
# `case_type` (acc or perf), `ranks` (1 or 8) and `default_steps`): their arguments, one H3.6M training run
# on one device or through scripts/train_npu_8p.sh, and the closing summary the ModelZoo performance
# watch reads, computed from the run's own progress lines and evaluation tables.
set -u
cur_path=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
Network="tprnn_ID1297_for_TensorFlow"
# Ascend's TF 1.15 runs on Python 3.7: python3.7 where it runs, else python3.
python=${PYTHON:-$(python3.7 -c "" >/dev/null 2>&1 && echo python3.7 || echo python3)}
data_path="$cur_path/data/h3.6m/dataset"
precision_mode="force_fp16"
device="auto"
batch_size=16
train_steps=$default_steps
out="$cur_path/test/output"
extra=()  # training flags after --
fail() { echo "error: $*" >&2; exit 1; }

usage() {
  cat <<EOF
usage: bash test/$(basename "$0") [--data_path=DIR] [--precision_mode=MODE] [--batch_size=N]
         [--train_steps=N] [--device=auto|cpu|gpu|npu] [--output_path=DIR]
         [-- flags of tprnn_train_human.py...]

  --data_path       H3.6M dataset directory (default data/h3.6m/dataset)
  --precision_mode  NPU precision: force_fp16 (default), allow_mix_precision, allow_fp32_to_fp16,
                    must_keep_origin_dtype
  --batch_size      sequences per device and step (default 16)
  --train_steps     training steps (default $default_steps); evaluated every min(1000, steps)
  --device          1p only: auto (default: npu where npu_bridge imports, else gpu or cpu)
  --output_path     where <device>/ holds each device's log, summary and checkpoints (default
                    test/output); each run replaces the <device>/ folders it uses
EOF
}

after_dashes=0
for arg in "$@"; do
  if (( after_dashes )); then extra+=("$arg"); continue; fi
  case $arg in
    -h|--help) usage; exit 0 ;;
    --data_path=*) data_path=${arg#*=} ;;
    --precision_mode=*) precision_mode=${arg#*=} ;;
    --batch_size=*) batch_size=${arg#*=} ;;
    --train_steps=*) train_steps=${arg#*=} ;;
    --device=*) device=${arg#*=} ;;
    --output_path=*) out=${arg#*=} ;;
    --) after_dashes=1 ;;
    *) fail "unknown argument $arg (expected --data_path=, --precision_mode=, --batch_size=, --train_steps=, --device=, --output_path=, or -- and training flags; see --help)" ;;
  esac
done
# --precision_mode and --device are checked by the training script, whose error ends the run.
[[ $batch_size =~ ^[1-9][0-9]*$ ]] || fail "--batch_size=$batch_size: expected a positive integer"
[[ $train_steps =~ ^[1-9][0-9]*$ ]] || fail "--train_steps=$train_steps: expected a positive integer"
[ -d "$data_path" ] || fail "--data_path=$data_path: no such directory (the H3.6M dataset, see data/README.md)"
data_path=$(cd "$data_path" && pwd)
mkdir -p "$out" 2>/dev/null && out=$(cd "$out" && pwd) || fail "--output_path=$out: cannot create it"
(( ranks == 1 )) || [ "$device" = auto ] || [ "$device" = npu ] || fail "--device=$device: the 8p scripts run on NPUs"
test_every=$(( train_steps < 1000 ? train_steps : 1000 ))
[ -z "${RANK_TABLE_FILE:-}" ] || RANK_TABLE_FILE=$(realpath -m "$RANK_TABLE_FILE")
cd "$cur_path"

# One device, or every device of the rank table; rank 0's log gives the summary.
export JOB_ID=${JOB_ID:-10087}
if (( ranks == 1 )); then
  export RANK_SIZE=1 RANK_ID=0 ASCEND_DEVICE_ID=${ASCEND_DEVICE_ID:-0}
  devices=("$ASCEND_DEVICE_ID")
else
  export RANK_SIZE=${RANK_SIZE:-8}
  export RANK_TABLE_FILE=${RANK_TABLE_FILE:-$cur_path/scripts/rank_table_8p.json}
  if ! table_devices=$("$python" -m tprnn.parallel.rank_table "$RANK_TABLE_FILE" "$RANK_SIZE" 2>/dev/null); then
    "$python" -m tprnn.parallel.rank_table "$RANK_TABLE_FILE" "$RANK_SIZE" >/dev/null  # says why, in one line
    exit 1
  fi
  read -r -a devices <<< "$table_devices"
fi
for d in "${devices[@]}"; do rm -rf "${out:?}/$d"; done
mkdir -p "$out/${devices[0]}"
log="$out/${devices[0]}/train_${devices[0]}.log"
flags=(--data_dir "$data_path" --train_dir "$out/${devices[0]}/ckpt" --precision_mode "$precision_mode"
       --batch_size "$batch_size" --iterations "$train_steps" --test_every "$test_every"
       --save_every "$test_every" ${extra[@]+"${extra[@]}"})

start_time=$(date +%s)
if (( ranks == 1 )); then
  "$python" tprnn_train_human.py --device "$device" "${flags[@]}" > "$log" 2>&1
else
  LOG_DIR="$out" PYTHON="$python" bash scripts/train_npu_8p.sh tprnn_train_human.py "${flags[@]}"
fi
status=$?
e2e_time=$(( $(date +%s) - start_time ))
if (( status )); then
  reason=$(grep -h '^error:' "$log" "$out"/*/train_*.log 2>/dev/null | head -1)
  echo "error: training exited with status $status${reason:+: ${reason#error: }} (log: $log)" >&2
  exit "$status"
fi

# Mean step time of the progress lines after the run's first (whose step also built the graph);
# TrainAccuracy: the last table's average Euler error at its longest horizon (lower is better).
ms_per_step=$(awk '/^step [0-9]+; step_loss:/ { t = $5; sub(/^\(/, "", t)
                    if (n++) { sum += t; k++ } else first = t }
                   END { if (k) printf "%.2f", sum / k; else if (n) printf "%.2f", first }' "$log")
ActualLoss=$(awk '/^step [0-9]+; step_loss:/ { loss = $4 } END { print loss }' "$log")
train_accuracy=$(awk -F'|' '/^average +\|/ { for (i = 2; i < NF; i++) { v = $i; gsub(/ /, "", v)
                              if (v != "n/a" && v != "") last = v } }
                             END { print last }' "$log")
[ -n "$ms_per_step" ] || fail "no progress line in $log"
FPS=$(awk -v b="$batch_size" -v r="$RANK_SIZE" -v ms="$ms_per_step" 'BEGIN { printf "%.2f", b * r * 1000 / ms }')
CaseName="${Network}_bs${batch_size}_${RANK_SIZE}p_${case_type}"
grep -E '^step [0-9]+; step_loss:' "$log" | awk '{ print $4 }' > "$out/${devices[0]}/train_${CaseName}_loss.txt"

echo "------------------ Final result ------------------"
echo "Final Performance images/sec : $FPS"
echo "Final Performance TrainingTime : $ms_per_step"
echo "Final Train Accuracy : $train_accuracy"
echo "E2E Training Duration sec : $e2e_time"
{
  echo "Network = $Network"
  echo "RankSize = $RANK_SIZE"
  echo "BatchSize = $batch_size"
  echo "DeviceType = $(uname -m)"
  echo "CaseName = $CaseName"
  echo "ActualFPS = $FPS"
  echo "TrainingTime = $ms_per_step"
  echo "ActualLoss = $ActualLoss"
  echo "E2ETrainingTime = $e2e_time"
  echo "TrainAccuracy = $train_accuracy"
} > "$out/${devices[0]}/$CaseName.log"
echo "Summary: $out/${devices[0]}/$CaseName.log"
