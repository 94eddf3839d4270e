"""Seeds: the run's one seed, resolved on rank 0 (and sent to the others by
the backend), and the random state of every draw, a function of (seed, step)
so that every worker draws the same global batch and a resumed run draws the
batches the uninterrupted run would have."""

import os

import numpy as np

from tprnn.config import MAX_SEED

TRAINING, EVALUATION = 0, 1  # batch_rng streams: training batches, evaluation draws


def resolve(seed, recorded=None):
  """--seed, else the seed `recorded` by the run being resumed, else a new
  one; printed."""
  if seed is None and recorded is not None:
    print("Seed: {} (the resumed run's)".format(recorded))
    return recorded
  if seed is None:
    seed = int.from_bytes(os.urandom(4), "little") % 2 ** 31
  print("Seed: {}".format(seed))
  return seed


def graph_seed(seed, rank):
  """The graph-level seed of worker `rank`: rank 0's seed there; elsewhere
  only dropout masks use it (the initial weights are rank 0's, broadcast), so
  each rank draws its own. None (the seed arrives later): TensorFlow's."""
  if rank == 0 or seed is None:
    return seed
  return (seed + rank) % (MAX_SEED + 1)


def batch_rng(seed, step, stream=TRAINING):
  """The random state of one step's draws of `stream`."""
  return np.random.RandomState([seed, step, stream])
