"""Shared test helpers: paths to ../shared, the tiny run's flags and running the scripts
in-process, synthetic H3.6M and Penn label files and subsets of the shared labels, Ascend's real
npu_bridge (in-process or for processes), processes stopped whatever happens."""

import contextlib
import importlib
import io
import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

import ascend_adapter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")


def data_dir(*parts):
  """A reference data folder: ../shared's, else this repository's data/ (what the download
  scripts fetch), so a user with the data runs those tests too."""
  shared, own = os.path.join(SHARED, "data", *parts), os.path.join(ROOT, "data", *parts)
  return own if not os.path.exists(shared) and os.path.exists(own) else shared


H36M_DIR = data_dir("h3.6m", "dataset")
PENN_DIR = data_dir("Penn_Action", "labels")
REFERENCE = os.path.join(SHARED, "reference")
HUMAN_INDEX = os.path.join(REFERENCE, "published_checkpoints", "human", "checkpoint-92000")
HUMAN_SCRIPT = os.path.join(ROOT, "tprnn_train_human.py")
PENN_SCRIPT = os.path.join(ROOT, "tprnn_train_penn.py")
CMU_SCRIPT = os.path.join(ROOT, "tprnn_train_cmu.py")
CMU_DIR = data_dir("cmu_mocap")
PENN_CHECKPOINT = os.path.join(REFERENCE, "published_checkpoints", "penn", "checkpoint-63000")

sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("PYTEST_XDIST_WORKER"):  # pytest -n N: one core's threads per worker and process
  for name in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(name, "1")


def need(path):
  """Skips the test when a reference file is absent (a user's clone without the data)."""
  if not os.path.exists(path):
    pytest.skip("{} not found: the reference data is in ../shared in CI, or fetch it with "
                "data/download_*.sh".format(path))
  return path


def run_script(module, argv):
  """Runs a training script's main in-process through run_main.
  Returns (exit code, stdout, stderr)."""
  from tprnn.util import errors
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = errors.run_main(module.main, argv)
  return code or 0, out.getvalue(), err.getvalue()


# A model small enough for many runs: 8 LSTM units, 9 encoder and 10 decoder frames. A test file
# that needs other flags says how its runs differ: tiny(seed="11", ...).
TINY = {"--action": "walking", "--rnn_size": "8", "--seq_length_in": "10",
        "--seq_length_out": "10", "--seed": "7", "--learning_rate": "0.05"}

DROP = object()  # a flag value for with_flags: leave the flag out


def with_flags(flags, **changes):
  """The flag mapping `flags` with `changes`, name=value keywords without the dashes: None is a bare
  boolean flag, DROP leaves the flag out, any other value is passed as its str."""
  merged = dict(flags)
  for name, value in changes.items():
    merged["--" + name] = value if value is None or value is DROP else str(value)
  return {name: value for name, value in merged.items() if value is not DROP}


def tiny(**changes):
  """TINY with `changes` (see with_flags)."""
  return with_flags(TINY, **changes)


# The runs of test_recovery_*.py: TINY at the default learning rate (0.005) and seed 11, with a
# table and a checkpoint every 10 steps.
RECOVERY = tiny(seed="11", test_every="10", save_every="10", learning_rate=DROP)


def script_main(module_name, data_dir, flags, argv, changes):
  """Runs training script `module_name`'s main in-process on `data_dir`: the flag mapping `flags`
  (e.g. TINY) with `changes` (see with_flags), then the raw arguments `argv`.
  Returns (exit code, stdout, stderr)."""
  merged = with_flags(dict({"--data_dir": str(data_dir)}, **(flags or {})), **changes)
  return run_script(importlib.import_module(module_name), argv_of(merged) + list(argv))


def human(data_dir, flags=None, argv=(), **changes):
  """tprnn_train_human.py's main on `data_dir` (see script_main)."""
  return script_main("tprnn_train_human", data_dir, flags, argv, changes)


def penn(data_dir, flags=None, argv=(), **changes):
  """tprnn_train_penn.py's main on the labels folder `data_dir` (see script_main)."""
  return script_main("tprnn_train_penn", data_dir, flags, argv, changes)


def cmu(data_dir, flags=None, argv=(), **changes):
  """tprnn_train_cmu.py's main on `data_dir` (see script_main)."""
  return script_main("tprnn_train_cmu", data_dir, flags, argv, changes)


def human_flags(argv=()):
  """tprnn_train_human.py's parsed flags, runtime settings (placement, ...) included, of a 4-unit
  walking model with the arguments `argv`; nothing runs."""
  from tprnn.training import run
  import tprnn_train_human
  return run.with_runtime(tprnn_train_human.parse_flags(["--action", "walking", "--rnn_size", "4"] +
                                                        list(argv)))


def losses(out):
  """[(step, loss)] of a run's progress lines, as printed ("0010", "0.1234")."""
  return re.findall(r"step (\d+); step_loss: ([0-9.]+)", out)


def experiment_dir(train_dir):
  """The one experiment directory under `train_dir` (it holds flags.json)."""
  (directory,) = [root for root, _, files in os.walk(str(train_dir)) if "flags.json" in files]
  return directory


def leftovers(directory):
  """Temporary or partial files left in `directory`."""
  return [f for f in os.listdir(directory) if "tmp" in f or "temp" in f]


@pytest.fixture(scope="session")
def h36m(tmp_path_factory):
  """A synthetic dataset (write_h36m) whose sequences hold the SRNN windows."""
  return write_h36m(str(tmp_path_factory.mktemp("h36m")), frames=400)


def write_h36m(root, frames=300, bad_line=None, actions=("walking",)):
  """A synthetic dataset in the real layout: S*/{action}_{1,2}.txt of each of `actions`, 99 numbers a
  line; `bad_line` ((subject, subaction), line number) gets 97 numbers (in walking's file)."""
  rng = np.random.RandomState(0)
  for s in (1, 5, 6, 7, 8, 9, 11):
    os.makedirs(os.path.join(root, "S{}".format(s)))
    for action in actions:
      for a in (1, 2):
        rows = [",".join(["%.5f"] * 99) % tuple(row) for row in rng.normal(0, 0.3, (frames, 99))]
        if bad_line and action == "walking" and (s, a) == bad_line[0]:
          rows[bad_line[1] - 1] = ",".join(["0.1"] * 97)
        with open(os.path.join(root, "S{}".format(s), "{}_{}.txt".format(action, a)), "w") as f:
          f.write("\n".join(rows) + "\n")
  return root


def penn_labels(folder, videos):
  """Makes `folder`, a labels folder holding links to the shared label files of `videos` (their
  numbers). Returns its path."""
  need(PENN_DIR)
  os.makedirs(str(folder))
  for video in videos:
    name = "{:04d}.mat".format(video)
    os.symlink(os.path.join(PENN_DIR, name), os.path.join(str(folder), name))
  return str(folder)


def penn_validation_videos(count):
  """The first `count` shared Penn videos whose label file marks them validation (train -1), as
  scipy reads it."""
  import scipy.io
  need(PENN_DIR)
  found, video = [], 0
  while len(found) < count:
    video += 1
    label = scipy.io.loadmat(os.path.join(PENN_DIR, "{:04d}.mat".format(video)),
                             variable_names=["train"], squeeze_me=True)
    if int(label["train"]) != 1:
      found.append(video)
  return found


def write_penn_label(path, frames=40, train=1, seed=None, **override):
  """A synthetic Penn label file: random x, y and visibility [frames, 13] (seed: `frames` unless
  given), `override` replacing keys (None: removing them). Returns what was written."""
  import scipy.io
  rng = np.random.RandomState(frames if seed is None else seed)
  label = {"x": rng.uniform(50, 300, (frames, 13)), "y": rng.uniform(20, 200, (frames, 13)),
           "visibility": (rng.uniform(size=(frames, 13)) > 0.2).astype(np.uint8),
           "train": train, "bbox": np.zeros((frames, 4)), "nframes": frames, "action": "jump"}
  label.update(override)
  for key in [k for k, v in override.items() if v is None]:
    del label[key]
  scipy.io.savemat(str(path), label)
  return label


@pytest.fixture(params=ascend_adapter.TAGS)
def adapter(request):
  """Ascend's real npu_bridge of each tag in ../shared (test/ascend_adapter.py), installed in this
  process for the test: the stand-in npu_bridge.npu_init module holding its classes."""
  need(ascend_adapter.adapter_path(request.param))
  try:
    yield ascend_adapter.install(request.param)
  finally:
    ascend_adapter.uninstall()


def adapter_python(directory, tag, hccl_dir=None):
  """(an executable running its arguments under the real adapter of `tag`, the environment it
  needs): a PYTHON for scripts that start ranks, sharing `hccl_dir` for their HCCL calls."""
  need(ascend_adapter.adapter_path(tag))
  python = os.path.join(str(directory), "python_with_npu_bridge")
  with open(python, "w") as f:
    f.write('#!/bin/sh\ncase "$1" in -m) exec "{0}" "$@";; esac  # needs no adapter\n'
            'exec "{0}" "{1}" "$@"\n'.format(sys.executable, ascend_adapter.__file__))
  os.chmod(python, 0o755)
  env = {ascend_adapter.TAG_ENV: tag, "HCCL_EXEC_TIMEOUT": "136"}  # 2 x 68 s, as HCCL counts
  if hccl_dir:
    os.makedirs(str(hccl_dir), exist_ok=True)
    env[ascend_adapter.HCCL_DIR_ENV] = str(hccl_dir)
  return python, env


def write_rank_table(path, devices, layout="1.0"):
  """An HCCL rank table of one server whose rank r drives devices[r], in CANN's 1.0 layout or the
  older group_list one."""
  entries = [{"device_id": str(d), "device_ip": "10.0.0.{}".format(d)} for d in devices]
  if layout == "1.0":
    table = {"version": "1.0", "server_count": "1", "status": "completed", "server_list": [
        {"server_id": "10.0.0.1", "device": [dict(e, rank_id=str(r)) for r, e in enumerate(entries)]}]}
  else:
    table = {"group_count": "1", "status": "completed", "group_list": [
        {"group_name": "worker", "instance_list": [{"devices": entries, "server_id": "10.0.0.1"}]}]}
  with open(str(path), "w") as f:
    json.dump(table, f)
  return str(path)


def run_command(command, env=None, timeout=120, cwd=None):
  """(exit status, stdout, stderr) of a command run in its own session (in folder `cwd`), which is
  killed afterwards by its process group: the command and every process it started."""
  proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {})),
                          start_new_session=True)
  try:
    out, err = proc.communicate(timeout=timeout)
  finally:
    try:
      os.killpg(proc.pid, signal.SIGKILL)  # the script and every rank it started
    except OSError:
      pass
    proc.wait()
  return proc.returncode, out, err


def argv_of(flags):
  """A flag mapping as an argument list (None: a bare boolean flag)."""
  return [x for name, value in flags.items() for x in ([name] if value is None else [name, value])]


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

  def start(self, command, env=None, **kwargs):
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
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


def assert_two_workers_equal_one_process(processes, script, flags, tmp_path):
  """Same seed: 2 workers x batch 4 and 1 process x batch 8 of `script` with
  `flags` print the same global losses and end with the same weights (with
  --max_gradient_norm 0.05 clipping is active: the losses' gradient norms are
  far above it)."""
  flags = dict(flags, **{"--iterations": "21", "--test_every": "100"})
  code, single, err = launcher_run(processes, script, dict(flags, **{
      "--batch_size": "8", "--train_dir": str(tmp_path / "one")}))
  assert code == 0, err
  code, double, err = launcher_run(processes, script, dict(flags, **{
      "--batch_size": "4", "--workers": "2", "--train_dir": str(tmp_path / "two")}))
  assert code == 0, err
  assert "Distributed: collective backend, worker 0 of 2" in double
  assert len(losses(single)) == 3 and losses(double) == losses(single)
  (one_dir,), (two_dir,) = checkpoint_dirs(str(tmp_path / "one")), checkpoint_dirs(str(tmp_path / "two"))
  one, two = weights(one_dir, 21), weights(two_dir, 21)
  assert sorted(one) == sorted(two)
  for name in one:
    np.testing.assert_allclose(two[name], one[name], atol=1e-5, err_msg=name)


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
  return [line for line in stderr.splitlines() if line.startswith("error:")]
