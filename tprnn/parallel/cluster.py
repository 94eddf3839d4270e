"""Which workers a run has and which one this process is: the Cluster that
the flags and the environment describe, each backend's rules checked before
anything starts.

  none        one process, what runs without these flags;
  collective  TensorFlow's own runtime: a tf.distribute.Server per worker and
              collective all-reduce / broadcast ops, no parameter server;
  npu         Ascend HCCL through npu_bridge, one process per NPU.
"""

import collections
import os
import re

from tprnn.parallel import rank_table
from tprnn.util import devices
from tprnn.util import errors

BACKENDS = ("auto", "none", "collective", "npu")
DEFAULT_TIMEOUT_S = 300

Cluster = collections.namedtuple("Cluster", [
    "backend",    # none, collective or npu
    "rank",       # this worker's index; rank 0 prints, evaluates and saves
    "size",       # number of workers
    "hosts",      # collective: host:port of every worker, in rank order
    "timeout_s",  # how long a collective may wait for a peer
    "device_id",  # npu: the Ascend device of this process
])


ONE_PROCESS = Cluster("none", 0, 1, [], DEFAULT_TIMEOUT_S, None)


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
    return ONE_PROCESS
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
  return ONE_PROCESS


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


def check_run(cluster, flags, placement):
  """What may run on several workers, and how they are asked for."""
  several = flags.workers > 1 or cluster.size > 1
  if several and (flags.sample or flags.model == "zero_velocity"):
    raise DistributedError("--sample and --model zero_velocity run in one process; drop "
                           "--workers, --worker_hosts and RANK_SIZE")
  if flags.workers > 1 and (cluster.backend != "none" or flags.dist not in ("auto", "collective")):
    raise DistributedError("--workers {} starts its own local collective workers: drop "
                           "--worker_hosts and use --dist auto or collective".format(flags.workers))
  if cluster.backend == "npu" and placement and placement.device != "npu":
    raise DistributedError("--dist npu needs --device npu (or auto with npu_bridge)")


def describe(cluster):
  """One line: the backend and this worker's place in it."""
  if cluster.backend == "none":
    return "Distributed: no (one process)"
  where = (cluster.hosts[cluster.rank] if cluster.backend == "collective"
           else "device {}".format(cluster.device_id))
  return "Distributed: {} backend, worker {} of {} ({})".format(
      cluster.backend, cluster.rank, cluster.size, where)
