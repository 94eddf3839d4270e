#!/usr/bin/env bash
# ModelZoo entry point: a performance run (1000 steps) of TP-RNN on H3.6M,
# one device (an NPU where npu_bridge imports, else a GPU or the CPU).
#   bash test/train_performance_1p.sh --data_path=DIR [--precision_mode=force_fp16] [--help]
case_type=perf ranks=1 default_steps=1000
source "$(dirname "$0")/modelzoo.sh" "$@"
