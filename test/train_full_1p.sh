#!/usr/bin/env bash
# ModelZoo entry point: full training (the model card's 100000 steps) of TP-RNN on H3.6M,
# one device (an NPU where npu_bridge imports, else a GPU or the CPU).
#   bash test/train_full_1p.sh --data_path=DIR [--precision_mode=force_fp16] [--help]
case_type=acc ranks=1 default_steps=100000
source "$(dirname "$0")/modelzoo.sh" "$@"
