"""Penn Action: the loader against the published counts and an independent computation, the
zero-velocity PCK against one from the label files, the script end to end, and the authors' Penn
graph as an oracle."""

import os
import re

import h5py
import numpy as np
import pytest
import scipy.io
import tensorflow.compat.v1 as tf

from tprnn.training import checkpoints
from tprnn.training.graph import predict
import load
import tprnn_basic_model
from tprnn import prism
import tprnn_train_penn
from conftest import (PENN_CHECKPOINT, PENN_DIR, need, penn_labels, penn_validation_videos,
                      run_script, write_penn_label)

LINE = re.compile(r"Predict next (\d+) steps, l2_norm: ([0-9.]+), euclidean: ([0-9.]+), "
                  r"pck: ([0-9.]+), pck_per_joint: ([0-9.]+)")


def metric_lines(out):
  """[16, 4] of the last 16 printed metric lines."""
  rows = [[float(x) for x in m[1:]] for m in LINE.findall(out)]
  assert len(rows) >= 16 and [int(m[0]) for m in LINE.findall(out)][-16:] == list(range(1, 17))
  return np.array(rows[-16:])


@pytest.mark.slow
def test_loader_counts_on_shared_labels():
  need(PENN_DIR)
  assert len(load.load_sequences(PENN_DIR, train=True, init_velocity=False).poses) == 87543
  val = load.load_sequences(PENN_DIR, train=False, init_velocity=False)
  assert val.poses.shape == (76298, 17, 26) and val.visibilities.shape == (76298, 17, 13)
  assert load.load_sequences(PENN_DIR, train=False, init_velocity=True).poses.shape[1] == 18


def test_loader_normalisation_and_sampling(tmp_path):
  label = write_penn_label(str(tmp_path / "0001.mat"), frames=40)
  seqs = load.load_sequences(str(tmp_path), train=True, init_velocity=False)
  x, y = label["x"], label["y"]
  half = (max(x.max() - x.min(), y.max() - y.min()) + 1e-8) / 2
  assert len(seqs.poses) == 40 and np.all(seqs.bounding_box_length == 2 * half)
  # start 10, stride (40 - 1) // 17 = 2: frames 10, 12, ..., 38, then 39 repeated
  frames = [min(10 + 2 * k, 39) for k in range(17)]
  assert frames[-3:] == [38, 39, 39]
  expected_x = (x[frames] - (x.max() + x.min()) / 2) / half
  expected_y = (y[frames] - (y.max() + y.min()) / 2) / half
  np.testing.assert_allclose(seqs.poses[10, :, :13], expected_x)
  np.testing.assert_allclose(seqs.poses[10, :, 13:], expected_y)
  np.testing.assert_array_equal(seqs.visibilities[10], label["visibility"][frames])
  assert np.abs(seqs.poses).max() <= 1.0


def zero_velocity_pck(labels_dir):
  """[2, 16] PCK as published and per joint of zero velocity on the validation videos of
  `labels_dir`, by numpy from scipy's reading of the label files (docs/PROTOCOL.md section 6):
  per video the box of all joints, L = max(width, height) + 1e-8, coordinates (v - centre) / (L / 2);
  from every start s, frames min(s + k * ((T - 1) // 17), T - 1), k = 0..16; frame 0 predicted
  for frames 1..16; hits at distance < 0.1 over the target's visible joints, pooled over the videos."""
  hits, visible = np.zeros((2, 16)), np.zeros(16)
  for name in sorted(os.listdir(labels_dir)):
    label = scipy.io.loadmat(os.path.join(labels_dir, name), squeeze_me=True)
    if int(label["train"]) == 1:
      continue
    x, y, vis = (np.atleast_2d(label[k]).astype(np.float64) for k in ("x", "y", "visibility"))
    half = (max(np.ptp(x), np.ptp(y)) + 1e-8) / 2
    pose = np.concatenate([x - (x.max() + x.min()) / 2, y - (y.max() + y.min()) / 2], axis=1) / half
    frames = np.minimum(np.arange(len(x))[:, None] + (len(x) - 1) // 17 * np.arange(17), len(x) - 1)
    diff = pose[frames[:, :1]] - pose[frames[:, 1:]]  # [T, 16, 26]
    seen = vis[frames[:, 1:]]  # [T, 16, 13]
    # as published: the pairs (diff[2j], diff[2j + 1]); per joint: (x_j, y_j)
    for rule, dist in enumerate((np.hypot(diff[..., 0::2], diff[..., 1::2]),
                                 np.hypot(diff[..., :13], diff[..., 13:]))):
      hits[rule] += ((dist < 0.1) * seen).sum(axis=(0, 2))
    visible += seen.sum(axis=(0, 2))
  return hits / visible


@pytest.mark.slow
def test_zero_velocity_pck_equals_an_independent_computation():
  need(PENN_DIR)
  code, out, err = run_script(tprnn_train_penn, ["--data_dir", PENN_DIR, "--model", "zero_velocity"])
  assert code == 0, err
  expected = zero_velocity_pck(PENN_DIR)
  # printed with %f: to half a unit of the 6th decimal
  np.testing.assert_allclose(metric_lines(out)[:, 2:].T, expected, rtol=0, atol=5e-7 + 1e-9)
  # steps 1 and 16 as docs/PROTOCOL.md section 6 quotes them
  assert np.round(expected[:, [0, 15]], 4).tolist() == [[0.8227, 0.4577], [0.8013, 0.3753]]


def test_chunked_prediction_equals_one_batch():
  cfg = prism.ModelConfig(26, 2, 16, 8, 5.0, 0.01, 0.95, 2, 2, 1.0, False)
  graph = tf.Graph()
  with graph.as_default():
    model = tprnn_basic_model.TPRNNBasicModel(cfg)
  rng = np.random.RandomState(0)
  feeds = [rng.normal(size=(23, n, 26)).astype(np.float32) for n in (1, 16, 16)]
  with tf.Session(graph=graph) as sess:
    sess.run(tf.global_variables_initializer())
    whole, whole_loss = predict(sess, model, *feeds, chunk_size=1000)
    chunked, chunked_loss = predict(sess, model, *feeds, chunk_size=5)
  np.testing.assert_allclose(chunked, whole, atol=1e-6)
  assert chunked_loss == pytest.approx(whole_loss, rel=1e-6)


@pytest.mark.slow
def test_short_training_run_saves_and_samples(tmp_path):
  need(PENN_DIR)
  labels = penn_labels(tmp_path / "labels", range(1, 25))
  argv = ["--data_dir", labels, "--rnn_size", "8", "--iterations", "20", "--test_every", "10",
          "--save_every", "10", "--train_dir", str(tmp_path / "exp"), "--seed", "3"]
  code, out, err = run_script(tprnn_train_penn, argv)
  assert code == 0, err
  directory = os.path.join(str(tmp_path / "exp"), "penn", "out_16", "iterations_20", "rnn_size_8",
                           "lr_0.005", "tprnn_scale_2", "tprnn_layers_2", "dropout_keep_1.0",
                           "basic", "zero_init_velocity")
  assert len(LINE.findall(out)) == 32
  assert checkpoints.steps(directory)[-1] == 20
  samples = str(tmp_path / "s.h5")
  code, sampled, err = run_script(tprnn_train_penn, argv + ["--sample", "--load", "20",
                                                            "--samples_file", samples])
  assert code == 0, err
  np.testing.assert_allclose(metric_lines(sampled), metric_lines(out), atol=1e-6)
  with h5py.File(samples, "r") as f:
    n = f["predictions"].shape[0]
    assert f["predictions"].shape == f["ground_truth"].shape == (n, 16, 26)
    assert f["visibilities"].shape == (n, 16, 13)
    np.testing.assert_allclose(f["pck"][()], metric_lines(out)[:, 2], atol=1e-6)


@pytest.mark.slow
def test_authors_graph_oracle_through_sample(tmp_path):
  """The authors' Penn graph with seeded random weights, saved by its own
  saver into the experiment layout, restored by --sample --load: same
  per-step predictions and the same printed metrics."""
  meta = need(PENN_CHECKPOINT + ".meta")
  need(PENN_DIR)
  labels = penn_labels(tmp_path / "labels", penn_validation_videos(3))
  val = load.load_sequences(labels, train=False, init_velocity=False)
  poses = np.concatenate([val.poses[:, :1], val.poses], axis=1)
  enc, dec_in, dec_out = poses[:, :1], poses[:, 1:-1], poses[:, 2:]
  directory = (tmp_path / "exp/penn/out_16/iterations_100087/rnn_size_1024/lr_0.01/tprnn_scale_2/"
               "tprnn_layers_2/dropout_keep_1.0/basic/zero_init_velocity")
  os.makedirs(str(directory))
  rng = np.random.RandomState(42)
  graph = tf.Graph()
  with graph.as_default():
    saver = tf.train.import_meta_graph(meta)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      for v in tf.global_variables():
        if v.dtype.base_dtype == tf.float32 and "filter" not in v.op.name:
          v.load(rng.uniform(-0.05, 0.05, v.shape.as_list()), sess)
      zeros = np.zeros((len(enc), 1024))
      expected = sess.run("loss_angles/Sub/y:0", {
          "inputs/enc_in:0": enc, "inputs/dec_in:0": dec_in, "inputs/dec_out:0": dec_out,
          "inputs/act_labels:0": np.zeros((len(enc), 1)), "Placeholder:0": zeros,
          "Placeholder_1:0": zeros})
      expected = np.transpose(expected, (1, 0, 2))  # [N, 16, 26]
      saver.save(sess, str(directory / "checkpoint"), global_step=63000)
  samples = str(tmp_path / "samples.h5")
  code, out, err = run_script(tprnn_train_penn, [
      "--data_dir", labels, "--learning_rate", "0.01", "--iterations", "100087",
      "--seq_length_in", "2", "--seq_length_out", "16", "--sample", "--load", "63000",
      "--train_dir", str(tmp_path / "exp"), "--samples_file", samples])
  assert code == 0, err
  with h5py.File(samples, "r") as f:
    np.testing.assert_allclose(f["predictions"][()], expected, atol=1e-5)
  printed = metric_lines(out)
  for step in range(16):
    diff = expected[:, step] - dec_out[:, step]
    vis = val.visibilities[:, step + 1]
    dist = np.hypot(diff[:, 0::2], diff[:, 1::2])
    dist_joint = np.hypot(diff[:, :13], diff[:, 13:])
    independent = [np.linalg.norm(diff, axis=1).mean(), dist.mean(),
                   ((dist < 0.1) * vis).sum() / vis.sum(), ((dist_joint < 0.1) * vis).sum() / vis.sum()]
    np.testing.assert_allclose(printed[step], independent, atol=2e-6)


@pytest.mark.parametrize("argv,message", [
    (["--seq_length_in", "5"], "--seq_length_in 5 does not match the Penn sequences: the encoder "
                               "sees 1 frame(s), so --seq_length_in must be 2"),
    (["--init_velocity", "--seq_length_in", "2"], "--seq_length_in must be 3"),
    (["--seq_length_out", "10"], "--seq_length_out 10: Penn sequences predict 16 steps"),
    (["--dataset", "human"], "--dataset human does not match this script"),
])


def test_bad_flags(tmp_path, argv, message):
  code, _, err = run_script(tprnn_train_penn, ["--data_dir", str(tmp_path)] + argv)
  assert code == 1 and message in err and err.count("\n") == 1


def test_bad_label_folders(tmp_path):
  code, _, err = run_script(tprnn_train_penn, ["--data_dir", str(tmp_path / "none")])
  assert code == 1 and "Penn Action labels folder {} not found".format(tmp_path / "none") in err
  empty = tmp_path / "empty"
  empty.mkdir()
  code, _, err = run_script(tprnn_train_penn, ["--data_dir", str(empty), "--model", "zero_velocity"])
  assert code == 1 and "no NNNN.mat label files in {}".format(empty) in err
  only_train = tmp_path / "train_only"
  only_train.mkdir()
  write_penn_label(str(only_train / "0001.mat"), train=1)
  code, _, err = run_script(tprnn_train_penn, ["--data_dir", str(only_train),
                                               "--model", "zero_velocity"])
  assert code == 1 and "no validation videos found in {}".format(only_train) in err
  only_val = tmp_path / "val_only"
  only_val.mkdir()
  write_penn_label(str(only_val / "0001.mat"), train=-1)
  code, _, err = run_script(tprnn_train_penn, ["--data_dir", str(only_val), "--rnn_size", "4",
                                               "--train_dir", str(tmp_path / "exp")])
  assert code == 1 and "no training videos found in {}".format(only_val) in err


def test_bad_label_files(tmp_path):
  path = str(tmp_path / "0001.mat")
  write_penn_label(path, visibility=None)
  with pytest.raises(load.DataError, match=r"0001.mat: missing key\(s\) visibility"):
    load.read_label(path)
  write_penn_label(path, y=np.zeros((39, 13)))
  with pytest.raises(load.DataError, match=r"0001.mat: x, y and visibility must all be \[T, 13\], "
                                           r"got \(40, 13\), \(39, 13\) and \(40, 13\)"):
    load.read_label(path)
  with open(path, "w") as f:
    f.write("not a mat file")
  with pytest.raises(load.DataError, match=r"0001.mat: not a readable .mat label file"):
    load.read_label(path)
