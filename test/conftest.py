"""Shared test helpers: paths to ../shared, running the scripts in-process,
synthetic H3.6M files, Ascend's real npu_bridge, and a stand-in for it."""

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import types

import numpy as np
import pytest

import ascend_adapter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
H36M_DIR = os.path.join(SHARED, "data", "h3.6m", "dataset")
PENN_DIR = os.path.join(SHARED, "data", "Penn_Action", "labels")
REFERENCE = os.path.join(SHARED, "reference")
HUMAN_INDEX = os.path.join(REFERENCE, "published_checkpoints", "human", "checkpoint-92000")
HUMAN_SCRIPT = os.path.join(ROOT, "tprnn_train_human.py")
PENN_SCRIPT = os.path.join(ROOT, "tprnn_train_penn.py")
PENN_CHECKPOINT = os.path.join(REFERENCE, "published_checkpoints", "penn", "checkpoint-63000")

sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def need(path):
  """Skips the test when a ../shared file is absent (a user's clone)."""
  if not os.path.exists(path):
    pytest.skip("{} not found: the ../shared reference data is only in CI".format(path))
  return path


def run_script(module, argv):
  """Runs a training script's main in-process through run_main.
  Returns (exit code, stdout, stderr)."""
  import errors
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = errors.run_main(module.main, argv)
  return code or 0, out.getvalue(), err.getvalue()


# A model small enough for many runs: 8 LSTM units, 9 encoder and 10 decoder frames.
TINY = {"--action": "walking", "--rnn_size": "8", "--seq_length_in": "10",
        "--seq_length_out": "10", "--seed": "7", "--learning_rate": "0.05"}


@pytest.fixture(scope="session")
def h36m(tmp_path_factory):
  """A synthetic dataset (write_h36m) whose sequences hold the SRNN windows."""
  return write_h36m(str(tmp_path_factory.mktemp("h36m")), frames=400)


def write_h36m(root, frames=300, bad_line=None):
  """A synthetic dataset in the real layout: S*/walking_{1,2}.txt, 99 numbers a line."""
  rng = np.random.RandomState(0)
  for s in (1, 5, 6, 7, 8, 9, 11):
    os.makedirs(os.path.join(root, "S{}".format(s)))
    for a in (1, 2):
      rows = [",".join("{:.5f}".format(x) for x in rng.normal(0, 0.3, 99)) for _ in range(frames)]
      if bad_line and (s, a) == bad_line[0]:
        rows[bad_line[1] - 1] = ",".join(["0.1"] * 97)
      with open(os.path.join(root, "S{}".format(s), "walking_{}.txt".format(a)), "w") as f:
        f.write("\n".join(rows) + "\n")
  return root


class StandInLossScaleOptimizer(object):
  """Records how the project wraps its optimizer; delegates the math."""
  instances = []

  def __init__(self, opt, loss_scale_manager, is_distributed=False):
    self.opt, self.manager, self.is_distributed = opt, loss_scale_manager, is_distributed
    StandInLossScaleOptimizer.instances.append(self)

  def compute_gradients(self, loss, var_list):
    return self.opt.compute_gradients(loss, var_list)

  def apply_gradients(self, grads_and_vars, global_step=None):
    return self.opt.apply_gradients(grads_and_vars, global_step=global_step)


class StandInLossScaleManager(object):
  def __init__(self, **kwargs):
    self.kwargs = kwargs


class StandInDistributedOptimizer(object):
  """npu_bridge's NPUDistributedOptimizer: a wrapper class (older CANN)."""

  def __init__(self, opt):
    self.opt = opt

  def compute_gradients(self, loss, var_list):
    return self.opt.compute_gradients(loss, var_list)

  def apply_gradients(self, grads_and_vars, global_step=None):
    return self.opt.apply_gradients(grads_and_vars, global_step=global_step)


def stand_in_hccl_ops(calls):
  """npu_bridge.hccl.hccl_ops whose collectives are identities, recording
  each call as (name, tensor names) in `calls`."""
  import tensorflow.compat.v1 as tf
  module = types.ModuleType("npu_bridge.hccl.hccl_ops")

  def broadcast(tensor, root_rank):
    calls.append(("broadcast", root_rank, [t.op.name for t in tensor]))
    return [tf.identity(t) for t in tensor]

  def allreduce(tensor, reduction):
    calls.append(("allreduce", reduction, [tensor.op.name]))
    return tf.identity(tensor)

  module.broadcast, module.allreduce = broadcast, allreduce
  return module


@pytest.fixture
def npu_bridge(monkeypatch):
  """A stand-in npu_bridge: npu_init (loss scaling, distributed optimizer
  wrappers; `wrapped` lists what npu_distributed_optimizer_wrapper got) and
  hccl.hccl_ops (`hccl_calls`)."""
  package = types.ModuleType("npu_bridge")
  npu_init = types.ModuleType("npu_bridge.npu_init")
  hccl = types.ModuleType("npu_bridge.hccl")
  npu_init.NPULossScaleOptimizer = StandInLossScaleOptimizer
  npu_init.ExponentialUpdateLossScaleManager = StandInLossScaleManager
  npu_init.NPUDistributedOptimizer = StandInDistributedOptimizer
  npu_init.wrapped = []
  npu_init.npu_distributed_optimizer_wrapper = lambda opt: npu_init.wrapped.append(opt) or opt
  npu_init.hccl_calls = []
  hccl.hccl_ops = stand_in_hccl_ops(npu_init.hccl_calls)
  package.npu_init, package.hccl = npu_init, hccl
  for name, module in (("npu_bridge", package), ("npu_bridge.npu_init", npu_init),
                       ("npu_bridge.hccl", hccl), ("npu_bridge.hccl.hccl_ops", hccl.hccl_ops)):
    monkeypatch.setitem(sys.modules, name, module)
  StandInLossScaleOptimizer.instances = []
  return npu_init


@pytest.fixture(params=ascend_adapter.TAGS)
def adapter(request):
  """Ascend's real npu_bridge of each tag in ../shared (test/ascend_adapter.py), installed in this
  process for the test: the stand-in npu_bridge.npu_init module holding its classes."""
  need(ascend_adapter.adapter_path(request.param))
  try:
    yield ascend_adapter.install(request.param)
  finally:
    ascend_adapter.uninstall()


def argv_of(flags):
  """A flag mapping as an argument list (None: a bare boolean flag)."""
  return [x for name, value in flags.items() for x in ([name] if value is None else [name, value])]


def losses(out):
  return re.findall(r"step (\d+); step_loss: ([0-9.]+)", out)


def checkpoint_dirs(train_dir):
  return sorted(root for root, _, files in os.walk(train_dir)
                if any(f.startswith("checkpoint-") for f in files))


def weights(directory, step, prefix="checkpoint"):
  """{name: value} of <prefix>-`step` in `directory`."""
  import tensorflow.compat.v1 as tf
  reader = tf.train.load_checkpoint(os.path.join(directory, "{}-{}".format(prefix, step)))
  return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def alive(pid):
  """Whether `pid` is still one of this project's scripts (not a reused PID)."""
  try:
    with open("/proc/{}/cmdline".format(pid), "rb") as f:
      return b"tprnn_train" in f.read()
  except OSError:
    return False


class Processes(object):
  """Processes a test starts, each stopped by its PID at the end, whatever
  happens; the workers a launcher names on its first line too."""

  def __init__(self):
    self.procs, self.worker_pids = [], []

  def start(self, command, **kwargs):
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, **kwargs)
    self.procs.append(proc)
    return proc

  def stop_all(self):
    for proc in self.procs:
      if proc.poll() is None:
        proc.kill()
        proc.wait()
    for pid in self.worker_pids:
      if alive(pid):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def processes():
  p = Processes()
  try:
    yield p
  finally:
    p.stop_all()


def launcher_run(processes, script, flags, timeout=240):
  """Runs `script` with `flags` (a mapping) to the end, noting the PIDs of
  the workers it starts. Returns (exit code, stdout, stderr)."""
  proc = processes.start([sys.executable, script] + argv_of(flags))
  out = []
  for line in proc.stdout:
    out.append(line)
    found = re.match(r"Started \d+ workers on \S+ \(pids ([0-9 ]+)\)", line)
    if found:
      processes.worker_pids += [int(p) for p in found.group(1).split()]
  proc.wait(timeout=timeout)
  return proc.returncode, "".join(out), proc.stderr.read()


def read_until(proc, pattern):
  """Lines of proc's stdout up to the first matching `pattern`."""
  lines = []
  for line in proc.stdout:
    lines.append(line)
    if re.search(pattern, line):
      return "".join(lines)
  raise AssertionError("process ended before printing {!r}:\n{}".format(pattern, "".join(lines)))


def error_lines(stderr):
  assert "Traceback" not in stderr, stderr
  return [l for l in stderr.splitlines() if l.startswith("error:")]
