"""Faults that must end a run with one error line and nothing wrong on disk, each injected for
real: weights or predictions that are not finite, corrupt and truncated checkpoint files, a train
directory that is a file, read-only or full, and a samples file that cannot be written."""

import os
import re
import resource
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from tprnn.training import checkpoints
from conftest import (HUMAN_SCRIPT, RECOVERY, argv_of, error_lines, experiment_dir, human,
                      leftovers, weights, with_flags)


# ----------------------------------------------------------------------------
# Finite or nothing


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # 1e39 -> float32 inf, the fault
def test_run_diverging_on_its_last_step_saves_nothing_and_fails(h36m, tmp_path):
  # the loss of step 0 is finite; 1e39 is inf in float32, so its update is not
  code, out, err = human(h36m, RECOVERY, train_dir=tmp_path, iterations="1",
                         learning_rate="1e39")
  assert code == 1
  assert err == ("error: the weights are not finite after step 1 (last good checkpoint: "
                 "none)\n")
  assert not [f for _, _, fs in os.walk(str(tmp_path)) for f in fs if f.startswith("checkpoint")]


def nan_checkpoint(directory, source_step, step):
  """checkpoint-`step`: checkpoint-`source_step` with one output bias NaN."""
  values = weights(directory, source_step)
  values["dense_3_b"] = np.full_like(values["dense_3_b"], np.nan)
  graph = tf.Graph()
  with graph.as_default():
    variables = [tf.Variable(v, name=n) for n, v in values.items()]
    with tf.Session() as sess:
      sess.run(tf.variables_initializer(variables))
      tf.train.Saver().save(sess, os.path.join(directory, "checkpoint"), global_step=step)


@pytest.mark.slow
def test_sample_of_a_model_predicting_nan_reports_no_error_value(h36m, tmp_path):
  code, _, err = human(h36m, RECOVERY, train_dir=tmp_path, iterations="10")
  assert code == 0, err
  nan_checkpoint(experiment_dir(tmp_path), 10, 11)
  samples = tmp_path / "samples.h5"
  code, out, err = human(h36m, RECOVERY, train_dir=tmp_path, iterations="10", sample=None,
                         load="11", samples_file=samples)
  assert code == 1
  assert err.startswith("error: the model predicts non-finite values (NaN or inf)")
  assert "walking          |" not in out and not samples.exists()


# ----------------------------------------------------------------------------
# Damaged checkpoints, unusable directories and paths


@pytest.fixture
def trained(h36m, tmp_path):
  code, _, err = human(h36m, RECOVERY, train_dir=tmp_path, iterations="20")
  assert code == 0, err
  return experiment_dir(tmp_path)


@pytest.mark.parametrize("damage", ["garbage_index", "truncated_data", "missing_data"])
@pytest.mark.parametrize("mode", ["sample", "resume"])
@pytest.mark.slow
def test_damaged_checkpoint_is_one_line_and_writes_nothing(h36m, tmp_path, trained, damage, mode):
  path = checkpoints.path(trained, 20)
  if damage == "garbage_index":
    with open(path + ".index", "wb") as f:
      f.write(b"\x00not an index" * 10)
  elif damage == "truncated_data":
    data = path + ".data-00000-of-00001"
    os.truncate(data, os.path.getsize(data) // 2)
  else:
    os.remove(path + ".data-00000-of-00001")
  before = sorted(os.listdir(trained))
  samples = tmp_path / "s.h5"
  extra = ({"sample": None, "samples_file": samples} if mode == "sample" else {"more": "5"})
  code, _, err = human(h36m, RECOVERY, train_dir=tmp_path, iterations="20", load="20", **extra)
  assert code == 1
  (line,) = error_lines(err)
  assert line.startswith("error: cannot read {}: ".format(path)), line
  assert line.endswith("(corrupt or truncated files?)")
  assert sorted(os.listdir(trained)) == before and not samples.exists()


def test_train_dir_that_is_a_file(h36m, tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("x")
  code, _, err = human(h36m, RECOVERY, train_dir=blocker, iterations="5")
  assert code == 1
  assert re.match(r"error: cannot create the experiment directory {}/human/\S+: Not a "
                  r"directory\n$".format(re.escape(str(blocker))), err), err


def script(h36m, train_dir, **flags):
  """The command running the H3.6M script on RECOVERY's flags as a process of its own."""
  return [sys.executable, HUMAN_SCRIPT] + argv_of(with_flags(RECOVERY, data_dir=h36m,
                                                             train_dir=train_dir, **flags))


@pytest.mark.slow
def test_read_only_directory_fails_before_training(h36m, tmp_path):
  """Without CAP_DAC_OVERRIDE (dropped when the tests run as root) a 555
  directory is read-only for the script, as for any user."""
  train_dir = tmp_path / "ro"
  train_dir.mkdir()
  train_dir.chmod(0o555)
  command = script(h36m, train_dir, iterations="5")
  if os.geteuid() == 0:
    if not shutil.which("setpriv"):
      pytest.skip("running as root without setpriv, which drops the override of file permissions")
    caps = "-dac_override,-dac_read_search"
    command = ["setpriv", "--inh-caps=" + caps, "--bounding-set=" + caps, "--"] + command
  try:
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=120)
  finally:
    train_dir.chmod(0o755)
  assert result.returncode == 1
  (line,) = error_lines(result.stderr)
  assert re.match(r"error: cannot create the experiment directory {}/human/\S+: Permission "
                  r"denied$".format(re.escape(str(train_dir))), line), line
  assert "step 0000" not in result.stdout
  assert os.listdir(str(train_dir)) == []


def limit_file_size(limit):
  """A preexec_fn: files this process writes stop at `limit` bytes, with
  EFBIG instead of SIGXFSZ, as on a full disk."""
  def apply():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
  return apply


@pytest.mark.slow
def test_full_disk_while_saving_is_one_line_and_leaves_no_partial_files(h36m, tmp_path):
  result = subprocess.run(script(h36m, tmp_path, iterations="30", rnn_size="16"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=limit_file_size(100000),
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=120)
  assert result.returncode == 1
  (line,) = error_lines(result.stderr)
  assert "File too large" in line and line.endswith("(last good checkpoint: none)"), line
  directory = [root for root, dirs, _ in os.walk(str(tmp_path)) if "log" in dirs][0]
  assert checkpoints.steps(directory) == [] and not leftovers(directory)


@pytest.mark.parametrize("name,message", [
    ("missing/s.h5", "--samples_file {tmp}/missing/s.h5: directory {tmp}/missing does not exist"),
    ("folder", "--samples_file {tmp}/folder is a directory; give a file name"),
])
def test_bad_samples_file_fails_before_anything_runs(h36m, tmp_path, name, message):
  (tmp_path / "folder").mkdir()
  code, out, err = human(h36m, RECOVERY, train_dir=tmp_path, model="zero_velocity", sample=None,
                         samples_file=tmp_path / name)
  assert code == 1 and err == "error: {}\n".format(message.format(tmp=tmp_path))
  assert "Read " not in out  # failed before reading the data
