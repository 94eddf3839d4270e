#!/usr/bin/env bash
# Data-parallel training on the NPUs of one Ascend 910 server, one process
# per device, as ModelZoo cards do: HCCL averages the gradients (--dist npu).
#
#   bash scripts/train_npu_8p.sh tprnn_train_human.py [flags...]
#   RANK_TABLE_FILE=/path/hccl_8p.json RANK_SIZE=4 bash scripts/train_npu_8p.sh tprnn_train_penn.py
#
# Rank r drives the device the rank table gives rank r (its device_id) and logs
# to $LOG_DIR/<device>/train_<device>.log (LOG_DIR default: logs). Rank 0 prints
# the progress and tables and writes the checkpoints. --batch_size is per device.
# The rank table's server_id and device_ip must be this server's (device IPs:
# /etc/hccn.conf). PYTHON (default python3.7, else python3) runs each rank. Any
# rank that fails, or Ctrl-C, stops all of them.
set -u
fail() { echo "error: $*" >&2; exit 1; }
root=$(cd "$(dirname "$0")/.." && pwd)

script=${1:-}
[ -n "$script" ] || fail "usage: bash scripts/train_npu_8p.sh tprnn_train_human.py|tprnn_train_penn.py [flags...]"
[ -f "$script" ] || script="$root/$script"
[ -f "$script" ] || fail "training script ${1} not found"
shift
# Paths the caller gave are the caller's; the ranks run in the repository.
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
if ! [[ $HCCL_EXEC_TIMEOUT =~ ^[0-9]+$ ]] || (( HCCL_EXEC_TIMEOUT < 68 || HCCL_EXEC_TIMEOUT > 17340 )); then
  fail "HCCL_EXEC_TIMEOUT=$HCCL_EXEC_TIMEOUT: expected whole seconds in 68..17340"
fi
if (( HCCL_EXEC_TIMEOUT % 68 )); then
  echo "warning: HCCL_EXEC_TIMEOUT=$HCCL_EXEC_TIMEOUT is not a multiple of 68: HCCL waits $(( HCCL_EXEC_TIMEOUT / 68 * 68 )) s" >&2
fi
devices=$("$python" rank_table.py "$RANK_TABLE_FILE" "$RANK_SIZE") || exit 1
read -r -a device_of <<< "$devices"

# Stops every rank: SIGTERM (each stops at its next step, and rank 0 saves), then SIGKILL for
# those still running after $1 seconds: a rank waiting in HCCL for a dead peer cannot stop itself.
pids=()
stop_all() {
  kill -TERM "${pids[@]}" 2>/dev/null
  for ((waited = 0; waited < $1 && $(jobs -rp | wc -l) > 0; waited++)); do sleep 1; done
  kill -KILL "${pids[@]}" 2>/dev/null
  wait
}
# After Ctrl-C the ranks finish their step (rank 0 perhaps an evaluation) and save; after a
# failure, the others cannot go on.
INTERRUPT_GRACE_SECS=300 FAILURE_GRACE_SECS=15
trap 'echo "Interrupted: stopping all ranks" >&2; stop_all $INTERRUPT_GRACE_SECS; exit 130' INT TERM
for ((rank = 0; rank < RANK_SIZE; rank++)); do
  device=${device_of[$rank]}
  mkdir -p "$logs/$device" || fail "cannot create the log directory $logs/$device"
  RANK_ID=$rank ASCEND_DEVICE_ID=$device DEVICE_ID=$device \
    "$python" "$script" --device npu --dist npu "$@" > "$logs/$device/train_$device.log" 2>&1 &
  pids+=($!)
done
echo "Started $RANK_SIZE ranks on devices ${device_of[*]} (pids ${pids[*]}); logs in $logs/<device>/train_<device>.log"

status=0
for ((done_ranks = 0; done_ranks < RANK_SIZE; done_ranks++)); do
  wait -n; code=$?
  if [ "$code" -ne 0 ]; then
    echo "error: a rank exited with status $code; stopping all ranks (see $logs/*/train_*.log)" >&2
    status=1
    stop_all $FAILURE_GRACE_SECS
    break
  fi
done
exit $status
