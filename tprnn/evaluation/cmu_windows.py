"""The test windows of CMU-Mocap (docs/PROTOCOL.md §9): one test sequence
per action, down-sampled by 2. `8` is the windows of ConvSeq2Seq, LTD and
MSR-GCN: RandomState(1234567890), made anew for each action, draws 8 starts
randint(0, T - 75) of 50 observed and 25 predicted frames (DMGNN's too at 25
predicted); `256` continues the same draws to 256 (PGBIG's test_sample_num
256 at 25 predicted); `all` is every window of 50 observed and `out`
predicted frames, stride 1 (MSR-GCN's and PGBIG's all, with 50 observed
frames instead of their 10)."""

import numpy as np

SEED = 1234567890
OBSERVED = 50  # frames before the first target frame of every window
DRAW_SPAN = 75  # 50 + 25: the draws leave room for 25 targets whatever --seq_length_out is
DRAWS = {"8": 8, "256": 256}
PROTOCOLS = ("8", "256", "all")


def shortest_sequence(target_len, protocol):
  """The fewest frames a test sequence needs for `protocol`'s windows."""
  return OBSERVED + target_len if protocol == "all" else DRAW_SPAN + 1


def anchors(length, target_len, protocol):
  """The first target frame of every window of a `length`-frame sequence."""
  if protocol == "all":
    return list(range(OBSERVED, length - target_len + 1))
  rng = np.random.RandomState(SEED)
  return [OBSERVED + rng.randint(0, length - DRAW_SPAN) for _ in range(DRAWS[protocol])]


def windows(sequence, source_len, target_len, protocol):
  """[N, source_len + target_len, D] windows of a [T, D] sequence: frames
  [a - source_len, a + target_len) of each anchor a."""
  return np.stack([sequence[a - source_len:a + target_len]
                   for a in anchors(len(sequence), target_len, protocol)])
