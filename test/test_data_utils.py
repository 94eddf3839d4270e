"""H3.6M data helpers against independent computations and the shared data."""

import os

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import data_utils
from conftest import H36M_DIR, need


def test_expmap_to_rotmat_matches_scipy():
  r = Rotation.random(200, random_state=1)
  rotvec = r.as_rotvec()
  np.testing.assert_allclose(data_utils.expmap_to_rotmat(rotvec), r.as_matrix(), atol=1e-6)


def test_rotmat_to_euler_matches_scipy():
  # The SRNN angles are scipy's extrinsic xyz angles of the transposed rotation.
  r = Rotation.random(200, random_state=2)
  expected = Rotation.from_matrix(np.transpose(r.as_matrix(), (0, 2, 1))).as_euler("xyz")
  np.testing.assert_allclose(data_utils.rotmat_to_euler(r.as_matrix()), expected, atol=1e-9)


def test_rotmat_to_euler_gimbal_lock():
  # R[0, 2] = -1: rotation of +90 degrees about y; the Matlab code sets E3 = 0.
  R = Rotation.from_euler("y", 90, degrees=True).as_matrix()
  R[0, 2] = -1.0
  e = data_utils.rotmat_to_euler(R)
  assert e[1] == pytest.approx(np.pi / 2) and e[2] == 0.0
  assert e[0] == pytest.approx(np.arctan2(R[0, 1], R[0, 2]))


def test_expmap_to_euler_keeps_translation_and_converts_each_joint():
  rng = np.random.RandomState(0)
  poses = rng.uniform(-1, 1, (4, 99)).astype(np.float32)
  euler = data_utils.expmap_to_euler(poses)
  np.testing.assert_array_equal(euler[:, :3], poses[:, :3])
  for joint in (1, 17, 32):
    rot = Rotation.from_rotvec(poses[2, 3 * joint:3 * joint + 3].astype(np.float64))
    expected = Rotation.from_matrix(rot.as_matrix().T).as_euler("xyz")
    np.testing.assert_allclose(euler[2, 3 * joint:3 * joint + 3], expected, atol=1e-5)


def test_normalize_unnormalize_round_trip():
  rng = np.random.RandomState(3)
  frames = rng.normal(size=(500, 99)).astype(np.float32)
  frames[:, [0, 5, 40]] = 0.25  # constant dims get dropped
  mean, std, ignore, use = data_utils.normalization_stats(frames)
  assert list(ignore) == [0, 5, 40] and len(use) == 96
  assert np.all(std[ignore] == 1.0)
  normed = data_utils.normalize({"k": frames}, mean, std, use)["k"]
  assert normed.shape == (500, 96)
  np.testing.assert_allclose(normed.mean(0), 0, atol=1e-4)
  np.testing.assert_allclose(data_utils.unnormalize(normed, mean, std, use), frames, atol=1e-5)


def test_split_windows_layout():
  w = np.arange(2 * 8).reshape(2, 8, 1)
  enc, dec_in, dec_out = data_utils.split_windows(w, source_len=5)
  assert enc[0, :, 0].tolist() == [0, 1, 2, 3]
  assert dec_in[0, :, 0].tolist() == [4, 5, 6]
  assert dec_out[0, :, 0].tolist() == [5, 6, 7]


def test_random_windows_start_after_frame_16():
  seqs = {("s", i): np.arange(40 + i, dtype=np.float32)[:, None] for i in range(3)}
  w = data_utils.random_windows(seqs, np.random.RandomState(0), 200, window_len=20)
  starts = w[:, 0, 0]
  assert w.shape == (200, 20, 1)
  assert starts.min() >= 16 and np.all(starts + 20 <= 42)
  np.testing.assert_array_equal(np.diff(w[..., 0], axis=1), 1)


def test_define_actions():
  assert data_utils.define_actions("walking") == ["walking"]
  assert len(data_utils.define_actions("all")) == 15
  assert data_utils.define_actions("all_srnn") == ["walking", "eating", "smoking", "discussion"]
  with pytest.raises(data_utils.DataError, match="unknown --action 'running'.*walkingtogether"):
    data_utils.define_actions("running")


def test_srnn_windows_on_shared_walking_data():
  """Re-derives the SRNN windows from the raw files with np.loadtxt and the
  protocol of docs/PROTOCOL.md §2, independently of read_all_data."""
  need(H36M_DIR)
  data = data_utils.read_all_data(["walking"], H36M_DIR)
  train_full = np.concatenate([
      np.loadtxt(os.path.join(H36M_DIR, "S{}".format(s), "walking_{}.txt".format(a)),
                 delimiter=",", dtype=np.float32)
      for s in (1, 6, 7, 8, 9, 11) for a in (1, 2)])
  std = train_full.std(0)
  use = np.where(std >= 1e-4)[0]
  assert len(use) == 54 and np.array_equal(use, data.dim_to_use)
  test_seqs = [np.loadtxt(os.path.join(H36M_DIR, "S5", "walking_{}.txt".format(a)),
                          delimiter=",", dtype=np.float32)[::2] for a in (1, 2)]
  rng = np.random.RandomState(1234567890)
  seeds = [rng.randint(16, len(test_seqs[i % 2]) - 150) for i in range(8)]
  source, target = 50, 25
  windows = data_utils.eval_windows(data.test, "walking", source, target)
  for i, d in enumerate(seeds):
    raw = test_seqs[i % 2][d + 50 - source:d + 50 + target]
    expected = ((raw - train_full.mean(0)) / np.where(std < 1e-4, 1, std))[:, use]
    np.testing.assert_allclose(windows[i], expected, atol=2e-4)


def test_euler_errors_dimension_rules():
  gt = np.zeros((1, 4, 99))
  gt[0, :, 10] = [0.0, 1.0, 2.0, 3.0]   # varies in the ground truth
  pred = np.zeros((1, 4, 99))
  pred[0, :, 20] = [1.0, 0.0, 1.0, 0.0]  # varies in the prediction only
  pred[0, :, 2] = 5.0                    # global entries are never scored
  np.testing.assert_allclose(data_utils.euler_errors(pred, gt, "gt")[0], [0, 1, 2, 3])
  np.testing.assert_allclose(data_utils.euler_errors(pred, gt, "pred")[0], [1, 0, 1, 0])


def test_read_sequence_errors(tmp_path):
  bad = tmp_path / "walking_1.txt"
  bad.write_text(",".join(["0.1"] * 99) + "\n" + ",".join(["0.1"] * 98) + "\n")
  with pytest.raises(data_utils.DataError, match=r"walking_1.txt:2: expected 99 comma-separated numbers, found 98"):
    data_utils.read_sequence(str(bad))
  bad.write_text(",".join(["0.1"] * 98 + ["x"]) + "\n")
  with pytest.raises(data_utils.DataError, match=r"walking_1.txt:1: expected 99 numbers"):
    data_utils.read_sequence(str(bad))
  with pytest.raises(data_utils.DataError, match=r"missing sequence file .*nope.txt \(see data/README.md\)"):
    data_utils.read_sequence(str(tmp_path / "nope.txt"))
