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
from scipy.spatial.transform import Rotation

import data_utils
from conftest import DROP, H36M_DIR, HUMAN_INDEX, ROOT, human, losses, need, tiny, write_h36m
from numpy_reference import basic_forward

# TINY at the default learning rate (0.005) and seed 5, 25 frames predicted (every table column),
# a table and a checkpoint every 10 steps.
RUN = tiny(seq_length_out="25", test_every="10", save_every="10", seed="5", learning_rate=DROP)
COLUMNS = (1, 3, 7, 9, 13, 24)  # the predicted frames of 80, 160, 320, 400, 560 and 1000 ms


def table_row(out, name):
  """Numbers (None for n/a) of the last Euler-table row called `name` (the
  position-error table --sample prints after it is left out)."""
  euler = out.split("Mean per-joint position error")[0]
  line = [row for row in euler.splitlines() if row.startswith(name + " ")][-1]
  return [None if c.strip() == "n/a" else float(c) for c in line.split("|")[1:-1]]


def raw_sequence(data_dir, subject, action, subaction):
  return np.loadtxt(os.path.join(data_dir, "S{}".format(subject), "{}_{}.txt".format(
      action, subaction)), delimiter=",", ndmin=2)


def srnn_reference(data_dir, actions, out):
  """{action: (ground truth [8, out, 99], last observed frame [8, 99])} of the SRNN test windows,
  recomputed from the raw files with numpy (docs/PROTOCOL.md sections 1-2): the dimensions whose
  standard deviation over the 50 Hz training frames of `actions` is below 1e-4 come back at their
  mean; S5 at 25 fps; per action, a RandomState(1234567890) draws d = randint(16, T - 150) for
  sub-actions 1, 2, 1, 2, ...; the window of d observes up to frame d + 49, predicts d + 50 on."""
  train = np.concatenate([raw_sequence(data_dir, s, a, sub) for s in (1, 6, 7, 8, 9, 11)
                          for a in actions for sub in (1, 2)])
  mean, dropped = train.mean(axis=0), train.std(axis=0) < 1e-4
  found = {}
  for action in actions:
    test = [raw_sequence(data_dir, 5, action, sub)[::2] for sub in (1, 2)]
    for seq in test:
      seq[:, dropped] = mean[dropped]
    rng = np.random.RandomState(1234567890)
    starts = [(test[i % 2], rng.randint(16, len(test[i % 2]) - 150)) for i in range(8)]
    found[action] = (np.stack([seq[d + 50:d + 50 + out] for seq, d in starts]),
                     np.stack([seq[d + 49] for seq, d in starts]))
  return found


def euler(poses):
  """[..., 99] exp-map poses as the SRNN Matlab code's Euler angles, by scipy: each joint's angles
  (e1, e2, e3) of R = Rx(-e1) Ry(-e2) Rz(-e3), R the rotation of its exp-map triplet; entries
  0..5 (global translation and rotation) zeroed."""
  joints = Rotation.from_rotvec(poses[..., 3:].reshape(-1, 3))
  angles = -joints.as_euler("XYZ").reshape(poses.shape[:-1] + (96,))
  angles[..., :3] = 0
  return np.concatenate([np.zeros(poses.shape[:-1] + (3,)), angles], axis=-1)


def euler_error(preds, gt, mask_from):
  """The mean over the windows [out] of each frame's Euler error between exp-map poses
  [8, out, 99] (docs/PROTOCOL.md section 3): the norm over the dimensions whose standard
  deviation over the window's frames exceeds 1e-4 in the ground truth (mask_from "gt") or in the
  prediction ("pred")."""
  pred_e, gt_e = euler(preds), euler(gt)
  scored = (gt_e if mask_from == "gt" else pred_e).std(axis=1, keepdims=True) > 1e-4
  return np.sqrt(np.sum(np.where(scored, (pred_e - gt_e) ** 2, 0), axis=-1)).mean(axis=0)


def assert_row(row, errors):
  """A printed table row: `errors` at the table's columns to 3 decimals, n/a past the horizon."""
  assert [x is None for x in row] == [f >= len(errors) for f in COLUMNS]
  shown = [f for f in COLUMNS if f < len(errors)]
  np.testing.assert_allclose(row[:len(shown)], errors[shown], atol=0.0005 + 1e-6)


def test_zero_velocity_reproduces_published_baseline():
  need(H36M_DIR)
  code, _, err = human(H36M_DIR, model="zero_velocity", action="all_srnn")
  assert code == 1 and "missing sequence file" in err  # smoking, discussion: not in the shared data
  code, out, err = human(H36M_DIR, model="zero_velocity", action="walking", seq_length_out="25")
  assert code == 0, err
  # the table prints 3 decimals; the published table rounds to 2
  np.testing.assert_allclose(table_row(out, "walking"), [0.39, 0.68, 0.99, 1.15, 1.35, 1.32],
                             atol=0.0051)
  code, out, err = human(H36M_DIR, model="zero_velocity", action="eating", seq_length_out="25")
  assert code == 0, err
  np.testing.assert_allclose(table_row(out, "eating"), [0.27, 0.48, 0.73, 0.86, 1.04, 1.38],
                             atol=0.0051)


def test_zero_velocity_sample_writes_samples_file(tmp_path):
  """The samples file and the table against the windows and the error recomputed here from the raw
  files: the last observed frame repeated, scored by the ground truth's dimensions."""
  need(H36M_DIR)
  path = str(tmp_path / "zv.h5")
  code, out, err = human(H36M_DIR, model="zero_velocity", action="walking", sample=None,
                         samples_file=path)
  assert code == 0, err
  gt, last = srnn_reference(H36M_DIR, ["walking"], 10)["walking"]
  expected = euler_error(np.repeat(last[:, None], 10, axis=1), gt, "gt")
  with h5py.File(path, "r") as f:
    for i in range(8):
      np.testing.assert_allclose(f["expmap/gt/walking_{}".format(i)][()], gt[i], rtol=1e-5, atol=1e-5)
      np.testing.assert_allclose(f["expmap/preds/walking_{}".format(i)][()],
                                 np.repeat(last[i:i + 1], 10, axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(f["mean_walking_error"][()], expected, rtol=1e-5)
  assert_row(table_row(out, "walking"), expected)
  assert_row(table_row(out, "average"), expected)


def test_average_row_is_the_mean_over_the_actions(tmp_path):
  """--action all_srnn on synthetic files of its four actions: each row and the average row against
  the zero-velocity errors recomputed here from those files."""
  actions = ["walking", "eating", "smoking", "discussion"]
  root = write_h36m(str(tmp_path / "h36m"), frames=400, actions=actions)
  code, out, err = human(root, model="zero_velocity", action="all_srnn", seq_length_out="25")
  assert code == 0, err
  expected = {action: euler_error(np.repeat(last[:, None], 25, axis=1), gt, "gt")
              for action, (gt, last) in srnn_reference(root, actions, 25).items()}
  for action in actions:
    assert_row(table_row(out, action), expected[action])
  assert np.ptp([e[COLUMNS[-1]] for e in expected.values()]) > 0.01  # a mean of different rows
  assert_row(table_row(out, "average"), np.mean(list(expected.values()), axis=0))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  need(H36M_DIR)
  train_dir = str(tmp_path_factory.mktemp("exp"))
  code, out, err = human(H36M_DIR, RUN, iterations="30", train_dir=train_dir)
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
  assert out.count("Global step:         ") == 3
  steps = sorted(int(m) for m in re.findall(r"checkpoint-(\d+)\.index", " ".join(os.listdir(directory))))
  assert steps[-1] == 30 and 10 in steps
  assert os.listdir(os.path.join(directory, "log", "train"))
  assert os.listdir(os.path.join(directory, "log", "test"))


@pytest.mark.slow
def test_same_seed_same_losses(trained, tmp_path):
  _, out = trained
  code, again, err = human(H36M_DIR, RUN, iterations="30", train_dir=tmp_path)
  assert code == 0, err
  assert losses(again) == losses(out)
  code, other, err = human(H36M_DIR, RUN, seed="6", iterations="30", train_dir=tmp_path / "b")
  assert code == 0, err
  assert len(losses(other)) == len(losses(out)) == 3 and losses(other) != losses(out)


@pytest.mark.slow
def test_sample_reads_back_checkpoint(trained, tmp_path):
  train_dir, _ = trained
  path = str(tmp_path / "samples.h5")
  code, out, err = human(H36M_DIR, RUN, iterations="30", train_dir=train_dir, sample=None,
                         load="30", samples_file=path)
  assert code == 0, err
  assert "checkpoint-30" in out
  gt, _ = srnn_reference(H36M_DIR, ["walking"], 25)["walking"]
  with h5py.File(path, "r") as f:
    for i in range(8):
      np.testing.assert_allclose(f["expmap/gt/walking_{}".format(i)][()], gt[i], rtol=1e-5, atol=1e-5)
    preds = np.stack([f["expmap/preds/walking_{}".format(i)][()] for i in range(8)])
    errors = f["mean_walking_error"][()]
  assert preds.shape == (8, 25, 99)
  expected = euler_error(preds, gt, "pred")  # --sample scores the prediction's dimensions
  np.testing.assert_allclose(errors, expected, rtol=1e-5)
  assert_row(table_row(out, "walking"), expected)
  assert not [n for n in os.listdir(str(tmp_path)) if ".tmp" in n]


@pytest.mark.slow
def test_resume_restores_step_and_learning_rate(trained, tmp_path):
  train_dir, _ = trained
  code, out, err = human(H36M_DIR, RUN, iterations="30", train_dir=train_dir,
                         learning_rate_step="7", load="30", more="12")
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
  directory = tmp_path.joinpath("human/walking/out_25/iterations_100006/rnn_size_1024/lr_0.01",
                                "tprnn_scale_2/tprnn_layers_2/dropout_keep_1.0/basic")
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
  code, out, err = human(H36M_DIR, action="walking", sample=None, load="92000",
                         learning_rate="0.01", iterations="100006", seq_length_out="25",
                         train_dir=tmp_path, samples_file=path)
  assert code == 0, err
  data = data_utils.read_all_data(["walking"], H36M_DIR)
  enc, dec_in, _ = data_utils.split_windows(data_utils.eval_windows(data.test, "walking", 50, 25), 50)
  expected = data_utils.unnormalize(basic_forward(values, enc, dec_in, 25, 1024),
                                    data.mean, data.std, data.dim_to_use)
  with h5py.File(path, "r") as f:
    preds = np.stack([f["expmap/preds/walking_{}".format(i)][()] for i in range(8)])
  np.testing.assert_allclose(preds, expected, atol=1e-4)
  # the same through --experiment_dir and the flags file shipped for this checkpoint
  shutil.copy(os.path.join(ROOT, "docs", "published_flags", "human_checkpoint-92000.json"),
              str(directory / "flags.json"))
  again = str(tmp_path / "again.h5")
  code, out, err = human(H36M_DIR, experiment_dir=directory, sample=None, load="92000",
                         action="walking", samples_file=again)
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
  code, out, err = human(H36M_DIR, argv=["--action", "walking"] + argv)
  assert code == 1
  assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_missing_data_and_files(tmp_path):
  code, _, err = human(tmp_path / "nowhere")
  assert code == 1
  assert "data directory {} not found (see data/README.md)".format(tmp_path / "nowhere") in err
  root = write_h36m(str(tmp_path / "h36m"))
  code, _, err = human(root, action="eating")
  assert code == 1 and "missing sequence file {}".format(os.path.join(root, "S1", "eating_1.txt")) in err


def test_malformed_line_names_file_and_line(tmp_path):
  root = write_h36m(str(tmp_path / "h36m"), bad_line=((7, 2), 42))
  code, _, err = human(root, action="walking")
  assert code == 1
  assert "{}:42: expected 99 comma-separated numbers, found 97".format(
      os.path.join(root, "S7", "walking_2.txt")) in err


@pytest.mark.slow
def test_missing_checkpoint_lists_present_ones(trained):
  train_dir, _ = trained
  code, _, err = human(H36M_DIR, RUN, iterations="30", train_dir=train_dir, sample=None, load="7")
  assert code == 1
  assert re.search(r"--load 7: no checkpoint-7 in \S+ \(present: 10, [0-9, ]*30", err)


@pytest.mark.slow
def test_non_finite_loss_stops_without_saving(tmp_path):
  need(H36M_DIR)
  code, out, err = human(H36M_DIR, RUN, iterations="40", train_dir=tmp_path,
                         learning_rate="1e30", test_every="100")
  assert code == 1
  assert re.search(r"training loss became (nan|inf) at step \d+; stopped without saving "
                   r"\(last good checkpoint: none\)", err)
  assert not [f for _, _, files in os.walk(str(tmp_path)) for f in files if f.startswith("checkpoint-")]


@pytest.mark.slow
def test_script_error_is_one_line_without_traceback(tmp_path):
  result = subprocess.run([sys.executable, os.path.join(ROOT, "tprnn_train_human.py"),
                           "--data_dir", str(tmp_path / "missing")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  assert result.returncode == 1
  lines = [line for line in result.stderr.splitlines()
           if line.startswith("error:") or "Traceback" in line]
  assert lines == ["error: data directory {} not found (see data/README.md)".format(
      tmp_path / "missing")]


@pytest.mark.slow
@pytest.mark.parametrize("select_on,copy,warned", [
    ("test", ("S5/walking_1.txt", "S8/walking_2.txt"), "S8/walking_2.txt = S5/walking_1.txt"),
    ("validation", ("S11/walking_2.txt", "S1/walking_1.txt"), "S1/walking_1.txt = S11/walking_2.txt"),
    ("test", ("S11/walking_2.txt", "S1/walking_1.txt"), None),  # both train: no held-out file
    ("test", None, None)])
def test_training_files_identical_to_held_out_ones_are_named(select_on, copy, warned, tmp_path):
  data = write_h36m(str(tmp_path / "h36m"), frames=400)
  if copy:
    shutil.copyfile(os.path.join(data, copy[0]), os.path.join(data, copy[1]))
  code, out, err = human(data, tiny(iterations=1, select_on=select_on,
                                    train_dir=tmp_path / "experiments"))
  assert code == 0, err
  warnings = [line for line in out.splitlines() if line.startswith("warning:")]
  if warned is None:
    assert warnings == []
  else:
    assert warnings == ["warning: training files byte-identical to held-out ones, so those "
                        "sequences are trained on (kept, as in the original; data/README.md): "
                        + warned]
    assert out.index(warnings[0]) < out.index("step_loss")
