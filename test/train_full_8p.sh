#!/usr/bin/env bash
# ModelZoo entry point: full training (the model card's 100000 steps) of TP-RNN on H3.6M,
# every NPU of the rank table (RANK_SIZE, default 8; RANK_TABLE_FILE).
#   bash test/train_full_8p.sh --data_path=DIR [--precision_mode=force_fp16] [--help]
case_type=acc ranks=8 default_steps=100000
source "$(dirname "$0")/modelzoo.sh" "$@"
