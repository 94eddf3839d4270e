"""CMU-Mocap (docs/PROTOCOL.md §9): the 38-joint forward kinematics against an
independent rotation chain, the test windows against LTD's draws, the
zero-velocity baseline's Euler error and MPJPE recomputed from the raw files,
missing files and bad flags, and train / --sample / export / forecast /
visualize end to end on the shared actions, with two workers as with one."""

import os
import re
import shutil
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest
from PIL import Image
from scipy.spatial.transform import Rotation

from tprnn.datasets import cmu as cmu_dataset, cmu_skeleton
from tprnn.evaluation import cmu_windows
import export
import tprnn_train_cmu
from conftest import (CMU_DIR, CMU_SCRIPT, ROOT, TINY, assert_two_workers_equal_one_process, cmu,
                      error_lines, losses, need, run_script)
from test_export import check_export_reproduces_samples

SHARED_ACTIONS = ("basketball", "jumping", "running", "walking")
# LTD's 8 draws (utils/data_utils.py, RandomState(1234567890) per action,
# randint(0, T - 75)) on the shared test files, and T after down-sampling by 2.
LTD_DRAWS = {"basketball": (289, [130, 102, 47, 140, 51, 33, 171, 105]),
             "jumping": (1043, [386, 358, 47, 140, 819, 289, 939, 105]),
             "running": (82, [2, 6, 4, 3, 1, 3, 1, 4]),
             "walking": (180, [2, 102, 47, 12, 51, 33, 43, 60])}
# LTD utils/forward_kinematics.py, _some_variables_cmu: 1-based parents, and the
# offsets before their factor 70, flat.
LTD_PARENTS = [0, 1, 2, 3, 4, 5, 6, 1, 8, 9, 10, 11, 12, 1, 14, 15, 16, 17, 18, 19, 16, 21, 22, 23,
               24, 25, 26, 24, 28, 16, 30, 31, 32, 33, 34, 35, 33, 37]
LTD_OFFSETS = [
    0, 0, 0, 0, 0, 0, 1.65674, -1.80282, 0.62477, 2.5972, -7.13576, 0, 2.49236, -6.8477, 0,
    0.19704, -0.54136, 2.14581, 0, 0, 1.11249, 0, 0, 0, -1.6107, -1.80282, 0.62476, -2.59502,
    -7.12977, 0, -2.4678, -6.78024, 0, -0.23024, -0.63258, 2.13368, 0, 0, 1.11569, 0, 0, 0,
    0.01961, 2.0545, -0.14112, 0.01021, 2.06436, -0.05921, 0, 0, 0, 0.00713, 1.56711, 0.14968,
    0.03429, 1.56041, -0.10006, 0.01305, 1.6256, -0.05265, 0, 0, 0, 3.54205, 0.90436, -0.17364,
    4.86513, 0, 0, 3.35554, 0, 0, 0, 0, 0, 0.66117, 0, 0, 0.53306, 0, 0, 0, 0, 0, 0.5412, 0,
    0.5412, 0, 0, 0, -3.49802, 0.75994, -0.32616, -5.02649, 0, 0, -3.36431, 0, 0, 0, 0, 0,
    -0.73041, 0, 0, -0.58887, 0, 0, 0, 0, 0, -0.59786, 0, 0.59786]
# MSR-GCN configs/config.py dim_used_3d: the 25 joints the 3D models predict; they keep
# 0, 1, 2, 7, 8, 13 from the ground truth and copy joint: from (LTD main_cmu_3d.py).
PREDICTED_3D = [3, 4, 5, 6, 9, 10, 11, 12, 14, 15, 17, 18, 19, 21, 22, 23, 25, 26, 28, 30, 31, 32,
                34, 35, 37]
FIXED = [0, 1, 2, 7, 8, 13]
COPIED_FROM = {16: 15, 20: 15, 29: 15, 24: 23, 27: 23, 33: 32, 36: 32}


def raw_file(split, action, index=1):
  """A shared file as float64 [T, 117], every second frame."""
  path = os.path.join(need(CMU_DIR), split, action, "{}_{}.txt".format(action, index))
  return np.loadtxt(path, delimiter=",")[::2]


def chain_positions(frames):
  """[N, 38, 3] joint positions of [N, 117] frames by scipy rotations and
  column vectors: joint j sits at A_parent(offset_j) + p_parent with
  A_j = A_parent * R_j^T (R_j^T: the rotation by -r_j); the root's position
  and rotation are left out, as LTD's fkl."""
  n = len(frames)
  orientation = [Rotation.identity(n)] * 38
  xyz = np.zeros((n, 38, 3))
  offsets = 70 * np.reshape(LTD_OFFSETS, (38, 3))
  for j in range(1, 38):
    parent = LTD_PARENTS[j] - 1
    xyz[:, j] = orientation[parent].apply(offsets[j]) + xyz[:, parent]
    orientation[j] = orientation[parent] * Rotation.from_rotvec(-frames[:, 3 + 3 * j:6 + 3 * j])
  return xyz


def srnn_euler(frames):
  """[N, 117] -> [N, 117]: entries 3.. as Euler angles of the SRNN formula
  (e2 = -asin R02, e1 = atan2(R12, R22), e3 = atan2(R01, R00)), from scipy's matrices."""
  R = Rotation.from_rotvec(frames[:, 3:].reshape(-1, 3)).as_matrix()
  euler = np.stack([np.arctan2(R[:, 1, 2], R[:, 2, 2]), -np.arcsin(R[:, 0, 2]),
                    np.arctan2(R[:, 0, 1], R[:, 0, 0])], axis=-1)
  return np.concatenate([frames[:, :3], euler.reshape(len(frames), -1)], axis=1)


def test_the_skeleton_is_ltds():
  np.testing.assert_array_equal(cmu_skeleton.PARENTS, np.array(LTD_PARENTS) - 1)
  np.testing.assert_array_equal(cmu_skeleton.OFFSETS, 70 * np.reshape(LTD_OFFSETS, (38, 3)))


def test_forward_kinematics_is_the_rotation_chain_and_keeps_bone_lengths():
  """And the 38-joint MPJPE is the field's 25-joint fill-in: the joints not
  predicted never move or sit on the joint they are copied from."""
  assert sorted(PREDICTED_3D + FIXED + list(COPIED_FROM)) == list(range(38))
  lengths = np.linalg.norm(np.reshape(LTD_OFFSETS, (38, 3)), axis=1) * 70
  for action in SHARED_ACTIONS:
    frames = raw_file("test", action)
    xyz = cmu_skeleton.positions(frames)  # [T, 38, 3]
    np.testing.assert_allclose(xyz[::7], chain_positions(frames[::7]), atol=1e-9)
    for j in range(1, 38):
      bone = np.linalg.norm(xyz[:, j] - xyz[:, LTD_PARENTS[j] - 1], axis=-1)
      np.testing.assert_allclose(bone, lengths[j], atol=1e-6, err_msg="joint {}".format(j))
    for joint, base in COPIED_FROM.items():
      np.testing.assert_allclose(xyz[:, joint], xyz[:, base], atol=1e-9)
    assert np.ptp(xyz[:, FIXED], axis=0).max() < 1e-9
    assert np.ptp(xyz[..., 1], axis=1).max() > 1500  # standing, a body about 1.8 thousand units tall
    assert np.ptp(xyz[:, PREDICTED_3D], axis=0).max() > 100  # that moves


def test_windows_are_ltds_draws_continued_and_every_start():
  for action, (length, draws) in LTD_DRAWS.items():
    assert len(raw_file("test", action)) == length
    assert [a - 50 for a in cmu_windows.anchors(length, 25, "8")] == draws
    rng = np.random.RandomState(1234567890)
    continued = [50 + rng.randint(0, length - 75) for _ in range(256)]
    assert cmu_windows.anchors(length, 25, "256") == continued
    assert cmu_windows.anchors(length, 10, "all") == list(range(50, length - 10 + 1))
    sequence = np.arange(length)[:, None]
    assert cmu_windows.windows(sequence, 10, 25, "8")[:, :, 0].tolist() == [
        list(range(d + 40, d + 75)) for d in draws]


def ltd_errors(gt, pred):
  """LTD's Euler error (every entry, 0..5 zeroed) and 38-joint MPJPE of
  [N, T, 117] predictions, averaged over the windows: ([T], [T])."""
  gt_euler = np.stack([srnn_euler(w) for w in gt])
  pred_euler = np.stack([srnn_euler(w) for w in pred])
  gt_euler[..., :6] = pred_euler[..., :6] = 0
  euler = np.sqrt(((gt_euler - pred_euler) ** 2).sum(axis=-1)).mean(axis=0)
  mpjpe = np.stack([np.linalg.norm(chain_positions(p) - chain_positions(g), axis=-1).mean(-1)
                    for g, p in zip(gt, pred)]).mean(axis=0)
  return euler, mpjpe


def ltd_windows(action):
  """The raw ground truth [8, 25, 117] and last observed frames [8, 117] of LTD's windows."""
  frames = raw_file("test", action)
  draws = LTD_DRAWS[action][1]
  return np.stack([frames[d + 50:d + 75] for d in draws]), np.stack([frames[d + 49] for d in draws])


def test_zero_velocity_errors_equal_an_independent_computation(tmp_path):
  samples = str(tmp_path / "zero.h5")
  code, out, err = cmu(need(CMU_DIR), argv=["--action", "walking,running", "--model",
                                            "zero_velocity", "--sample", "--samples_file", samples])
  assert code == 0, err
  assert "MPJPE (mm, all 38 joints" in out
  with h5py.File(samples, "r") as f:
    assert f.attrs["dataset"] == "cmu"
    for action in ("walking", "running"):
      gt, last = ltd_windows(action)
      euler, mpjpe = ltd_errors(gt, np.repeat(last[:, None], 25, axis=1))
      np.testing.assert_allclose(f["mean_{}_error".format(action)][()], euler, atol=1e-4)
      np.testing.assert_allclose(f["mean_{}_mpjpe".format(action)][()], mpjpe, atol=1e-2)
      assert f["expmap/gt/{}_7".format(action)].shape == (25, 117)


def test_a_moving_prediction_is_scored_by_ltds_rule():
  """Noise of 0.05 rad on every predicted entry: every entry counts, as in
  LTD, where the dimensions the model does not predict are the ground truth's
  (the rule of ConvSeq2Seq and DMGNN would leave out entries 80 and 107,
  constant in the ground truth)."""
  flags = tprnn_train_cmu.parse_flags(["--data_dir", need(CMU_DIR), "--action", "walking"])
  data = cmu_dataset.read_data(flags)
  test = cmu_dataset.window_test(flags, data)
  rng = np.random.RandomState(0)

  def noisy(enc, dec_in, dec_out):
    return dec_out + 0.05 * rng.randn(*dec_out.shape) / data.std[data.dim_to_use], 0.0

  errors, predictions, _ = test.evaluate(noisy, cmu_dataset.EULER_MASK)
  gt, _ = ltd_windows("walking")
  pred = np.array(gt)
  pred[..., data.dim_to_use] = predictions["walking"][..., data.dim_to_use]
  euler, mpjpe = ltd_errors(gt, pred)
  np.testing.assert_allclose(errors["walking"], euler, atol=1e-4)
  np.testing.assert_allclose(cmu_skeleton.mpjpe(predictions["walking"], test.gt_expmap["walking"])
                             .mean(axis=0), mpjpe, atol=1e-2)


def linked_copy(root, actions, drop=()):
  """A data directory of symbolic links to the shared files of `actions`, without `drop`."""
  for split in ("train", "test"):
    for action in actions:
      os.makedirs(os.path.join(root, split, action))
      for name in os.listdir(os.path.join(need(CMU_DIR), split, action)):
        if os.path.join(split, action, name) not in drop:
          os.symlink(os.path.join(CMU_DIR, split, action, name),
                     os.path.join(root, split, action, name))
  return str(root)


@pytest.mark.parametrize("action, drop, missing, complete", [
    ("all", (), "train/basketball_signal/basketball_signal_1.txt",
     "--action basketball,jumping,running,walking"),
    ("walking,running", ("train/walking/walking_3.txt",), "train/walking/walking_3.txt",
     "--action basketball,jumping,running"),
])
def test_a_missing_file_is_one_line_naming_it_and_the_complete_actions(tmp_path, action, drop,
                                                                        missing, complete):
  data = linked_copy(tmp_path / "cmu", SHARED_ACTIONS, drop)
  code, _, err = cmu(data, TINY, action=action, train_dir=str(tmp_path / "exp"))
  assert code == 1
  (line,) = error_lines(err)
  assert os.path.join(data, missing) in line and line.endswith(complete)
  assert not os.path.exists(str(tmp_path / "exp"))


@pytest.mark.parametrize("argv, message", [
    (["--eval_protocol", "srnn8"], "unknown --eval_protocol 'srnn8': expected one of 8, 256, all"),
    (["--seq_length_out", "30"], "--seq_length_out 30: the CMU-Mocap test windows hold 2 to 25"),
    (["--seq_length_in", "60"], "--seq_length_in 60: the CMU-Mocap test windows observe 50"),
    (["--action", "walking,dancing"], "unknown --action 'dancing'"),
])
def test_bad_flags_are_one_line(argv, message):
  code, _, err = run_script(tprnn_train_cmu, ["--rnn_size", "8"] + argv)
  assert code == 1 and len(error_lines(err)) == 1 and message in err, err


@pytest.mark.slow
def test_train_sample_export_forecast_and_visualize(tmp_path):
  flags = dict(TINY, **{"--action": "walking,running", "--seq_length_out": "25",
                        "--iterations": "20", "--test_every": "10", "--save_every": "10",
                        "--train_dir": str(tmp_path / "exp")})
  code, out, err = cmu(need(CMU_DIR), flags)
  assert code == 0, err
  assert out.count("walking          |") == 2 and len(losses(out)) == 2
  directory = re.search(r"Experiment directory: (\S+)", out).group(1)
  assert directory.endswith(os.path.join("cmu", "walking,running", "out_25", "iterations_20",
                                         "rnn_size_8", "lr_0.05", "tprnn_scale_2", "tprnn_layers_2",
                                         "dropout_keep_1.0", "basic"))
  samples = str(tmp_path / "samples.h5")
  code, out, err = run_script(tprnn_train_cmu, ["--experiment_dir", directory, "--load", "20",
                                                "--sample", "--samples_file", samples])
  assert code == 0, err
  code, out, err = run_script(export, ["--experiment_dir", directory, "--load", "20",
                                       "--out", str(tmp_path / "export")])
  assert code == 0, err
  assert re.search(r"observed +node observed +float32 \[None, 10, 117\]", out)
  observed, preds = check_export_reproduces_samples(tmp_path, str(tmp_path / "export"), samples,
                                                    "walking")
  # forecast.py on raw frames at the file's rate: every second one is the observed window
  raw = np.repeat(observed[3], 2, axis=0)
  np.save(str(tmp_path / "poses.npy"), raw)
  run = subprocess.run([sys.executable, os.path.join(ROOT, "forecast.py"), "--model",
                        str(tmp_path / "export"), "--input", str(tmp_path / "poses.npy"),
                        "--output", str(tmp_path / "forecast.npy")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
  assert run.returncode == 0, run.stderr
  np.testing.assert_allclose(np.load(str(tmp_path / "forecast.npy")), preds[3], rtol=1e-6,
                             atol=1e-5)
  run = subprocess.run([sys.executable, os.path.join(ROOT, "visualize.py"), "cmu", samples,
                        "--action", "running", "--seed", "2", "--out", str(tmp_path / "fig")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
  assert run.returncode == 0, run.stderr
  assert Image.open(str(tmp_path / "fig" / "cmu_running_2.gif")).n_frames == 10 + 25


@pytest.mark.slow
def test_two_workers_equal_one_process_with_twice_the_batch(processes, tmp_path):
  """The generic model here, the basic one in test_distributed.py."""
  flags = dict(TINY, **{"--data_dir": need(CMU_DIR), "--action": "walking,running",
                        "--model": "generic", "--tprnn_layers": "3", "--fix_generic_contexts": None,
                        "--max_gradient_norm": "0.05", "--learning_rate": "0.01"})
  assert_two_workers_equal_one_process(processes, CMU_SCRIPT, flags, tmp_path)


def test_set_up_takes_a_local_zip_and_fails_in_one_line(tmp_path):
  """data/download_cmu.sh, run from a copy of data/: the repository's zip is
  unpacked and its complete actions named; an address that does not answer
  is one line saying what to do, and leaves nothing behind."""
  data = tmp_path / "data"
  data.mkdir()
  shutil.copy(os.path.join(ROOT, "data", "download_cmu.sh"), str(data))
  archive = str(tmp_path / "master.zip")
  line = "0.5," * 116 + "0.5\n"
  with zipfile.ZipFile(archive, "w") as f:
    for name in ["train/walking/walking_{}.txt".format(i) for i in range(1, 6)] + [
        "test/walking/walking_1.txt", "train/running/running_1.txt"]:
      f.writestr("repo-master/data/cmu_mocap/" + name, line)
  script = ["bash", str(data / "download_cmu.sh")]
  done = subprocess.run(script + [archive], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        universal_newlines=True, timeout=60)
  assert done.returncode == 0, done.stderr
  assert done.stdout.strip().endswith("the actions complete (--action): walking")
  assert (data / "cmu_mocap" / "test" / "walking" / "walking_1.txt").read_text() == line
  shutil.rmtree(str(data / "cmu_mocap"))
  failed = subprocess.run(script, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                          universal_newlines=True,
                          env=dict(os.environ, CMU_URL="http://127.0.0.1:9/master.zip"))
  assert failed.returncode == 1 and len(failed.stderr.strip().splitlines()) == 1
  assert "bash data/download_cmu.sh path/to/archive.zip" in failed.stderr
  assert sorted(os.listdir(str(data))) == ["download_cmu.sh"]


def test_compare_refuses_files_of_two_datasets(tmp_path):
  import visualize
  from tprnn.util.figures import VisualizeError
  paths = []
  for name, attrs in (("h36m.h5", {}), ("cmu.h5", {"dataset": "cmu"})):
    paths.append(str(tmp_path / name))
    with h5py.File(paths[-1], "w") as f:
      f.attrs.update(attrs)
      f["mean_walking_error"] = np.ones(25)
  with pytest.raises(VisualizeError, match=r"one dataset: \S+h36m.h5 is a h36m file, \S+cmu.h5 a cmu"):
    visualize.main(["compare"] + paths + ["--out", str(tmp_path / "out")])
  assert not os.listdir(str(tmp_path / "out"))
