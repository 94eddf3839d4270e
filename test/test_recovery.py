"""Runs that never lose work or report a wrong number silently: each fault is
injected for real (signals, SIGKILL, a second run, corrupt and truncated
checkpoint files, a read-only or full directory, bad data and paths) and the
exit status, the single error line and what is left on disk are checked."""

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import scipy.io
import tensorflow.compat.v1 as tf

from tprnn.training import checkpoints
import data_utils
from tprnn.util import devices
import load
import tprnn_train_human
import tprnn_train_penn
from conftest import (HUMAN_SCRIPT, argv_of, error_lines, read_until, run_script, weights,
                      write_h36m)

TINY = {"--action": "walking", "--rnn_size": "8", "--seq_length_in": "10",
        "--seq_length_out": "10", "--seed": "11", "--test_every": "10", "--save_every": "10"}


DROP = object()  # a flag value: leave the flag out


def human(h36m, train_dir, **flags):
  """Runs the H3.6M script in-process; flags as name=value keywords."""
  merged = dict(TINY, **{"--data_dir": h36m, "--train_dir": str(train_dir)})
  merged.update({"--" + k: v for k, v in flags.items()})
  return run_script(tprnn_train_human, argv_of({k: v for k, v in merged.items() if v is not DROP}))


def experiment_dir(train_dir):
  """The one experiment directory under `train_dir` (it holds flags.json)."""
  (directory,) = [root for root, _, files in os.walk(str(train_dir)) if "flags.json" in files]
  return directory


def leftovers(directory):
  """Temporary or partial files left in `directory`."""
  return [f for f in os.listdir(directory) if "tmp" in f or "temp" in f]


def start(processes, h36m, train_dir, **flags):
  """The H3.6M script as a real process (signals, SIGKILL)."""
  merged = dict(TINY, **{"--data_dir": h36m, "--train_dir": str(train_dir),
                         "--iterations": "100000", "--test_every": "100000"})
  merged.update({"--" + k: v for k, v in flags.items()})
  return processes.start([sys.executable, HUMAN_SCRIPT] + argv_of(merged))


# ----------------------------------------------------------------------------
# Signals, SIGKILL, exact resume


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.slow
def test_signal_saves_says_how_to_resume_and_exits_128_plus_signal(processes, h36m, tmp_path,
                                                                   signum):
  proc = start(processes, h36m, tmp_path)
  read_until(proc, r"^step 0020")
  proc.send_signal(signum)
  out, err = proc.communicate(timeout=60)
  assert proc.returncode == 128 + signum
  assert error_lines(err) == []
  step = int(re.search(r"Interrupted at step (\d+); resume with --load \1\.", out).group(1))
  assert weights(experiment_dir(tmp_path), step)["Variable_1"] == step


@pytest.mark.slow
def test_second_signal_during_the_save_changes_nothing(processes, h36m, tmp_path):
  proc = start(processes, h36m, tmp_path, rnn_size="256")
  read_until(proc, r"^step 0010")
  proc.send_signal(signal.SIGTERM)
  read_until(proc, r"^Saving the model")
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 128 + signal.SIGTERM, err
  assert error_lines(err) == []
  step = int(re.search(r"Interrupted at step (\d+)", out).group(1))
  directory = experiment_dir(tmp_path)
  assert checkpoints.steps(directory) == [step] and not leftovers(directory)
  assert weights(directory, step)["Variable_1"] == step


@pytest.mark.slow
def test_sigkill_loses_at_most_save_secs_and_resumes_from_the_rolling_checkpoint(
    processes, h36m, tmp_path):
  proc = start(processes, h36m, tmp_path, save_secs="0.5")
  read_until(proc, r"^step 0030")
  deadline = time.time() + 30
  while not checkpoints.steps(experiment_dir(tmp_path), checkpoints.ROLLING_PREFIX):
    assert time.time() < deadline
    time.sleep(0.2)
  read_until(proc, r"^step 0060")
  proc.kill()
  proc.wait()
  directory = experiment_dir(tmp_path)
  rolling = checkpoints.steps(directory, checkpoints.ROLLING_PREFIX)
  assert 1 <= len(rolling) <= checkpoints.ROLLING_KEEP and checkpoints.steps(directory) == []
  last = rolling[-1]
  assert weights(directory, last, checkpoints.ROLLING_PREFIX)["Variable_1"] == last
  code, out, err = human(h36m, tmp_path, iterations="100000", load=str(last), more="5",
                         test_every="100000")
  assert code == 0, err
  assert "Loading model {}".format(checkpoints.path(directory, last, "rolling")) in out
  assert weights(directory, last + 5)["Variable_1"] == last + 5


@pytest.mark.parametrize("model", [{}, {"model": "generic", "tprnn_layers": "3"}])
@pytest.mark.slow
def test_exact_resume_equals_an_uninterrupted_run(h36m, tmp_path, model):
  """20 steps at once, or 10 steps then a resume for 10 (no --seed on the
  resume: it comes from flags.json): the same weights, checkpoint numbers and
  global steps."""
  flags = dict(model, iterations="20", test_every="100")
  code, _, err = human(h36m, tmp_path / "once", **flags)
  assert code == 0, err
  code, _, err = human(h36m, tmp_path / "twice", more="10", **flags)
  assert code == 0, err
  code, out, err = human(h36m, tmp_path / "twice", load="10", more="10", seed=DROP, **flags)
  assert code == 0, err
  assert "Seed: 11 (the resumed run's)" in out
  once, twice = experiment_dir(tmp_path / "once"), experiment_dir(tmp_path / "twice")
  assert checkpoints.steps(once) == [20] and checkpoints.steps(twice) == [10, 20]
  a, b = weights(once, 20), weights(twice, 20)
  assert a["Variable_1"] == b["Variable_1"] == 20
  for name in a:
    np.testing.assert_allclose(b[name], a[name], atol=1e-6, err_msg=name)


# ----------------------------------------------------------------------------
# Finite or nothing


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # 1e39 -> float32 inf, the fault
def test_run_diverging_on_its_last_step_saves_nothing_and_fails(h36m, tmp_path):
  # the loss of step 0 is finite; 1e39 is inf in float32, so its update is not
  code, out, err = human(h36m, tmp_path, iterations="1", learning_rate="1e39")
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
  code, _, err = human(h36m, tmp_path, iterations="10")
  assert code == 0, err
  nan_checkpoint(experiment_dir(tmp_path), 10, 11)
  samples = tmp_path / "samples.h5"
  code, out, err = human(h36m, tmp_path, iterations="10", sample=None, load="11",
                         samples_file=str(samples))
  assert code == 1
  assert err.startswith("error: the model predicts non-finite values (NaN or inf)")
  assert "walking          |" not in out and not samples.exists()


# ----------------------------------------------------------------------------
# One run per directory


@pytest.mark.slow
def test_second_run_is_refused_while_the_first_holds_the_lock(processes, h36m, tmp_path):
  first = start(processes, h36m, tmp_path)
  read_until(first, r"^step 0000")
  code, _, err = human(h36m, tmp_path, iterations="100000", test_every="100000")
  assert code == 1
  (line,) = error_lines(err)
  assert re.search(r"is in use by another run \(pid {} on \S+ since [0-9: -]+: .*tprnn_train_human"
                   r"\.py .*\); wait for it to end or stop it$".format(first.pid), line), line
  first.kill()  # a dead holder's lock is stale: it blocks nothing
  first.wait()
  code, _, err = human(h36m, tmp_path, iterations="100000", test_every="100000", more="3")
  assert code == 0, err


@pytest.mark.slow
def test_fresh_run_into_a_used_directory_is_refused_unless_overwrite(h36m, tmp_path):
  code, _, err = human(h36m, tmp_path, iterations="20")
  assert code == 0, err
  directory = experiment_dir(tmp_path)
  before = sorted(os.listdir(directory))
  code, _, err = human(h36m, tmp_path, iterations="20")
  assert code == 1
  assert err == ("error: {} already holds checkpoints (10, 20): resume with --load 20, or pass "
                 "--overwrite to delete them and start afresh\n".format(directory))
  assert sorted(os.listdir(directory)) == before
  code, out, err = human(h36m, tmp_path, iterations="20", more="3", overwrite=None)
  assert code == 0, err
  assert checkpoints.steps(directory) == [3]
  for log in ("train", "test"):
    assert len(os.listdir(os.path.join(directory, "log", log))) <= 1


# ----------------------------------------------------------------------------
# Damaged checkpoints, unusable directories and paths


@pytest.fixture
def trained(h36m, tmp_path):
  code, _, err = human(h36m, tmp_path, iterations="20")
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
  extra = ({"sample": None, "samples_file": str(samples)} if mode == "sample" else {"more": "5"})
  code, _, err = human(h36m, tmp_path, iterations="20", load="20", **extra)
  assert code == 1
  (line,) = error_lines(err)
  assert line.startswith("error: cannot read {}: ".format(path)), line
  assert line.endswith("(corrupt or truncated files?)")
  assert sorted(os.listdir(trained)) == before and not samples.exists()


def test_train_dir_that_is_a_file(h36m, tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("x")
  code, _, err = human(h36m, blocker, iterations="5")
  assert code == 1
  assert re.match(r"error: cannot create the experiment directory {}/human/\S+: Not a "
                  r"directory\n$".format(re.escape(str(blocker))), err), err


@pytest.mark.slow
def test_read_only_directory_fails_before_training(h36m, tmp_path):
  """Without CAP_DAC_OVERRIDE (dropped when the tests run as root) a 555
  directory is read-only for the script, as for any user."""
  train_dir = tmp_path / "ro"
  train_dir.mkdir()
  train_dir.chmod(0o555)
  command = [sys.executable, HUMAN_SCRIPT] + argv_of(dict(TINY, **{
      "--data_dir": h36m, "--train_dir": str(train_dir), "--iterations": "5"}))
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
  command = [sys.executable, HUMAN_SCRIPT] + argv_of(dict(TINY, **{
      "--data_dir": h36m, "--train_dir": str(tmp_path), "--iterations": "30", "--rnn_size": "16"}))
  result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
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
  code, out, err = human(h36m, tmp_path, model="zero_velocity", sample=None,
                         samples_file=str(tmp_path / name))
  assert code == 1 and err == "error: {}\n".format(message.format(tmp=tmp_path))
  assert "Read " not in out  # failed before reading the data


# ----------------------------------------------------------------------------
# Bad data


def replace_line(path, lineno, text):
  with open(path) as f:
    lines = f.read().splitlines()
  lines[lineno - 1] = text
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_number_in_a_data_file(tmp_path, value):
  root = write_h36m(str(tmp_path / "h36m"), frames=400)
  path = os.path.join(root, "S6", "walking_2.txt")
  replace_line(path, 7, ",".join(["0.1"] * 50 + [value] + ["0.1"] * 48))
  code, _, err = run_script(tprnn_train_human, ["--data_dir", root, "--action", "walking"])
  assert code == 1 and err == "error: {}:7: a value is not finite (nan or inf)\n".format(path)


def test_undecodable_data_file(tmp_path):
  root = write_h36m(str(tmp_path / "h36m"), frames=400)
  path = os.path.join(root, "S1", "walking_1.txt")
  with open(path, "r+b") as f:
    f.seek(100)
    f.write(b"\xff\xfe\xfa")
  code, _, err = run_script(tprnn_train_human, ["--data_dir", root, "--action", "walking"])
  assert code == 1
  assert err == ("error: {}: not text (undecodable byte at offset 100); expected 99 comma-separated "
                 "numbers a line\n".format(path))


def test_test_subject_too_short_for_the_srnn_windows(tmp_path):
  root = write_h36m(str(tmp_path / "h36m"), frames=300)
  code, _, err = run_script(tprnn_train_human, ["--data_dir", root, "--action", "walking",
                                                "--model", "zero_velocity"])
  assert code == 1
  assert err == ("error: S5 walking_1 has 150 frames at 25 fps; the SRNN test windows need at "
                 "least 167 (334 at 50 Hz)\n")
  assert data_utils.MIN_START + data_utils.SRNN_PREFIX + data_utils.SRNN_SUFFIX + 1 == 167


def write_mat73(path, label):
  """A MATLAB v7.3 file: HDF5 behind MATLAB's 128-byte header, each array
  stored transposed (MATLAB is column-major)."""
  with h5py.File(path, "w", userblock_size=512) as f:
    for key, value in label.items():
      f.create_dataset(key, data=np.asarray(value, dtype=np.float64).T)
  with open(path, "r+b") as f:
    f.write(b"MATLAB 7.3 MAT-file, written by the tests".ljust(116) + b"\0" * 8 + b"\x00\x02IM")


def test_matlab_v73_label_files_are_read(tmp_path):
  rng = np.random.RandomState(0)
  label = {"x": rng.uniform(10, 90, (30, 13)), "y": rng.uniform(5, 50, (30, 13)),
           "visibility": np.ones((30, 13)), "train": [[1]]}
  write_mat73(str(tmp_path / "0001.mat"), label)
  with pytest.raises(NotImplementedError):
    scipy.io.loadmat(str(tmp_path / "0001.mat"))  # scipy alone cannot
  x, y, vis, is_train = load.read_label(str(tmp_path / "0001.mat"))
  np.testing.assert_array_equal(x, label["x"])
  np.testing.assert_array_equal(y, label["y"])
  assert is_train is True and vis.shape == (30, 13)


def test_non_finite_penn_label(tmp_path):
  x = np.full((30, 13), 5.0)
  x[3, 4] = np.nan
  scipy.io.savemat(str(tmp_path / "0001.mat"), {"x": x, "y": np.ones((30, 13)),
                                                "visibility": np.ones((30, 13)), "train": -1})
  code, _, err = run_script(tprnn_train_penn, ["--data_dir", str(tmp_path), "--model", "zero_velocity"])
  assert code == 1
  assert err == "error: {}: x holds non-finite values (nan or inf)\n".format(tmp_path / "0001.mat")


# ----------------------------------------------------------------------------
# Flags checked before anything runs


@pytest.mark.parametrize("flags,message", [
    ({"--iterations": "0"}, "--iterations must be at least 1, got 0"),
    ({"--more": "-3"}, "--more must be 0 or more, got -3"),
    ({"--load": "-1"}, "--load must be 0 or more, got -1"),
    ({"--seed": "-1"}, "--seed must be in 0..4294967295, got -1"),
    ({"--seed": str(2 ** 32)}, "--seed must be in 0..4294967295, got 4294967296"),
    ({"--max_gradient_norm": "0"}, "--max_gradient_norm must be positive, got 0.0"),
    ({"--save_secs": "-5"}, "--save_secs must be positive, got -5.0"),
    ({"--learning_rate": "0"}, "--learning_rate must be positive, got 0.0"),
    ({"--seq_length_out": "1"}, "--seq_length_out must be at least 2: the error table starts at 80 ms"),
])


def test_flag_ranges(flags, message):
  code, _, err = run_script(tprnn_train_human, ["--data_dir", "nowhere"] + argv_of(flags))
  assert code == 1 and err.count("\n") == 1 and message in err, err


def test_device_gpu_without_a_gpu_is_an_error():
  if devices.gpu_available():
    pytest.skip("a GPU is visible here")
  code, _, err = run_script(tprnn_train_human, ["--data_dir", "nowhere", "--device", "gpu"])
  assert code == 1 and err.startswith("error: --device gpu: TensorFlow sees no GPU here")


@pytest.mark.slow
def test_penn_resumes_exactly_and_refuses_a_used_directory(tmp_path):
  """The same plumbing for tprnn_train_penn.py, on small synthetic labels."""
  labels = tmp_path / "labels"
  labels.mkdir()
  rng = np.random.RandomState(3)
  for i, split in enumerate((1, 1, -1), 1):
    scipy.io.savemat(str(labels / "{:04d}.mat".format(i)), {
        "x": rng.uniform(0, 200, (60, 13)), "y": rng.uniform(0, 100, (60, 13)),
        "visibility": np.ones((60, 13)), "train": split})
  base = {"--data_dir": str(labels), "--rnn_size": "8", "--iterations": "20",
          "--test_every": "100", "--seed": "5"}

  def penn(train_dir, **flags):
    merged = dict(base, **{"--train_dir": str(tmp_path / train_dir)})
    merged.update({"--" + k: v for k, v in flags.items()})
    return run_script(tprnn_train_penn, argv_of(merged))

  assert penn("once")[0] == 0
  assert penn("twice", more="10")[0] == 0
  code, _, err = penn("twice", load="10", more="10")
  assert code == 0, err
  a, b = (weights(experiment_dir(tmp_path / d), 20) for d in ("once", "twice"))
  for name in a:
    np.testing.assert_allclose(b[name], a[name], atol=1e-6, err_msg=name)
  code, _, err = penn("once")
  assert code == 1 and "already holds checkpoints (20): resume with --load 20" in err
