"""Train or evaluate a TP-RNN on Penn Action 2D poses (docs/PROTOCOL.md §6).

  python tprnn_train_penn.py                                # train
  python tprnn_train_penn.py --sample --load N              # evaluate the validation set
  python tprnn_train_penn.py --model zero_velocity          # baseline PCK
"""

from tprnn.util import quiet_tensorflow  # noqa: F401  (first: TensorFlow loads without its banner)

from tprnn.datasets import penn
from tprnn.training import run
from tprnn.util.errors import run_main


def parse_flags(argv):
  return run.parse(penn, __file__, argv)


def main(argv):
  return run.main(penn, __file__, argv)


if __name__ == "__main__":
  raise SystemExit(run_main(main))
