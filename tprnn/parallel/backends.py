"""The backend object of a resolved Cluster (see cluster.py)."""

from tprnn.parallel.base import OneProcess
from tprnn.parallel.collective import Collective
from tprnn.parallel.npu import Npu


def make(cluster, placement):
  """The backend of `cluster` for a graph on the device of `placement`."""
  if cluster.backend == "collective":
    return Collective(cluster)
  if cluster.backend == "npu":
    return Npu(cluster, placement.npu)
  return OneProcess(cluster)
