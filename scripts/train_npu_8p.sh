#!/usr/bin/env bash
# Data-parallel training on the 8 NPUs of one Ascend 910 server, one process
# per device, as ModelZoo cards do: HCCL averages the gradients (--dist npu).
#
#   bash scripts/train_npu_8p.sh tprnn_train_human.py [flags...]
#   RANK_TABLE_FILE=/path/hccl_8p.json RANK_SIZE=4 bash scripts/train_npu_8p.sh tprnn_train_penn.py
#
# Each rank writes logs/rank_<i>.log (or $LOG_DIR/rank_<i>.log); rank 0 prints the progress and tables
# and writes the checkpoints. --batch_size is per device. The rank table's
# server_id and device_ip must be this server's (device IPs: /etc/hccn.conf).
# Any rank that fails, or Ctrl-C, stops all of them.
set -u
cd "$(dirname "$0")/.."
script=${1:?usage: bash scripts/train_npu_8p.sh tprnn_train_human.py|tprnn_train_penn.py [flags...]}
shift
export RANK_SIZE=${RANK_SIZE:-8}
export RANK_TABLE_FILE=${RANK_TABLE_FILE:-$PWD/scripts/rank_table_8p.json}
export JOB_ID=${JOB_ID:-10087}
# Ranks other than 0 wait in HCCL while rank 0 evaluates: allow for a full evaluation.
export HCCL_CONNECT_TIMEOUT=${HCCL_CONNECT_TIMEOUT:-600}
export HCCL_EXEC_TIMEOUT=${HCCL_EXEC_TIMEOUT:-1800}
python=${PYTHON:-python3.7}
logs=${LOG_DIR:-logs}
mkdir -p "$logs"

pids=()
stop_all() { kill "${pids[@]}" 2>/dev/null; wait; }
trap 'echo "Interrupted: stopping all ranks" >&2; stop_all; exit 130' INT TERM
for ((rank = 0; rank < RANK_SIZE; rank++)); do
  RANK_ID=$rank ASCEND_DEVICE_ID=$rank DEVICE_ID=$rank \
    "$python" "$script" --device npu --dist npu "$@" > "$logs/rank_$rank.log" 2>&1 &
  pids+=($!)
done
echo "Started $RANK_SIZE ranks (pids ${pids[*]}); logs in $logs/rank_<i>.log"

status=0
for ((done_ranks = 0; done_ranks < RANK_SIZE; done_ranks++)); do
  wait -n; code=$?
  if [ "$code" -ne 0 ]; then
    echo "error: a rank exited with status $code; stopping all ranks (see $logs/rank_*.log)" >&2
    status=1
    stop_all
    break
  fi
done
exit $status
