"""Ctrl-C anywhere, as real processes get it: while TensorFlow loads, during --sample, during a
Penn evaluation, export and forecast, each is one line and exit 130 (SIGTERM 143) with nothing
half-written; and a file system that fills during training (a 16 MB tmpfs this test mounts) is
one line naming ENOSPC and the last good checkpoint, which still restores."""

import contextlib
import errno
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest
import tensorflow.compat.v1 as tf

from tprnn.training import checkpoints
from conftest import (H36M_DIR, HUMAN_SCRIPT, PENN_DIR, PENN_SCRIPT, ROOT, argv_of, experiment_dir,
                      human, need, penn, read_until, tiny)

pytestmark = pytest.mark.slow
INTERRUPTED = ("interrupted: stopped before the end; files are written whole or not at all, so "
               "nothing half-written is left")


def start(processes, command):
  """A script as a real process, with TF_CPP_MIN_LOG_LEVEL unset, as a user has it."""
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=dict(env, PYTHONUNBUFFERED="1"), cwd=ROOT)
  processes.procs.append(proc)
  return proc


def stopped(proc, signum=signal.SIGINT):
  """(exit status, stdout, stderr) once `signum` has stopped `proc`."""
  proc.send_signal(signum)
  out, err = proc.communicate(timeout=120)
  return proc.returncode, out, err


@contextlib.contextmanager
def reading(fifo, proc):
  """Waits until `proc` opens `fifo` to read (it is then inside its work, after start-up) and
  holds the write end open meanwhile: closed at once, it would end the input (EOF), and proc
  could finish before a signal arrives."""
  deadline = time.time() + 120
  while time.time() < deadline and proc.poll() is None:
    try:
      writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
      break
    except OSError as e:
      assert e.errno == errno.ENXIO, e  # no reader yet
      time.sleep(0.05)
  else:
    raise AssertionError("the process never opened {}".format(fifo))
  try:
    yield
  finally:
    os.close(writer)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_while_tensorflow_loads(processes, signum, tmp_path):
  proc = start(processes, [sys.executable, HUMAN_SCRIPT, "--data_dir", str(tmp_path)])
  time.sleep(1.0)  # TensorFlow takes seconds to load
  code, out, err = stopped(proc, signum)
  assert code == 128 + signum and out == ""
  assert err.strip().splitlines() == ["interrupted while TensorFlow loaded; nothing was written"]


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory):
  """The experiment directory of a 10-step run on the shared data, big enough that sampling
  all its windows takes seconds."""
  train_dir = tmp_path_factory.mktemp("shared_run")
  code, _, err = human(need(H36M_DIR), tiny(iterations=10, rnn_size=256, action="walking,eating",
                                            train_dir=train_dir))
  assert code == 0, err
  return experiment_dir(train_dir)


def test_during_sample(processes, shared_run, tmp_path):
  samples = str(tmp_path / "s.h5")
  proc = start(processes, [sys.executable, HUMAN_SCRIPT, "--experiment_dir", shared_run, "--load",
                           "10", "--sample", "--eval_protocol", "all", "--samples_file", samples])
  read_until(proc, r"^Experiment directory")  # the data is read; the model and windows follow
  code, out, err = stopped(proc)
  assert code == 130 and err.strip().splitlines() == [INTERRUPTED]
  assert os.listdir(str(tmp_path)) == []


def test_during_a_penn_evaluation(processes, tmp_path):
  code, _, err = penn(need(PENN_DIR), {"--rnn_size": "8", "--iterations": "1", "--seed": "1",
                                       "--train_dir": str(tmp_path)})
  assert code == 0, err
  samples = str(tmp_path / "penn.h5")
  proc = start(processes, [sys.executable, PENN_SCRIPT, "--experiment_dir", experiment_dir(tmp_path),
                           "--load", "1", "--sample", "--samples_file", samples])
  read_until(proc, r"^PCK@0.05 of checkpoint-1 on 76298 validation sequences")
  code, out, err = stopped(proc)
  assert code == 130 and err.strip().splitlines() == [INTERRUPTED]
  assert not [n for n in os.listdir(str(tmp_path)) if n.startswith("penn.")]  # penn/ is the run


def test_during_export(processes, shared_run, tmp_path):
  run = str(tmp_path / "run")
  os.makedirs(run)
  for name in os.listdir(shared_run):
    if name != "flags.json" and not os.path.isdir(os.path.join(shared_run, name)):
      os.symlink(os.path.join(shared_run, name), os.path.join(run, name))
  os.mkfifo(os.path.join(run, "flags.json"))  # export blocks reading it
  out_dir = str(tmp_path / "export")
  proc = start(processes, [sys.executable, os.path.join(ROOT, "export.py"), "--experiment_dir", run,
                           "--load", "10", "--out", out_dir])
  with reading(os.path.join(run, "flags.json"), proc):
    code, out, err = stopped(proc)
  assert code == 130 and err.strip().splitlines() == [INTERRUPTED]
  assert not os.path.exists(out_dir)


def test_during_forecast(processes, shared_run, tmp_path):
  export = str(tmp_path / "export")
  done = subprocess.run([sys.executable, os.path.join(ROOT, "export.py"), "--experiment_dir",
                         shared_run, "--load", "10", "--out", export], cwd=ROOT, timeout=300,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
  assert done.returncode == 0, done.stderr
  poses = str(tmp_path / "poses.txt")
  os.mkfifo(poses)  # forecast blocks reading it
  output = str(tmp_path / "forecast.npy")
  proc = start(processes, [sys.executable, os.path.join(ROOT, "forecast.py"), "--model", export,
                           "--input", poses, "--output", output])
  with reading(poses, proc):
    code, out, err = stopped(proc)
  assert code == 130 and err.strip().splitlines() == [INTERRUPTED]
  assert sorted(os.listdir(str(tmp_path))) == ["export", "poses.txt"]


@pytest.fixture
def small_file_system():
  """A 16 MB tmpfs this test mounts (skipped where mounting is not allowed); unmounted after."""
  folder = tempfile.mkdtemp()
  mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", folder],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
  if mounted.returncode != 0:
    os.rmdir(folder)
    pytest.skip("cannot mount a small tmpfs here: {}".format(mounted.stdout.strip()))
  try:
    yield folder
  finally:
    subprocess.run(["umount", "-l", folder])
    os.rmdir(folder)


def fill(folder):
  """Writes a file in `folder` until its file system is full."""
  with open(os.path.join(folder, "filler"), "wb") as f:
    try:
      while True:
        f.write(b"\0" * 65536)
        f.flush()
    except OSError as e:
      assert e.errno == errno.ENOSPC, e


def test_a_full_disk_is_one_line_naming_the_cause_and_what_was_kept(processes, h36m,
                                                                    small_file_system):
  train_dir = os.path.join(small_file_system, "experiments")
  proc = start(processes, [sys.executable, HUMAN_SCRIPT] + argv_of(tiny(
      data_dir=h36m, train_dir=train_dir, rnn_size=64, iterations=100000, test_every=10,
      save_every=10)))
  read_until(proc, r"^done in")  # checkpoint-10 is saved
  fill(small_file_system)
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 1
  (line,) = err.strip().splitlines()
  assert line.startswith("error: ") and "No space left on device (ENOSPC)" in line, line
  kept = line.rsplit("(last good checkpoint: ", 1)[1].rstrip(")")
  directory = experiment_dir(train_dir)
  assert kept == checkpoints.path(directory, checkpoints.steps(directory)[-1])
  assert tf.train.list_variables(kept)  # it restores
  assert not [n for n in os.listdir(directory) if "tempstate" in n or ".tmp" in n]

