"""Train or evaluate a TP-RNN on CMU-Mocap exponential-map poses (docs/PROTOCOL.md §9).

  python tprnn_train_cmu.py --action walking,running        # train (50 frames in, 25 out)
  python tprnn_train_cmu.py --action walking,running --sample --load N   # evaluate, samples.h5
  python tprnn_train_cmu.py --action walking,running --model zero_velocity   # baseline tables
"""

from tprnn.util import quiet_tensorflow  # noqa: F401  (first: TensorFlow loads without its banner)

from tprnn.datasets import cmu
from tprnn.training import run
from tprnn.util.errors import run_main


def parse_flags(argv):
  return run.parse(cmu, __file__, argv)


def main(argv):
  return run.main(cmu, __file__, argv)


if __name__ == "__main__":
  raise SystemExit(run_main(main))
