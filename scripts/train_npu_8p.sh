#!/usr/bin/env bash
# Data-parallel training on the NPUs of one Ascend 910 server, one process
# per device, as ModelZoo cards do: HCCL averages the gradients (--dist npu).
#
#   bash scripts/train_npu_8p.sh tprnn_train_human.py [flags...]
#   RANK_TABLE_FILE=/path/hccl_4p.json RANK_SIZE=4 bash scripts/train_npu_8p.sh tprnn_train_penn.py
#
# HCCL's world is every rank of the rank table, so RANK_SIZE (default 8) must
# be their number. Rank r drives the device the table gives rank r (its
# device_id) and logs to $LOG_DIR/<device>/train_<device>.log (LOG_DIR default:
# logs). Rank 0 prints the progress and tables and writes the checkpoints.
# --batch_size is per device. The table's server_id and device_ip must be this
# server's (device IPs: /etc/hccn.conf). PYTHON (default python3.7, else
# python3) runs each rank. RANK_TABLE_FILE and LOG_DIR are relative to where
# you are; paths among the flags, to the repository, where the ranks run.
# Ctrl-C or SIGTERM stops every rank at one step (rank 0 saves); a failing rank
# stops the others.
set -u
fail() { echo "error: $*" >&2; exit 1; }
root=$(cd "$(dirname "$0")/.." && pwd)

script=${1:-}
[ -n "$script" ] || fail "usage: bash scripts/train_npu_8p.sh tprnn_train_human.py|tprnn_train_penn.py [flags...]"
[ -f "$script" ] || script="$root/$script"
[ -f "$script" ] || fail "training script ${1} not found"
shift
script=$(realpath "$script")
[ -z "${RANK_TABLE_FILE:-}" ] || RANK_TABLE_FILE=$(realpath -m "$RANK_TABLE_FILE")
logs=$(realpath -m "${LOG_DIR:-logs}")
cd "$root"
# Ascend's TF 1.15 runs on Python 3.7: python3.7 where it runs, else python3.
python=${PYTHON:-$(python3.7 -c "" >/dev/null 2>&1 && echo python3.7 || echo python3)}
export RANK_SIZE=${RANK_SIZE:-8}
[[ $RANK_SIZE =~ ^[1-9][0-9]*$ ]] || fail "RANK_SIZE=$RANK_SIZE: expected a number of devices, 1 or more"
export RANK_TABLE_FILE=${RANK_TABLE_FILE:-$PWD/scripts/rank_table_8p.json}
export JOB_ID=${JOB_ID:-10087}
export HCCL_CONNECT_TIMEOUT=${HCCL_CONNECT_TIMEOUT:-600}
# Ranks 1.. wait inside HCCL while rank 0 evaluates or saves: allow an hour, twice
# HCCL's default of 1836 s. HCCL counts this in whole multiples of 68 s, at most 17340.
export HCCL_EXEC_TIMEOUT=${HCCL_EXEC_TIMEOUT:-3672}
if ! [[ $HCCL_EXEC_TIMEOUT =~ ^[1-9][0-9]*$ ]] || (( HCCL_EXEC_TIMEOUT < 68 || HCCL_EXEC_TIMEOUT > 17340 )); then
  fail "HCCL_EXEC_TIMEOUT=$HCCL_EXEC_TIMEOUT: expected whole seconds in 68..17340"
fi
if (( HCCL_EXEC_TIMEOUT % 68 )); then
  echo "warning: HCCL_EXEC_TIMEOUT=$HCCL_EXEC_TIMEOUT is not a multiple of 68: HCCL waits $(( HCCL_EXEC_TIMEOUT / 68 * 68 )) s" >&2
fi
devices=$("$python" -m tprnn.parallel.rank_table "$RANK_TABLE_FILE" "$RANK_SIZE") || exit 1
read -r -a device_of <<< "$devices"

# Stops every rank still running: SIGTERM (each stops at its next step, rank 0
# saves), then SIGKILL for those still running after $1 seconds.
stop_all() {
  local running
  running=$(jobs -rp)
  [ -n "$running" ] && kill -TERM $running 2>/dev/null
  for ((waited = 0; waited < $1 && $(jobs -rp | wc -l) > 0; waited++)); do sleep 1; done
  running=$(jobs -rp)
  [ -n "$running" ] && kill -KILL $running 2>/dev/null
  wait
}
# Interrupted, healthy ranks stop at their next step, which may follow a long
# evaluation on rank 0; after a failure, a rank waiting in HCCL for the dead one
# cannot stop by itself.
FAILURE_GRACE_SECS=15
interrupted() { echo "Interrupted: stopping all ranks" >&2; stop_all "$HCCL_EXEC_TIMEOUT"; exit $((128 + $1)); }
trap 'interrupted 2' INT
trap 'interrupted 15' TERM
pids=()
for ((rank = 0; rank < RANK_SIZE; rank++)); do
  device=${device_of[$rank]}
  mkdir -p "$logs/$device" || fail "cannot create the log directory $logs/$device"
  RANK_ID=$rank ASCEND_DEVICE_ID=$device DEVICE_ID=$device \
    "$python" "$script" --device npu --dist npu "$@" > "$logs/$device/train_$device.log" 2>&1 &
  pids+=($!)
done
echo "Started $RANK_SIZE ranks on devices ${device_of[*]} (pids ${pids[*]}); logs in $logs/<device>/train_<device>.log"

# A rank stopped by a signal (128 + 2 or 15) stops the others at the same step.
status=0
for ((done_ranks = 0; done_ranks < RANK_SIZE; done_ranks++)); do
  wait -n; code=$?
  if (( code == 130 || code == 143 )); then
    status=$code
  elif (( code != 0 )); then
    echo "error: a rank exited with status $code; stopping all ranks (see $logs/*/train_*.log)" >&2
    stop_all "$FAILURE_GRACE_SECS"
    exit 1
  fi
done
exit $status
