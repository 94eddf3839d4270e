#!/usr/bin/env bash
# ModelZoo entry point: a performance run (1000 steps) of TP-RNN on H3.6M,
# every NPU of the rank table (RANK_SIZE, default 8; RANK_TABLE_FILE).
#   bash test/train_performance_8p.sh --data_path=DIR [--precision_mode=force_fp16] [--help]
case_type=perf ranks=8 default_steps=1000
source "$(dirname "$0")/modelzoo.sh" "$@"
