"""Ascend HCCL, the ModelZoo way: npu_distributed_optimizer_wrapper (or
NPUDistributedOptimizer on CANN releases without it) averages gradients;
hccl_ops.broadcast from root rank 0 after initialisation or restore. While
rank 0 works alone, the others wait in an HCCL all-reduce, whose timeout is
HCCL_EXEC_TIMEOUT."""

import importlib

import tensorflow.compat.v1 as tf

from tprnn.parallel.base import Backend, DistributedError
from tprnn.util import errors


class Npu(Backend):
  """One rank of an HCCL job on its NPU."""

  def __init__(self, cluster, npu_init):
    super(Npu, self).__init__(cluster)
    self.npu = npu_init
    try:
      self.hccl = importlib.import_module("npu_bridge.hccl.hccl_ops")
    except ImportError as e:
      raise DistributedError("--dist npu needs npu_bridge.hccl.hccl_ops ({})".format(e))

  def averaged(self, optimizer):
    if self.size == 1:
      return optimizer
    if hasattr(self.npu, "npu_distributed_optimizer_wrapper"):
      return self.npu.npu_distributed_optimizer_wrapper(optimizer)
    return self.npu.NPUDistributedOptimizer(optimizer)

  def mean(self, tensors):
    if self.size == 1:
      return list(tensors)
    return [self.hccl.allreduce(t, "sum") / float(self.size) for t in tensors]

  def build_sync(self, variables):
    """One broadcast per variable, the seed's and rank 0's done/failed all-reduce."""
    if self.size == 1:
      return None
    ops = []
    for v in variables:
      (received,) = self.hccl.broadcast(tensor=[v], root_rank=0)
      ops.append(tf.assign(v, received))
    feed = tf.placeholder_with_default(tf.zeros([2], tf.int32), [2], name="seed")
    self._seed = (feed, self.hccl.broadcast(tensor=[feed], root_rank=0)[0])
    failed = tf.placeholder_with_default(tf.zeros([1]), [1], name="rank0_failed")
    self._rank0_done = (failed, self.hccl.allreduce(failed, "sum"))
    return tf.group(ops)

  def on_rank0(self, sess, work):
    """Rank 0 works while the others wait in an all-reduce, which also tells
    them whether it failed: then they stop too, instead of waiting for it."""
    if self.size == 1:
      return work()
    failed, done = self._rank0_done
    ok = False
    try:
      result = work() if self.rank == 0 else None
      ok = True
    finally:  # rank 0's own error, if any, is the one it reports
      (rank0_failed,) = self.run(sess, done, {failed: [0.0 if ok else 1.0]})
    if rank0_failed > 0:
      raise DistributedError("rank 0 failed while it evaluated or saved (its log says why); "
                             "rank {} stops".format(self.rank))
    return result

  def run(self, sess, fetches, feed_dict=None):
    try:
      return sess.run(fetches, feed_dict)
    except (tf.errors.UnknownError, tf.errors.InternalError, tf.errors.AbortedError,
            tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as e:
      if self.size == 1:
        raise
      raise DistributedError("rank {} of {}: a step failed ({}); if a peer stopped or "
                             "HCCL_EXEC_TIMEOUT passed, the other ranks' logs say more".format(
                                 self.rank, self.size, errors.tf_error_reason(e)))

