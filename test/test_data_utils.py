"""H3.6M data helpers against independent computations and the shared data, and the skeleton
against the published one."""

import os

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import data_utils
from tprnn.datasets import h36m_skeleton
from conftest import H36M_DIR, need

# The published H3.6M skeleton: una-dinosauria/human-motion-prediction src/forward_kinematics.py,
# _some_variables. parent is 1-based (0: none); the code subtracts 1, so the root's is -1.
PUBLISHED_PARENT = [0, 1, 2, 3, 4, 5, 1, 7, 8, 9, 10, 1, 12, 13, 14, 15, 13, 17, 18, 19, 20, 21, 20,
                    23, 13, 25, 26, 27, 28, 29, 28, 31]
# offset: joint j's bone in mm, in its parent's frame, at 3j .. 3j + 2.
PUBLISHED_OFFSET = [
    0, 0, 0, -132.948591, 0, 0, 0, -442.894612, 0, 0, -454.206447, 0, 0, 0, 162.767078, 0, 0,
    74.999437, 132.948826, 0, 0, 0, -442.894413, 0, 0, -454.20659, 0, 0, 0, 162.767426, 0, 0,
    74.999948, 0, 0.1, 0, 0, 233.383263, 0, 0, 257.077681, 0, 0, 121.134938, 0, 0, 115.002227, 0, 0,
    257.077681, 0, 0, 151.034226, 0, 0, 278.882773, 0, 0, 251.733451, 0, 0, 0, 0, 0, 0, 99.999627, 0,
    100.000188, 0, 0, 0, 0, 0, 257.077681, 0, 0, 151.031437, 0, 0, 278.892924, 0, 0, 251.72868, 0, 0,
    0, 0, 0, 0, 99.999888, 0, 137.499922, 0, 0, 0, 0]
# rotInd: 1-based entries of a frame that its fkl adds to joint j's bone ([]: none).
PUBLISHED_ROT_IND = [
    [5, 6, 4], [8, 9, 7], [11, 12, 10], [14, 15, 13], [17, 18, 16], [], [20, 21, 19], [23, 24, 22],
    [26, 27, 25], [29, 30, 28], [], [32, 33, 31], [35, 36, 34], [38, 39, 37], [41, 42, 40], [],
    [44, 45, 43], [47, 48, 46], [50, 51, 49], [53, 54, 52], [56, 57, 55], [], [59, 60, 58], [],
    [62, 63, 61], [65, 66, 64], [68, 69, 67], [71, 72, 70], [74, 75, 73], [], [77, 78, 76], []]
# expmapInd: the 0-based entries 3 .. 98 in triplets, joint j's exp map at 3 + 3j .. 5 + 3j.
PUBLISHED_EXPMAP_IND = [[3 + 3 * j, 4 + 3 * j, 5 + 3 * j] for j in range(32)]


def published_positions(frames, with_rot_ind=False):
  """[..., 32, 3] joint positions of [..., 99] frames by the published skeleton and scipy rotations,
  entries 0..5 left out as docs/PROTOCOL.md section 7 says: the published fkl's row-vector chain
  (a bone times its parent's global rotation plus the parent's position; global rotation = local
  times the parent's) without its final y-z swap, and without its rotInd term unless
  `with_rot_ind`."""
  flat = np.asarray(frames, dtype=np.float64).reshape(-1, 99)
  offsets = np.reshape(PUBLISHED_OFFSET, (32, 3))
  orientation, xyz = [Rotation.identity(len(flat))], np.zeros((len(flat), 32, 3))
  for j in range(1, 32):
    parent = PUBLISHED_PARENT[j] - 1
    bone = offsets[j] + (flat[:, np.array(PUBLISHED_ROT_IND[j]) - 1]
                         if with_rot_ind and PUBLISHED_ROT_IND[j] else 0)
    xyz[:, j] = orientation[parent].inv().apply(bone) + xyz[:, parent]
    orientation.append(Rotation.from_rotvec(flat[:, PUBLISHED_EXPMAP_IND[j]]) * orientation[parent])
  return xyz.reshape(np.shape(frames)[:-1] + (32, 3))


def test_h36m_skeleton_is_the_published_one():
  """The constants, and positions equal to the published chain's without the rotInd term (exp-map
  angles added to bones as millimetres), as LTD's fkl leaves it out (docs/PROTOCOL.md section 7)."""
  np.testing.assert_array_equal(h36m_skeleton.PARENTS, np.array(PUBLISHED_PARENT) - 1)
  np.testing.assert_array_equal(h36m_skeleton.OFFSETS, np.reshape(PUBLISHED_OFFSET, (32, 3)))
  frames = np.random.RandomState(4).uniform(-1.5, 1.5, (2, 3, 99))
  xyz = h36m_skeleton.positions(frames)
  np.testing.assert_allclose(xyz, published_positions(frames), rtol=0, atol=1e-9)
  assert np.abs(xyz - published_positions(frames, with_rot_ind=True)).max() > 1.0


def test_expmap_to_rotmat_matches_scipy():
  r = Rotation.random(200, random_state=1)
  rotvec = r.as_rotvec()
  np.testing.assert_allclose(data_utils.expmap_to_rotmat(rotvec), r.as_matrix(), atol=1e-6)


def test_rotmat_to_euler_matches_scipy():
  # The SRNN angles are scipy's extrinsic xyz angles of the transposed rotation.
  r = Rotation.random(200, random_state=2)
  expected = Rotation.from_matrix(np.transpose(r.as_matrix(), (0, 2, 1))).as_euler("xyz")
  np.testing.assert_allclose(data_utils.rotmat_to_euler(r.as_matrix()), expected, atol=1e-9)


@pytest.mark.parametrize("middle,e1,e3,rebuilds", [(90, -120, 60, True), (90, 0, 0, False),
                                                   (-90, 30, -30, True), (-90, -120, 60, False)])
def test_rotmat_to_euler_gimbal_lock(middle, e1, e3, rebuilds):
  """A rotation of SRNN angles (e1, +-90 deg, e3), built by scipy: at the middle angle +-90 deg only
  e1 - e3 (+90) or e1 + e3 (-90) is defined. The published rule (SRNN RotMat2Euler.m, also
  una-dinosauria/human-motion-prediction src/data_utils.py rotmat2euler) sets e3 = 0 and reads e1
  from R's first row, where it is 0 or +-pi: its angles rebuild R's first row (the middle angle)
  always, and R itself only when e1 - e3 = pi (+90) or e1 + e3 = 0 (-90), docs/PROTOCOL.md section 3."""
  R = Rotation.from_euler("xyz", [e1, middle, e3], degrees=True).inv().as_matrix()
  assert abs(R[0, 2]) == 1  # exactly: the special case runs
  e = data_utils.rotmat_to_euler(R)
  rebuilt = Rotation.from_euler("xyz", e).inv().as_matrix()
  assert e[2] == 0
  np.testing.assert_allclose(rebuilt[0], R[0], atol=1e-9)
  assert np.allclose(rebuilt, R, rtol=0, atol=1e-9) == rebuilds


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
  with pytest.raises(data_utils.DataError,
                     match=r"walking_1.txt:2: expected 99 comma-separated numbers, found 98"):
    data_utils.read_sequence(str(bad))
  bad.write_text(",".join(["0.1"] * 98 + ["x"]) + "\n")
  with pytest.raises(data_utils.DataError, match=r"walking_1.txt:1: expected 99 numbers"):
    data_utils.read_sequence(str(bad))
  with pytest.raises(data_utils.DataError,
                     match=r"missing sequence file .*nope.txt \(see data/README.md\)"):
    data_utils.read_sequence(str(tmp_path / "nope.txt"))
