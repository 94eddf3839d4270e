"""A newcomer's first hour: runs that remember their flags (--experiment_dir,
flags.json, the command printed for a checkpoint found elsewhere), output
that starts with the project's own lines, progress in log files, the Penn
evaluation subset and --help defaults."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from tprnn.training import checkpoints
from tprnn.evaluation import pck
import tprnn_train_human
import tprnn_train_penn
from tprnn.training import rundir
from conftest import HUMAN_SCRIPT, ROOT, argv_of, penn_labels, run_script, write_h36m

# Flags far from the defaults: a run that needs all of them to be found again.
CUSTOM = {"--action": "walking", "--model": "generic", "--tprnn_layers": "3", "--rnn_size": "8",
          "--seq_length_in": "12", "--seq_length_out": "14", "--learning_rate": "0.01",
          "--iterations": "20", "--test_every": "10", "--save_every": "10", "--seed": "3"}


@pytest.fixture(scope="module")
def custom_run(tmp_path_factory):
  """(train_dir, experiment directory, data) of a 20-step run with CUSTOM flags."""
  root = tmp_path_factory.mktemp("first_hour")
  h36m = write_h36m(str(root / "h36m"), frames=400)
  train_dir = str(root / "experiments")
  code, out, err = run_script(tprnn_train_human, argv_of(dict(CUSTOM, **{
      "--data_dir": h36m, "--train_dir": train_dir})))
  assert code == 0, err
  return train_dir, re.search(r"Experiment directory: (\S+)", out).group(1), h36m


def test_flags_json_records_the_run(custom_run):
  _, directory, _ = custom_run
  with open(os.path.join(directory, "flags.json")) as f:
    recorded = json.load(f)
  for name, value in CUSTOM.items():
    assert str(recorded[name[2:]]) == value, name
  commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                          stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
  assert recorded["code_version"].rstrip("+") == commit


def without_third_lstm(directory, copy):
  """A copy of run `directory` whose checkpoint-20 lacks the third level's LSTM."""
  shutil.copytree(directory, copy)
  reader = tf.train.load_checkpoint(checkpoints.path(directory, 20))
  graph = tf.Graph()
  with graph.as_default():
    kept = [tf.Variable(reader.get_tensor(name), name=name)
            for name in reader.get_variable_to_shape_map() if "/lstm_2/" not in name]
    with tf.Session() as sess:
      sess.run(tf.variables_initializer(kept))
      tf.train.Saver(kept).save(sess, os.path.join(copy, "checkpoint"), global_step=20)
  return copy


@pytest.mark.slow
def test_sample_and_resume_with_only_experiment_dir_and_load(custom_run, tmp_path):
  """Both build the run's model from its flags.json alone: the generic one of 3 levels predicting
  14 frames."""
  _, directory, _ = custom_run
  samples = str(tmp_path / "s.h5")
  code, out, err = run_script(tprnn_train_human, ["--experiment_dir", directory, "--load", "20",
                                                  "--sample", "--samples_file", samples])
  assert code == 0, err
  assert "Loading model {}".format(checkpoints.path(directory, 20)) in out
  assert "walking          |" in out and "Not in the checkpoint" not in out
  with h5py.File(samples, "r") as f:
    assert [f["expmap/preds/walking_{}".format(i)].shape for i in range(8)] == [(14, 99)] * 8
  # the sampled model holds the third level: a checkpoint without it is refused, naming it
  copy = without_third_lstm(directory, str(tmp_path / "copy"))
  code, _, err = run_script(tprnn_train_human, ["--experiment_dir", copy, "--load", "20", "--sample",
                                                "--samples_file", str(tmp_path / "copy.h5")])
  assert code == 1 and "setup_context_lstm/lstm_2/basic_lstm_cell/kernel (model [16, 32]" in err
  code, out, err = run_script(tprnn_train_human, ["--experiment_dir", directory, "--load", "20",
                                                  "--more", "4"])
  assert code == 0, err
  assert "Seed: 3 (the resumed run's)" in out
  assert checkpoints.steps(directory)[-1] == 24
  assert tf.train.list_variables(checkpoints.path(directory, 24)) == tf.train.list_variables(
      checkpoints.path(directory, 20))


@pytest.mark.parametrize("flag,value,recorded", [("--rnn_size", "16", "8"),
                                                 ("--model", "basic", "generic"),
                                                 ("--seq_length_out", "10", "14")])
def test_conflicting_explicit_flag_is_refused(custom_run, flag, value, recorded):
  _, directory, _ = custom_run
  code, _, err = run_script(tprnn_train_human, ["--experiment_dir", directory, "--load", "20",
                                                "--sample", flag, value])
  assert code == 1
  assert err == ("error: {} {} conflicts with the run in {} ({} {} in its flags.json): drop the "
                 "flag, or train a new run\n".format(flag, value, directory, flag[2:], recorded))


def test_experiment_dir_without_flags_json(tmp_path):
  code, _, err = run_script(tprnn_train_human, ["--experiment_dir", str(tmp_path), "--load", "5",
                                                "--sample"])
  assert code == 1 and "--experiment_dir {} holds no flags.json".format(tmp_path) in err


@pytest.mark.slow
def test_missing_checkpoint_prints_a_command_that_works(custom_run, tmp_path):
  """Sampling with a flag forgotten computes another directory; the error
  names where checkpoint 20 is and the command that loads it, which works."""
  train_dir, directory, h36m = custom_run
  forgot = {k: v for k, v in CUSTOM.items() if k != "--rnn_size"}
  code, _, err = run_script(tprnn_train_human, argv_of(dict(forgot, **{
      "--train_dir": train_dir, "--data_dir": h36m, "--load": "20", "--sample": None})))
  assert code == 1
  command = re.search(r"checkpoint 20 is in {} \(run: (python .*)\)$".format(re.escape(directory)),
                      err.strip()).group(1)
  assert command == "python tprnn_train_human.py --experiment_dir {} --load 20 --sample".format(
      directory)
  argv = shlex.split(command)[2:] + ["--samples_file", str(tmp_path / "s.h5")]
  code, _, err = run_script(tprnn_train_human, argv)
  assert code == 0, err


def first_lines(command, env):
  result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                          universal_newlines=True, timeout=300)
  return result.returncode, result.stdout.splitlines()


TF_NOISE = re.compile(r"I0000|W0000|oneDNN|cpu_feature_guard|absl::InitializeLog|deprecat",
                      re.IGNORECASE)


@pytest.mark.slow
def test_first_lines_are_the_projects_own(tmp_path):
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  code, lines = first_lines([sys.executable, HUMAN_SCRIPT, "--help"], env)
  assert code == 0 and lines[0].startswith("usage: tprnn_train_human.py")
  assert not [line for line in lines if TF_NOISE.search(line)]
  h36m = write_h36m(str(tmp_path / "h36m"), frames=400)
  training = [sys.executable, HUMAN_SCRIPT] + argv_of(dict(CUSTOM, **{
      "--data_dir": h36m, "--train_dir": str(tmp_path / "exp"), "--iterations": "2"}))
  code, lines = first_lines(training, env)
  assert code == 0, "\n".join(lines)
  assert lines[0].startswith("Read 12 training and 2 test sequences (subject 5) from ")
  assert [line.split(":")[0] for line in lines[1:5]] == ["Experiment directory", "Device",
                                                         "Distributed", "Seed"]
  assert not [line for line in lines if TF_NOISE.search(line)]
  # a user who sets TF_CPP_MIN_LOG_LEVEL keeps control of TensorFlow's logging
  code, lines = first_lines([sys.executable, HUMAN_SCRIPT, "--help"],
                            dict(env, TF_CPP_MIN_LOG_LEVEL="0"))
  assert code == 0 and [line for line in lines if TF_NOISE.search(line)]


@pytest.mark.slow
def test_penn_validation_pass_shows_progress_lines_in_a_log_file(tmp_path, monkeypatch):
  """Output that is not a terminal gets plain progress lines; a short pass prints its last
  line too once PLAIN_MIN_SECS is 0 (a real run waits 2 s, here 120 videos suffice)."""
  from tprnn.util import progress
  monkeypatch.setattr(progress, "PLAIN_MIN_SECS", 0.0)
  labels = penn_labels(tmp_path / "labels", range(1, 121))
  base = {"--data_dir": labels, "--train_dir": str(tmp_path), "--rnn_size": "8",
          "--iterations": "2", "--test_every": "100", "--seed": "1"}
  code, out, err = run_script(tprnn_train_penn, argv_of(base))
  assert code == 0, err
  validation = int(re.search(r"^\d+ training and (\d+) validation sequences", out, re.M).group(1))
  code, text, err = run_script(tprnn_train_penn, argv_of(dict(base, **{
      "--sample": None, "--load": "2", "--samples_file": str(tmp_path / "s.h5")})))
  assert code == 0, err
  assert "\r" not in text and "\x1b" not in text
  chunks = -(-validation // 2048)
  assert re.search(r"^Predicting {} sequences: {}/{} chunks \(100%\), [0-9.]+ chunks/s, "
                   r"0 s left$".format(validation, chunks, chunks), text, re.M), text


def test_penn_evaluation_subset_is_fixed_and_a_subset():
  n = 1000
  val = pck.ValidationSet(
      tuple(np.arange(n * k).reshape(n, k) for k in (1, 2, 3)),
      np.arange(n * 13).reshape(n, 13), np.arange(n, dtype=float), np.arange(n * 26).reshape(n, 1, 26),
      np.arange(n), np.arange(n * 17).reshape(n, 17), np.arange(n * 2).reshape(n, 2))
  sub = pck.validation_subset(val, 100)
  again = pck.validation_subset(val, 100)
  rows = sub.bounding_box_length.astype(int)
  assert len(rows) == 100 == len(set(rows)) and list(rows) == sorted(rows)
  np.testing.assert_array_equal(again.bounding_box_length, sub.bounding_box_length)
  for feed, whole in zip(sub.feeds + tuple(sub[1:]), val.feeds + tuple(val[1:])):
    np.testing.assert_array_equal(feed, whole[rows])
  assert pck.validation_subset(val, 0) is val
  assert pck.validation_subset(val, 5000) is val


def test_penn_help_shows_real_defaults(capsys):
  with pytest.raises(SystemExit):
    tprnn_train_penn.parse_flags(["--help"])
  text = " ".join(capsys.readouterr().out.split())
  assert "(it gets seq_length_in - 1 of them). (default: 2, or 3 with --init_velocity)" in text
  assert "default: None" not in text
  assert "--seq_length_out SEQ_LENGTH_OUT Frames the decoder predicts. (default: 16)" in text


def test_no_python_file_points_outside_the_repository():
  # the work tree's Python files: tracked (less those deleted) and new ones not ignored
  listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
                          cwd=ROOT, stdout=subprocess.PIPE, universal_newlines=True).stdout.split()
  present = [p for p in listed if os.path.isfile(os.path.join(ROOT, p))]
  assert "tprnn_train_human.py" in present and "test/conftest.py" in present
  offenders = [p for p in present if re.search("S[P]EC", open(os.path.join(ROOT, p)).read())]
  assert offenders == []
  assert os.path.exists(os.path.join(ROOT, "docs", "PROTOCOL.md"))


def test_recorded_flags_round_trip(tmp_path):
  flags = tprnn_train_human.parse_flags(["--rnn_size", "8", "--action", "eating"])
  rundir.write_flags(str(tmp_path), rundir.recordable(flags, 7))
  again = tprnn_train_human.parse_flags(["--experiment_dir", str(tmp_path)])
  assert (again.rnn_size, again.action, again.actions) == (8, "eating", ["eating"])
