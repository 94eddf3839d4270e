"""Ascend's real TensorFlow adapter (npu_bridge, ../shared/reference/npu_bridge/<tag>, unmodified) on CPU
TensorFlow 2.x, so the project's NPU path runs against the adapter's own Python classes.

Only what the adapter's Python cannot have here is stubbed:
  - `_tf_adapter.so`, the adapter's native ops: the float-status ops (no overflow register on a CPU:
    they report an overflow on the training steps listed by $ASCEND_STUB_OVERFLOW_STEPS, e.g. "1,3",
    this process's steps counted from 0, on every rank or only on rank $ASCEND_STUB_OVERFLOW_RANK, and
    finite gradients on the others) and HCCL's all-reduce and broadcast, which exchange real values
    between the ranks of one machine through files in $ASCEND_STUB_HCCL_DIR (identity with one rank);
  - CANN's `hccl.manage.api` / `hccl.split.api` and TF 1.15's `tensorflow.contrib.util.loader`;
  - `npu_bridge.npu_init`, whose real module needs `tf.estimator` (gone from TF 2.21): a module
    holding the adapter's real classes instead.
While the adapter's modules load, `import tensorflow` means the v1 API, as on TF 1.15, and TF 1.15's
`variable_scope.variable` and `control_flow_ops.cond` exist.

In-process: install(tag) / uninstall(). As a program, it runs a script under the adapter:
  ASCEND_ADAPTER_TAG=r1.6.0 python test/ascend_adapter.py tprnn_train_human.py --device npu ...
"""

import importlib
import itertools
import os
import runpy
import sys
import threading
import time
import types

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADAPTERS = os.path.join(os.path.dirname(ROOT), "shared", "reference", "npu_bridge")
TAGS = ("r1.2.0", "r1.6.0")
HCCL_DIR_ENV = "ASCEND_STUB_HCCL_DIR"
OVERFLOW_STEPS_ENV, OVERFLOW_RANK_ENV = "ASCEND_STUB_OVERFLOW_STEPS", "ASCEND_STUB_OVERFLOW_RANK"
TAG_ENV = "ASCEND_ADAPTER_TAG"
# What the stand-in npu_init exposes: (name, adapter module holding it); r1.2.0 lacks the wrapper.
NPU_INIT_NAMES = (
    ("NPULossScaleOptimizer", "npu_bridge.estimator.npu.npu_loss_scale_optimizer"),
    ("ExponentialUpdateLossScaleManager", "npu_bridge.estimator.npu.npu_loss_scale_manager"),
    ("FixedLossScaleManager", "npu_bridge.estimator.npu.npu_loss_scale_manager"),
    ("NPUDistributedOptimizer", "npu_bridge.estimator.npu.npu_optimizer"),
    ("npu_distributed_optimizer_wrapper", "npu_bridge.estimator.npu.npu_optimizer"),
)
STUB_MODULES = ("hccl", "hccl.manage", "hccl.manage.api", "hccl.split", "hccl.split.api",
                "tensorflow.contrib", "tensorflow.contrib.util", "tensorflow.contrib.util.loader")
REDUCTIONS = {"sum": np.sum, "max": np.max, "min": np.min, "prod": np.prod}


def adapter_path(tag):
  return os.path.join(ADAPTERS, tag)


def available(tag):
  return os.path.isfile(os.path.join(adapter_path(tag), "npu_bridge", "hccl", "hccl_ops.py"))


# ----------------------------------------------------------------------------
# HCCL between the processes of one machine


class FileRendezvous(object):
  """Each rank writes its value of a collective call to `directory` and reads every rank's. A call is
  keyed by its op's creation order and how often that op ran: the same graph on every rank pairs them."""

  def __init__(self, directory, rank, size, timeout_s):
    self.directory, self.rank, self.size, self.timeout_s = directory, rank, size, timeout_s
    self.calls = {}
    self.lock = threading.Lock()

  def exchange(self, op_index, value):
    """Every rank's `value` of this call of op `op_index`, in rank order."""
    with self.lock:
      call = self.calls.get(op_index, 0)
      self.calls[op_index] = call + 1

    def name(rank):
      return os.path.join(self.directory, "op{}_call{}.rank{}.npy".format(op_index, call, rank))

    with open(name(self.rank) + ".tmp", "wb") as f:
      np.save(f, value)
    os.replace(name(self.rank) + ".tmp", name(self.rank))
    deadline = time.time() + self.timeout_s
    values = []
    for rank in range(self.size):
      while not os.path.exists(name(rank)):
        if time.time() > deadline:
          raise RuntimeError("stub HCCL: rank {} sent no value for op {} call {} within {} s".format(
              rank, op_index, call, self.timeout_s))
        time.sleep(0.002)
      values.append(np.load(name(rank)))
    return values


class StubOps(object):
  """What `tf.load_op_library('.../_tf_adapter.so')` gives the adapter. Every HCCL op built is
  recorded in `built` as (op, reduction or root rank, names of its inputs' ops or variables)."""

  def __init__(self, tf, rendezvous):
    self.tf, self.rendezvous, self.built = tf, rendezvous, []
    self.exchanges = 0  # numpy_function ops built: their creation order keys their calls

  def npu_alloc_float_status(self, name=None):
    """The status buffer as the device leaves it after the step (its get op writes the register into
    it in place): nonzero on the overflow steps, read each time the step runs."""
    steps, runs = overflow_steps(), itertools.count()

    def status():
      return np.full([8], float(next(runs) in steps), np.float32)
    out = self.tf.numpy_function(status, [], self.tf.float32, name=name or "NpuAllocFloatStatus")
    out.set_shape([8])
    return out

  def npu_get_float_status(self, input_data, name=None):
    return self.tf.zeros_like(input_data, name=name or "NpuGetFloatStatus")

  def npu_clear_float_status(self, input_data, name=None):
    return self.tf.zeros_like(input_data, name=name or "NpuClearFloatStatus")

  def _collective(self, tensor, combine):
    """tensor exchanged with the other ranks; combine(values in rank order) is the result."""
    if self.rendezvous is None:
      return self.tf.identity(tensor)
    index, self.exchanges = self.exchanges, self.exchanges + 1
    out = self.tf.numpy_function(lambda x: combine(self.rendezvous.exchange(index, x)).astype(x.dtype),
                                 [tensor], tensor.dtype)
    out.set_shape(tensor.shape)
    return out

  def hcom_all_reduce(self, input, reduction, fusion=1, fusion_id=-1, group="hccl_world_group",
                      name=None):
    if reduction not in REDUCTIONS:
      raise ValueError("HcomAllReduce: unknown reduction {!r}".format(reduction))
    names = [t.op.name for t in (input if isinstance(input, (list, tuple)) else [input])]
    tensor = self.tf.convert_to_tensor(input)
    out = self._collective(tensor, lambda values: REDUCTIONS[reduction](np.stack(values), axis=0))
    self.built.append(("hcom_all_reduce", reduction, names))
    return out

  def hcom_broadcast(self, input, root_rank, fusion=2, fusion_id=0, group="hccl_world_group",
                     name=None):
    names = [t.op.name for t in input]
    outs = [self._collective(self.tf.convert_to_tensor(t), lambda values: values[root_rank])
            for t in input]
    self.built.append(("hcom_broadcast", root_rank, names))
    return outs

  def __getattr__(self, op):
    raise AttributeError("the stub _tf_adapter.so has no op {}".format(op))


# ----------------------------------------------------------------------------
# Installing the adapter


class Installed(object):
  """What install() changed, to undo."""
  modules_before, gradients_before, aliases = None, None, ()


_installed = None


def install(tag, hccl_dir=None):
  """Makes `import npu_bridge.npu_init` give the real adapter's classes of `tag`; returns that module
  (its `stub_ops` attribute lists the native ops built). With `hccl_dir`, HCCL ops exchange values
  between the RANK_SIZE processes sharing that directory."""
  global _installed
  if _installed is not None:
    uninstall()
  import tensorflow.compat.v1 as tf
  from tensorflow.python.framework import ops
  from tensorflow.python.ops import control_flow_ops, variable_scope
  state = Installed()
  state.modules_before = set(sys.modules)
  state.gradients_before = set(ops._gradient_registry._registry)
  state.aliases = [(m, a) for m, a in ((variable_scope, "variable"), (control_flow_ops, "cond"))
                   if not hasattr(m, a)]
  variable_scope.variable = getattr(variable_scope, "variable", tf.Variable)
  control_flow_ops.cond = getattr(control_flow_ops, "cond", tf.cond)
  _installed = state

  stub = StubOps(tf, _rendezvous(hccl_dir))
  for name in STUB_MODULES:
    sys.modules[name] = types.ModuleType(name)
  sys.modules["tensorflow.contrib.util"].loader = sys.modules["tensorflow.contrib.util.loader"]
  package = types.ModuleType("npu_bridge")
  package.__path__ = [os.path.join(adapter_path(tag), "npu_bridge")]
  package.__file__ = os.path.join(package.__path__[0], "__init__.py")  # never run: needs tf.estimator
  sys.modules["npu_bridge"] = package

  real_load, real_tensorflow = tf.load_op_library, sys.modules["tensorflow"]
  tf.load_op_library = lambda path: stub if path.endswith("_tf_adapter.so") else real_load(path)
  sys.modules["tensorflow"] = tf  # the adapter's `import tensorflow` is TF 1.15's, the v1 API
  try:
    npu_init = types.ModuleType("npu_bridge.npu_init")
    for name, module in NPU_INIT_NAMES:
      value = getattr(importlib.import_module(module), name, None)
      if value is not None:
        setattr(npu_init, name, value)
    npu_init.hccl_ops = importlib.import_module("npu_bridge.hccl.hccl_ops")
  finally:
    tf.load_op_library, sys.modules["tensorflow"] = real_load, real_tensorflow
  npu_init.stub_ops, npu_init.tag = stub, tag
  package.npu_init, package.hccl = npu_init, sys.modules["npu_bridge.hccl"]
  sys.modules["npu_bridge.npu_init"] = npu_init
  return npu_init


def overflow_steps():
  """The training steps of this process (from 0) whose float status reports an overflow."""
  rank = os.environ.get(OVERFLOW_RANK_ENV)
  if rank is not None and rank != os.environ.get("RANK_ID", "0"):
    return set()
  return {int(step) for step in os.environ.get(OVERFLOW_STEPS_ENV, "").split(",") if step}


def _rendezvous(hccl_dir):
  if not hccl_dir:
    return None
  size = int(os.environ.get("RANK_SIZE", "1"))
  rank = int(os.environ.get("RANK_ID", "0"))
  return FileRendezvous(hccl_dir, rank, size, float(os.environ.get("HCCL_EXEC_TIMEOUT", "120")))


def uninstall():
  """Forgets the adapter's modules and gradient registrations, so another tag can load."""
  global _installed
  if _installed is None:
    return
  from tensorflow.python.framework import ops
  for name in set(sys.modules) - _installed.modules_before:
    if name.split(".")[0] in ("npu_bridge", "hccl") or name.startswith("tensorflow.contrib"):
      del sys.modules[name]
  registry = ops._gradient_registry._registry
  for op_type in set(registry) - _installed.gradients_before:
    del registry[op_type]
  for module, alias in _installed.aliases:
    delattr(module, alias)
  _installed = None


def main(argv):
  """Runs argv[0] as __main__ with the adapter of $ASCEND_ADAPTER_TAG installed."""
  os.environ.setdefault("TF_NUM_INTEROP_THREADS", "64")  # waiting HCCL calls must not hold every thread
  sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
  install(os.environ.get(TAG_ENV, TAGS[-1]), os.environ.get(HCCL_DIR_ENV))
  sys.argv = list(argv)
  runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
  main(sys.argv[1:])
