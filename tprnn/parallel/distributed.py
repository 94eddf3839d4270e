"""Data-parallel training across processes, hosts or NPUs, with the engines
the stack already has. Every worker holds a full copy of the model, trains on
its slice of one global batch and applies the same averaged gradient:

  none        one process, what runs without these flags;
  collective  TensorFlow's own runtime: a tf.distribute.Server per worker and
              collective all-reduce / broadcast ops, no parameter server;
  npu         Ascend HCCL through npu_bridge, one process per NPU.

Rank 0 alone resolves the seed (sent to every worker), prints, evaluates,
writes summaries and checkpoints. While it evaluates or saves (minutes, for
a whole Penn evaluation), the others wait: in the collective backend on a
heartbeat rank 0 broadcasts every second, so a dead peer fails the next
collective at once and a frozen one within --dist_timeout_s; on the NPU
inside an HCCL call, within HCCL_EXEC_TIMEOUT.
"""

import collections
import importlib
import os
import re
import threading

import tensorflow.compat.v1 as tf

from tprnn.util import devices
from tprnn.util import errors
from tprnn.parallel import rank_table

BACKENDS = ("auto", "none", "collective", "npu")
JOB = "worker"
GROUP_KEY = 1
# Instance keys of the collective ops; every worker's graph builds the same ones.
GRADIENTS_KEY, STEP_VALUES_KEY, HEARTBEAT_KEY, SEED_KEY, BROADCAST_KEY = 1, 2, 3, 4, 10
HEARTBEAT_SECS = 1.0
DEFAULT_TIMEOUT_S = 300

Cluster = collections.namedtuple("Cluster", [
    "backend",    # none, collective or npu
    "rank",       # this worker's index; rank 0 prints, evaluates and saves
    "size",       # number of workers
    "hosts",      # collective: host:port of every worker, in rank order
    "timeout_s",  # how long a collective may wait for a peer
    "device_id",  # npu: the Ascend device of this process
])


class DistributedError(errors.Error):
  """Bad distribution settings or a lost peer; one line for the user."""


def add_flags(parser):
  g = parser.add_argument_group("distributed training")
  g.add_argument("--dist", default="auto",
                 help="auto (npu when npu_bridge imports and RANK_SIZE > 1, collective when "
                      "more than one worker is configured, else none), none, collective or npu.")
  g.add_argument("--workers", type=int, default=1,
                 help="Start this many local worker processes on free loopback ports "
                      "(collective backend) and wait for them.")
  g.add_argument("--worker_hosts", default="",
                 help="Collective backend: host:port of every worker, comma-separated, in "
                      "rank order.")
  g.add_argument("--task_index", type=int, default=None,
                 help="Collective backend: this worker's rank. Default: $RANK_ID.")
  g.add_argument("--dist_timeout_s", type=float, default=DEFAULT_TIMEOUT_S,
                 help="A peer that does not answer for this long stops every worker.")


def resolve(flags, env=None):
  """The Cluster the flags and the environment (RANK_ID, RANK_SIZE,
  RANK_TABLE_FILE, ASCEND_DEVICE_ID / DEVICE_ID) describe."""
  env = os.environ if env is None else env
  if flags.dist not in BACKENDS:
    raise DistributedError("unknown --dist '{}': expected one of {}".format(
        flags.dist, ", ".join(BACKENDS)))
  if flags.dist_timeout_s <= 0:
    raise DistributedError("--dist_timeout_s must be positive, got {}".format(flags.dist_timeout_s))
  hosts = [h.strip() for h in flags.worker_hosts.split(",") if h.strip()]
  rank_size = _int_env(env, "RANK_SIZE", 1)
  if flags.workers > 1 and not hosts:  # the launcher itself, not a worker
    return Cluster("none", 0, 1, [], flags.dist_timeout_s, None)
  backend = flags.dist
  if backend == "auto":
    backend = ("npu" if rank_size > 1 and devices.import_npu_bridge() is not None
               else "collective" if len(hosts) > 1 else "none")
  if backend == "collective":
    return _collective_cluster(flags, hosts, env)
  if backend == "npu":
    return _npu_cluster(flags, rank_size, env)
  if hosts:
    raise DistributedError("--worker_hosts needs --dist collective (or auto), not --dist none")
  return Cluster("none", 0, 1, [], flags.dist_timeout_s, None)


def _int_env(env, name, default):
  text = env.get(name, "")
  if not text:
    return default
  try:
    return int(text)
  except ValueError:
    raise DistributedError("environment variable {}={!r} is not an integer".format(name, text))


def _collective_cluster(flags, hosts, env):
  if not hosts:
    raise DistributedError("--dist collective needs --worker_hosts host:port,host:port,... "
                           "(or --workers N for local workers)")
  bad = [h for h in hosts if not re.match(r"^[^:\s]+:\d+$", h)]
  if bad:
    raise DistributedError("--worker_hosts: '{}' is not host:port".format(bad[0]))
  rank = flags.task_index if flags.task_index is not None else _int_env(env, "RANK_ID", None)
  if rank is None:
    raise DistributedError("--dist collective needs --task_index (or $RANK_ID): this worker's "
                           "position in --worker_hosts")
  if not 0 <= rank < len(hosts):
    raise DistributedError("--task_index {} is not a position in --worker_hosts (0..{})".format(
        rank, len(hosts) - 1))
  return Cluster("collective", rank, len(hosts), hosts, flags.dist_timeout_s, None)


def _npu_cluster(flags, rank_size, env):
  """One rank of an HCCL job. Several ranks need what Ascend's adapter and HCCL
  read from the environment, checked here rather than failing inside them."""
  device_id = env.get("ASCEND_DEVICE_ID") or env.get("DEVICE_ID")
  if rank_size > 1:
    for name, what in (("RANK_TABLE_FILE", "the HCCL rank table of the devices (see "
                                           "scripts/rank_table_8p.json)"),
                       ("RANK_ID", "this process's rank, 0..{}".format(rank_size - 1)),
                       ("JOB_ID", "any job number, the same on every rank (Ascend's adapter reads "
                                  "it; the ModelZoo scripts use 10087)")):
      if not env.get(name):
        raise DistributedError("RANK_SIZE={} needs {}, {}".format(rank_size, name, what))
    if device_id is None:
      raise DistributedError("RANK_SIZE={} needs ASCEND_DEVICE_ID (or DEVICE_ID), this process's "
                             "NPU".format(rank_size))
    try:
      rank_table.device_ids(env["RANK_TABLE_FILE"], rank_size)
    except rank_table.RankTableError as e:
      raise DistributedError(str(e))
  rank = _int_env(env, "RANK_ID", 0)
  if not 0 <= rank < rank_size:
    raise DistributedError("RANK_ID={} is not below RANK_SIZE={}".format(rank, rank_size))
  return Cluster("npu", rank, rank_size, [], flags.dist_timeout_s, device_id)


def describe(cluster):
  if cluster.backend == "none":
    return "Distributed: no (one process)"
  where = (cluster.hosts[cluster.rank] if cluster.backend == "collective"
           else "device {}".format(cluster.device_id))
  return "Distributed: {} backend, worker {} of {} ({})".format(
      cluster.backend, cluster.rank, cluster.size, where)


def make(cluster, placement):
  """The backend object for a resolved Cluster and device Placement."""
  if cluster.backend == "collective":
    return Collective(cluster)
  if cluster.backend == "npu":
    return Npu(cluster, placement.npu)
  return Local(cluster)


# ----------------------------------------------------------------------------
# Backends


class Local(object):
  """One process: every collective is the identity."""

  def __init__(self, cluster):
    self.cluster = cluster
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

  def wrap_optimizer(self, optimizer):
    """Averages gradients across workers inside compute_gradients, so loss
    scaling, clipping and apply see the averaged gradient (here: nothing to
    average)."""
    return optimizer

  def mean(self, tensors, instance_key=STEP_VALUES_KEY):
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
    high, low = self.run(sess, broadcast, {feed: _halves(seed)} if self.rank == 0 else None)
    return int(high) << 16 | int(low)

  def run(self, sess, fetches, feed_dict=None):
    """sess.run of a step holding collectives."""
    return sess.run(fetches, feed_dict)

  def on_rank0(self, sess, work):
    """Runs work() on rank 0 while the other workers wait; returns its result
    on rank 0, None elsewhere."""
    return work()


class Collective(Local):
  """TensorFlow's collective runtime: one tf.distribute.Server per worker,
  each worker's graph pinned to its own task, ring all-reduce of one fused
  vector per step, broadcasts from rank 0."""

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

  def _all_reduce_mean(self, flat, instance_key):
    return tf.raw_ops.CollectiveReduce(
        input=flat, group_size=self.size, group_key=GROUP_KEY, instance_key=instance_key,
        merge_op="Add", final_op="Div", subdiv_offsets=[0])

  def wrap_optimizer(self, optimizer):
    compute_gradients = optimizer.compute_gradients

    def averaged_gradients(loss, var_list=None, **kwargs):
      pairs = compute_gradients(loss, var_list, **kwargs)
      present = [i for i, (g, _) in enumerate(pairs) if g is not None]
      means = dict(zip(present, self.mean([pairs[i][0] for i in present], GRADIENTS_KEY)))
      return [(means.get(i), v) for i, (_, v) in enumerate(pairs)]

    optimizer.compute_gradients = averaged_gradients
    return optimizer

  def mean(self, tensors, instance_key=STEP_VALUES_KEY):
    """One fused all-reduce: flatten, concatenate, average, split back."""
    tensors = list(tensors)
    if not tensors:
      return []
    flat = tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)  # [sum of sizes]
    sizes = [t.shape.num_elements() for t in tensors]
    parts = tf.split(self._all_reduce_mean(flat, instance_key), sizes)
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


class Npu(Local):
  """Ascend HCCL, the ModelZoo way: npu_distributed_optimizer_wrapper (or
  NPUDistributedOptimizer on CANN releases without it) averages gradients
  inside compute_gradients; hccl_ops.broadcast from root rank 0 after
  initialisation or restore. While rank 0 works alone, the others wait in an
  HCCL all-reduce, whose timeout is HCCL_EXEC_TIMEOUT."""

  def __init__(self, cluster, npu_init):
    super(Npu, self).__init__(cluster)
    self.npu = npu_init
    try:
      self.hccl = importlib.import_module("npu_bridge.hccl.hccl_ops")
    except ImportError as e:
      raise DistributedError("--dist npu needs npu_bridge.hccl.hccl_ops ({})".format(e))

  def wrap_optimizer(self, optimizer):
    if self.size == 1:
      return optimizer
    if hasattr(self.npu, "npu_distributed_optimizer_wrapper"):
      return self.npu.npu_distributed_optimizer_wrapper(optimizer)
    return self.npu.NPUDistributedOptimizer(optimizer)

  def mean(self, tensors, instance_key=STEP_VALUES_KEY):
    if self.size == 1:
      return list(tensors)
    return [self.hccl.allreduce(t, "sum") / float(self.size) for t in tensors]

  def build_sync(self, variables):
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


def _halves(seed):
  """seed (< 2^32) as two int32 values, which every collective carries."""
  return [seed >> 16, seed & 0xFFFF]


def _failed_task(error):
  """The task a gRPC error names ('.../task:1'), or None."""
  found = re.search(r"/job:{}/replica:\d+/task:(\d+)".format(JOB), str(error))
  return int(found.group(1)) if found else None


def _first_line(error):
  lines = str(error).strip().splitlines()
  return lines[0] if lines else type(error).__name__

