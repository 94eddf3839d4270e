"""TensorFlow's collective runtime: one tf.distribute.Server per worker, ring
all-reduce of one fused vector per step, broadcasts from rank 0. While rank 0
evaluates or saves (minutes, for a whole Penn evaluation) it broadcasts a
heartbeat every second, so a dead peer fails the next collective at once and
a frozen one within --dist_timeout_s."""

import collections
import re
import threading

import tensorflow.compat.v1 as tf

from tprnn.parallel.base import Backend, DistributedError
from tprnn import gradients

JOB = "worker"
GROUP_KEY = 1
# Instance keys of the collective ops; every worker's graph builds the same ones.
GRADIENTS_KEY, STEP_VALUES_KEY, HEARTBEAT_KEY, SEED_KEY, BROADCAST_KEY = 1, 2, 3, 4, 10
HEARTBEAT_SECS = 1.0


class Collective(Backend):
  """Each worker's graph pinned to its own task of the cluster."""

  def __init__(self, cluster):
    super(Collective, self).__init__(cluster)
    self.hosts, self.timeout_s = cluster.hosts, cluster.timeout_s
    self._server = None
    self._heartbeat = None

  def device(self):
    return "/job:{}/replica:0/task:{}".format(JOB, self.rank)

  def session_config(self, config):
    config.experimental.collective_group_leader = "/job:{}/replica:0/task:0".format(JOB)
    # Each session talks to its own worker; collectives reach the peers directly.
    config.device_filters.append(self.device())
    return config

  def target(self, config):
    if self._server is None:
      try:
        self._server = tf.distribute.Server(tf.train.ClusterSpec({JOB: self.hosts}),
                                            job_name=JOB, task_index=self.rank, config=config)
      except (tf.errors.OpError, ValueError) as e:
        raise DistributedError("cannot start worker {} on {}: {}".format(
            self.rank, self.hosts[self.rank], _first_line(e)))
    return self._server.target

  def averaged(self, optimizer):
    return gradients.Averaged(optimizer, lambda tensors: self.all_reduce_mean(tensors, GRADIENTS_KEY))

  def mean(self, tensors):
    return self.all_reduce_mean(tensors, STEP_VALUES_KEY)

  def all_reduce_mean(self, tensors, instance_key):
    """One fused all-reduce: flatten, concatenate, average, split back."""
    tensors = list(tensors)
    if not tensors:
      return []
    flat = tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)  # [sum of sizes]
    mean = tf.raw_ops.CollectiveReduce(
        input=flat, group_size=self.size, group_key=GROUP_KEY, instance_key=instance_key,
        merge_op="Add", final_op="Div", subdiv_offsets=[0])
    parts = tf.split(mean, [t.shape.num_elements() for t in tensors])
    return [tf.reshape(p, tf.shape(t)) for p, t in zip(parts, tensors)]

  def build_sync(self, variables):
    """One broadcast per dtype of all `variables`, flattened and concatenated,
    and the heartbeat."""
    by_dtype = collections.OrderedDict()
    for v in variables:
      by_dtype.setdefault(v.dtype.base_dtype, []).append(v)
    ops = []
    for key, (dtype, group) in enumerate(by_dtype.items(), BROADCAST_KEY):
      flat = tf.concat([tf.reshape(v, [-1]) for v in group], axis=0)
      size = int(flat.shape[0])
      if self.rank == 0:
        ops.append(tf.raw_ops.CollectiveBcastSend(
            input=flat, group_size=self.size, group_key=GROUP_KEY, instance_key=key, shape=[size]))
        continue
      received = tf.raw_ops.CollectiveBcastRecv(
          T=dtype, group_size=self.size, group_key=GROUP_KEY, instance_key=key, shape=[size])
      parts = tf.split(received, [v.shape.num_elements() for v in group])
      ops += [tf.assign(v, tf.reshape(p, v.shape)) for v, p in zip(group, parts)]
    self._build_heartbeat()
    self._build_seed()
    return tf.group(ops)

  def _build_seed(self):
    common = dict(group_size=self.size, group_key=GROUP_KEY, instance_key=SEED_KEY, shape=[2])
    if self.rank == 0:
      feed = tf.placeholder(tf.int32, [2], name="seed")
      self._seed = (feed, tf.raw_ops.CollectiveBcastSend(input=feed, **common))
    else:
      self._seed = (None, tf.raw_ops.CollectiveBcastRecv(T=tf.int32, **common))

  def _build_heartbeat(self):
    """Rank 0 sends 1 (still busy) or 0 (done); the others receive it."""
    if self.rank == 0:
      beat = tf.placeholder(tf.float32, [], name="heartbeat")
      op = tf.raw_ops.CollectiveBcastSend(input=beat, group_size=self.size, group_key=GROUP_KEY,
                                          instance_key=HEARTBEAT_KEY, shape=[])
    else:
      beat = None
      op = tf.raw_ops.CollectiveBcastRecv(T=tf.float32, group_size=self.size, group_key=GROUP_KEY,
                                          instance_key=HEARTBEAT_KEY, shape=[])
    self._heartbeat = (beat, op)

  def run(self, sess, fetches, feed_dict=None):
    options = tf.RunOptions(timeout_in_ms=int(self.timeout_s * 1000))
    try:
      return sess.run(fetches, feed_dict, options=options)
    except tf.errors.DeadlineExceededError:
      raise DistributedError("no answer from {} within {:g} s (--dist_timeout_s): a peer is "
                             "frozen or gone; worker {} stops".format(
                                 self._peers(), self.timeout_s, self.rank))
    except (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError,
            tf.errors.InternalError, tf.errors.UnknownError) as e:
      task = _failed_task(e)
      raise DistributedError("lost {} ({}); worker {} stops".format(
          self._peers(task if task != self.rank else None), type(e).__name__, self.rank))

  def _peers(self, task=None):
    """'worker 1 (host:port)', or every other worker when `task` is unknown."""
    tasks = [task] if task is not None else [t for t in range(self.size) if t != self.rank]
    return ", ".join("worker {} ({})".format(t, self.hosts[t]) for t in tasks)

  def on_rank0(self, sess, work):
    beat, op = self._heartbeat
    if self.rank != 0:
      while self.run(sess, op) != 0:
        pass
      return None
    failures, done = [], threading.Event()
    thread = threading.Thread(target=self._send_heartbeats, args=(sess, beat, op, done, failures))
    thread.daemon = True
    thread.start()
    try:
      result = work()
    finally:
      done.set()
      thread.join()
    if failures:
      raise failures[0]
    return result

  def _send_heartbeats(self, sess, beat, op, done, failures):
    try:
      while not done.is_set():
        self.run(sess, op, {beat: 1.0})
        done.wait(HEARTBEAT_SECS)
      self.run(sess, op, {beat: 0.0})
    except DistributedError as e:
      failures.append(e)


def _failed_task(error):
  """The task a gRPC error names ('.../task:1'), or None."""
  found = re.search(r"/job:{}/replica:\d+/task:(\d+)".format(JOB), str(error))
  return int(found.group(1)) if found else None


def _first_line(error):
  lines = str(error).strip().splitlines()
  return lines[0] if lines else type(error).__name__

