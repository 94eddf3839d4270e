"""tprnn_train_human.py end to end on the shared H3.6M data: tables, checkpoints,
samples files, determinism, resuming, published checkpoint names, bad input."""

import os
import re
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import data_utils
import tprnn_train_human
from conftest import H36M_DIR, HUMAN_INDEX, ROOT, argv_of, need, run_script, write_h36m
from numpy_reference import basic_forward

TINY = {"--action": "walking", "--rnn_size": "8", "--seq_length_in": "10",
        "--seq_length_out": "25", "--test_every": "10", "--save_every": "10", "--seed": "5"}


def tiny(**changes):
  """The arguments of TINY with `changes` (name=value; None: a bare flag)."""
  return argv_of(dict(TINY, **{"--" + k: v for k, v in changes.items()}))


def human(argv):
  return run_script(tprnn_train_human, ["--data_dir", H36M_DIR] + argv)


def table_row(out, name):
  """Numbers (None for n/a) of the last Euler-table row called `name` (the
  position-error table --sample prints after it is left out)."""
  euler = out.split("Mean per-joint position error")[0]
  line = [l for l in euler.splitlines() if l.startswith(name + " ")][-1]
  return [None if c.strip() == "n/a" else float(c) for c in line.split("|")[1:-1]]


def losses(out):
  return [float(x) for x in re.findall(r"step \d+; step_loss: ([0-9.]+)", out)]


def test_zero_velocity_reproduces_published_baseline():
  need(H36M_DIR)
  code, out, _ = human(["--model", "zero_velocity", "--action", "all_srnn"])
  assert code == 1  # smoking and discussion are not in the shared data
  code, out, err = human(["--model", "zero_velocity", "--action", "walking", "--seq_length_out", "25"])
  assert code == 0, err
  # the table prints 3 decimals; the published table rounds to 2
  np.testing.assert_allclose(table_row(out, "walking"), [0.39, 0.68, 0.99, 1.15, 1.35, 1.32],
                             atol=0.0051)
  code, out, err = human(["--model", "zero_velocity", "--action", "eating", "--seq_length_out", "25"])
  np.testing.assert_allclose(table_row(out, "eating"), [0.27, 0.48, 0.73, 0.86, 1.04, 1.38],
                             atol=0.0051)


def test_zero_velocity_sample_writes_samples_file(tmp_path):
  need(H36M_DIR)
  path = str(tmp_path / "zv.h5")
  code, out, err = human(["--model", "zero_velocity", "--action", "walking", "--sample",
                          "--samples_file", path])
  assert code == 0, err
  with h5py.File(path, "r") as f:
    gt, preds = f["expmap/gt/walking_3"][()], f["expmap/preds/walking_3"][()]
    assert gt.shape == preds.shape == (10, 99)
    np.testing.assert_array_equal(preds, np.repeat(preds[:1], 10, axis=0))
    errors = f["mean_walking_error"][()]
  assert table_row(out, "walking")[:4] == [round(errors[i], 3) for i in (1, 3, 7, 9)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  need(H36M_DIR)
  train_dir = str(tmp_path_factory.mktemp("exp"))
  code, out, err = human(tiny(iterations="30", train_dir=train_dir))
  assert code == 0, err
  return train_dir, out


@pytest.mark.slow
def test_training_prints_table_and_saves(trained):
  train_dir, out = trained
  directory = os.path.join(train_dir, "human", "walking", "out_25", "iterations_30", "rnn_size_8",
                           "lr_0.005", "tprnn_scale_2", "tprnn_layers_2", "dropout_keep_1.0", "basic")
  assert "Experiment directory: {}".format(directory) in out
  assert len(losses(out)) == 3
  row = table_row(out, "walking")
  assert len(row) == 6 and all(0 < x < 5 for x in row)
  assert table_row(out, "average") == row
  assert out.count("Global step:         ") == 3
  steps = sorted(int(m) for m in re.findall(r"checkpoint-(\d+)\.index", " ".join(os.listdir(directory))))
  assert steps[-1] == 30 and 10 in steps
  assert os.listdir(os.path.join(directory, "log", "train"))
  assert os.listdir(os.path.join(directory, "log", "test"))


@pytest.mark.slow
def test_same_seed_same_losses(trained, tmp_path):
  _, out = trained
  code, again, err = human(tiny(iterations="30", train_dir=str(tmp_path)))
  assert code == 0, err
  assert losses(again) == losses(out)
  code, other, _ = human(tiny(seed="6", iterations="30", train_dir=str(tmp_path / "b")))
  assert losses(other) != losses(out)


@pytest.mark.slow
def test_sample_reads_back_checkpoint(trained, tmp_path):
  train_dir, _ = trained
  path = str(tmp_path / "samples.h5")
  code, out, err = human(tiny(iterations="30", train_dir=train_dir, sample=None, load="30",
                                samples_file=path))
  assert code == 0, err
  assert "checkpoint-30" in out
  with h5py.File(path, "r") as f:
    for i in range(8):
      assert f["expmap/gt/walking_{}".format(i)].shape == (25, 99)
      assert f["expmap/preds/walking_{}".format(i)].shape == (25, 99)
    errors = f["mean_walking_error"][()]
  assert errors.shape == (25,)
  assert ["{:.3f}".format(x) for x in table_row(out, "walking")] == \
      ["{:.3f}".format(errors[i]) for i in (1, 3, 7, 9, 13, 24)]
  assert not [n for n in os.listdir(str(tmp_path)) if ".tmp" in n]


@pytest.mark.slow
def test_resume_restores_step_and_learning_rate(trained, tmp_path):
  train_dir, _ = trained
  code, out, err = human(tiny(iterations="30", train_dir=train_dir, learning_rate_step="7",
                              load="30", more="12"))
  assert code == 0, err
  directory = re.search(r"Experiment directory: (\S+)", out).group(1)
  reader = tf.train.load_checkpoint(os.path.join(directory, "checkpoint-42"))
  assert reader.get_tensor("Variable_1") == 30 + 12
  # the first run never decayed (step 10000); the resumed steps 31..42 decay at 35 and 42
  assert reader.get_tensor("Variable") == pytest.approx(0.005 * 0.95 ** 2)


@pytest.mark.slow
def test_published_names_restore_through_sample(tmp_path):
  """A checkpoint with exactly the published H3.6M names and shapes, extra
  entries included, restores through --sample --load and predicts what the
  numpy reference predicts with those weights."""
  need(HUMAN_INDEX + ".index")
  need(H36M_DIR)
  rng = np.random.RandomState(0)
  directory = tmp_path / "human/walking/out_25/iterations_100006/rnn_size_1024/lr_0.01/tprnn_scale_2/tprnn_layers_2/dropout_keep_1.0/basic"
  os.makedirs(str(directory))
  values = {}
  graph = tf.Graph()
  with graph.as_default():
    for name, shape in tf.train.list_variables(HUMAN_INDEX):
      if name == "Variable_1":
        value = np.int32(92000)
      elif "filter" in name:
        value = np.array([[-1.0], [1.0]], np.float32)
      else:
        value = rng.uniform(-0.03, 0.03, shape).astype(np.float32)
      values[name] = value
      tf.Variable(value, name=name)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      tf.train.Saver().save(sess, str(directory / "checkpoint"), global_step=92000)
  path = str(tmp_path / "samples.h5")
  code, out, err = human(["--action", "walking", "--sample", "--load", "92000", "--learning_rate",
                          "0.01", "--iterations", "100006", "--seq_length_out", "25",
                          "--train_dir", str(tmp_path), "--samples_file", path])
  assert code == 0, err
  data = data_utils.read_all_data(["walking"], H36M_DIR)
  enc, dec_in, _ = data_utils.split_windows(data_utils.srnn_windows(data.test, "walking", 50, 25), 50)
  expected = data_utils.unnormalize(basic_forward(values, enc, dec_in, 25, 1024),
                                    data.mean, data.std, data.dim_to_use)
  with h5py.File(path, "r") as f:
    preds = np.stack([f["expmap/preds/walking_{}".format(i)][()] for i in range(8)])
  np.testing.assert_allclose(preds, expected, atol=1e-4)
  # the same through --experiment_dir and the flags file shipped for this checkpoint
  shutil.copy(os.path.join(ROOT, "docs", "published_flags", "human_checkpoint-92000.json"),
              str(directory / "flags.json"))
  again = str(tmp_path / "again.h5")
  code, out, err = human(["--experiment_dir", str(directory), "--sample", "--load", "92000",
                          "--action", "walking", "--samples_file", again])
  assert code == 0, err
  with h5py.File(again, "r") as f:
    np.testing.assert_array_equal(f["expmap/preds/walking_3"][()], preds[3])


@pytest.mark.parametrize("argv,message", [
    (["--action", "running"], "unknown --action 'running': expected one of all, all_srnn, walking"),
    (["--model", "big"], "unknown --model 'big': expected one of basic, generic, zero_velocity"),
    (["--tprnn_scale", "3"], "--model basic needs --tprnn_scale 2 --tprnn_layers 2 --dropout_keep 1.0"),
    (["--dropout_keep", "0.5"], "--model basic needs"),
    (["--seq_length_in", "1"], "--seq_length_in must be at least 2"),
    (["--seq_length_in", "60", "--seq_length_out", "2000"], "do not fit the shortest training sequence"),
    (["--seq_length_in", "70"], "--seq_length_in 70 is longer than the SRNN test windows allow"),
    (["--seq_length_out", "101"], "--seq_length_out 101 is longer than the SRNN test windows allow"),
    (["--sample"], "--sample needs --load N"),
    (["--omit_one_hot=false"], "--omit_one_hot false is not supported"),
    (["--rnn_size", "abc"], "argument --rnn_size: invalid int value: 'abc'"),
    (["--dataset", "penn"], "--dataset penn does not match this script"),
])


def test_bad_flags(argv, message):
  need(H36M_DIR)
  code, out, err = human(["--action", "walking"] + argv)
  assert code == 1
  assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_missing_data_and_files(tmp_path):
  code, _, err = run_script(tprnn_train_human, ["--data_dir", str(tmp_path / "nowhere")])
  assert code == 1 and "data directory {} not found (see data/README.md)".format(tmp_path / "nowhere") in err
  root = write_h36m(str(tmp_path / "h36m"))
  code, _, err = run_script(tprnn_train_human, ["--data_dir", root, "--action", "eating"])
  assert code == 1 and "missing sequence file {}".format(os.path.join(root, "S1", "eating_1.txt")) in err


def test_malformed_line_names_file_and_line(tmp_path):
  root = write_h36m(str(tmp_path / "h36m"), bad_line=((7, 2), 42))
  code, _, err = run_script(tprnn_train_human, ["--data_dir", root, "--action", "walking"])
  assert code == 1
  assert "{}:42: expected 99 comma-separated numbers, found 97".format(
      os.path.join(root, "S7", "walking_2.txt")) in err


@pytest.mark.slow
def test_missing_checkpoint_lists_present_ones(trained):
  train_dir, _ = trained
  code, _, err = human(tiny(iterations="30", train_dir=train_dir, sample=None, load="7"))
  assert code == 1
  assert re.search(r"--load 7: no checkpoint-7 in \S+ \(present: 10, [0-9, ]*30", err)


@pytest.mark.slow
def test_non_finite_loss_stops_without_saving(tmp_path):
  need(H36M_DIR)
  code, out, err = human(tiny(iterations="40", train_dir=str(tmp_path), learning_rate="1e30",
                                test_every="100"))
  assert code == 1
  assert re.search(r"training loss became (nan|inf) at step \d+; stopped without saving "
                   r"\(last good checkpoint: none\)", err)
  assert not [f for _, _, files in os.walk(str(tmp_path)) for f in files if f.startswith("checkpoint-")]


def test_script_error_is_one_line_without_traceback(tmp_path):
  result = subprocess.run([sys.executable, os.path.join(ROOT, "tprnn_train_human.py"),
                           "--data_dir", str(tmp_path / "missing")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  assert result.returncode == 1
  lines = [l for l in result.stderr.splitlines() if l.startswith("error:") or "Traceback" in l]
  assert lines == ["error: data directory {} not found (see data/README.md)".format(tmp_path / "missing")]
