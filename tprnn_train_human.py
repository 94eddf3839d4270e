"""Train or evaluate a TP-RNN on H3.6M exponential-map poses (docs/PROTOCOL.md §1-3).

  python tprnn_train_human.py                               # train, model card flags
  python tprnn_train_human.py --sample --load N             # evaluate, write samples.h5
  python tprnn_train_human.py --model zero_velocity         # baseline table
"""

from tprnn.util import quiet_tensorflow  # noqa: F401  (first: TensorFlow loads without its banner)

from tprnn.datasets import h36m
from tprnn.training import run
from tprnn.util.errors import run_main


def parse_flags(argv):
  return run.parse(h36m, __file__, argv)


def main(argv):
  return run.main(h36m, __file__, argv)


if __name__ == "__main__":
  raise SystemExit(run_main(main))
