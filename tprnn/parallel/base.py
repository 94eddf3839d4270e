"""The backend of one process, and the base of the others: every
collective is the identity. Rank 0 alone resolves the seed (sent to every
worker), prints, evaluates, writes summaries and checkpoints; the others wait
in on_rank0 (collective.py and npu.py say how)."""

from tprnn.parallel.cluster import DistributedError  # noqa: F401  (raised by every backend)


class Backend(object):
  """What a training graph and loop need from the workers around them."""

  def __init__(self, cluster):
    self.rank, self.size = cluster.rank, cluster.size
    self._seed = None  # (rank 0's feed or None, the broadcast of it) once build_sync ran

  def device(self):
    """The device scope of this worker's graph ('' = TensorFlow's choice)."""
    return ""

  def session_config(self, config):
    return config

  def target(self, config):
    """The session target: '' for an in-process session."""
    return ""

  def averaged(self, optimizer):
    """The gradient pipeline's averaging stage (tprnn.gradients):
    `optimizer` with its gradients averaged across workers."""
    return optimizer

  def mean(self, tensors):
    """Element-wise mean over workers of each tensor in `tensors`."""
    return list(tensors)

  def build_sync(self, variables):
    """Builds what keeps the workers in step: an op giving every worker rank
    0's values of `variables` (returned; None where there is nothing to do),
    the broadcast of share_seed and what the others wait on in on_rank0."""
    return None

  def share_seed(self, sess, seed):
    """Rank 0's `seed` (0..2^32-1), on every worker; `seed` is ignored elsewhere."""
    if self._seed is None:
      return seed
    feed, broadcast = self._seed
    high, low = self.run(sess, broadcast, {feed: halves(seed)} if self.rank == 0 else None)
    return int(high) << 16 | int(low)

  def run(self, sess, fetches, feed_dict=None):
    """sess.run of a step holding collectives."""
    return sess.run(fetches, feed_dict)

  def on_rank0(self, sess, work):
    """Runs work() on rank 0 while the other workers wait; returns its result
    on rank 0, None elsewhere."""
    return work()


class OneProcess(Backend):
  """--dist none: a single worker."""


def halves(seed):
  """seed (< 2^32) as two int32 values, which every collective carries."""
  return [seed >> 16, seed & 0xFFFF]
