"""The field's protocols on H3.6M: 256 and all test windows against
re-implementations of the published procedures, MPJPE over 32 and 22 joints
against the 22-joint reconstruction the field's code uses, the validation
subject, and action lists."""

import glob
import os
import shutil

import numpy as np
import pytest

import data_utils
from tprnn.datasets import h36m_skeleton
from conftest import H36M_DIR, human, need, tiny, write_h36m

OTHER_JOINTS = (0, 1, 6, 11)  # from the ground truth in the field's code
COPIED = {16: 13, 20: 19, 23: 22, 24: 13, 28: 27, 31: 30}  # joint: the predicted joint it copies


@pytest.fixture(scope="module")
def walking():
  return data_utils.read_all_data(["walking"], need(H36M_DIR))


def field_256_starts(frames1, frames2):
  """HisRepItself's find_indices_256, written from its description: 128 pairs
  of alternate draws randint(16, T1), randint(16, T2), T = frames - 150."""
  rng = np.random.RandomState(1234567890)
  starts = []
  for _ in range(128):
    starts.append((1, rng.randint(16, frames1 - 150)))
    starts.append((2, rng.randint(16, frames2 - 150)))
  return starts


def test_256_windows_continue_the_srnn_generator(walking):
  frames = [len(walking.test[(5, "walking", sub, "even")]) for sub in (1, 2)]
  expected = [(sub, start + 50) for sub, start in field_256_starts(*frames)]
  anchors = data_utils.eval_anchors(walking.test, "walking", 25, "256")
  assert anchors == expected and len(anchors) == 256
  assert data_utils.eval_anchors(walking.test, "walking", 25, "srnn8") == expected[:8]


def test_all_windows_take_every_start(walking):
  windows = data_utils.eval_windows(walking.test, "walking", 50, 10, "all")
  expected = []
  for sub in (1, 2):
    seq = walking.test[(5, "walking", sub, "even")]
    expected += [seq[s:s + 60] for s in range(0, len(seq) - 60 + 1)]  # 50 observed + 10 targets
  np.testing.assert_array_equal(windows, np.stack(expected))


def test_mpjpe_of_32_joints_is_the_22_joint_reconstruction(walking):
  """Real frames, one second apart, as prediction and truth: the 32-joint
  mean equals the field's 22 predicted joints completed from the ground truth
  (0, 1, 6, 11) and by copies, to 1e-9; the 22-joint mean is theirs."""
  frames = walking.test[(5, "walking", 1, "even")]
  frames = data_utils.unnormalize(frames, walking.mean, walking.std, walking.dim_to_use)
  pred, gt = frames[25:125].astype(np.float64), frames[:100].astype(np.float64)
  pred_xyz, gt_xyz = h36m_skeleton.positions(pred), h36m_skeleton.positions(gt)
  full = np.array(gt_xyz)
  full[:, h36m_skeleton.PREDICTED_JOINTS] = pred_xyz[:, h36m_skeleton.PREDICTED_JOINTS]
  for joint, source in COPIED.items():
    full[:, joint] = full[:, source]
  assert sorted(set(range(32)) - set(h36m_skeleton.PREDICTED_JOINTS) - set(COPIED)) == list(
      OTHER_JOINTS)
  field = np.linalg.norm(full - gt_xyz, axis=-1).mean(axis=-1)  # [T]
  np.testing.assert_allclose(h36m_skeleton.mpjpe(pred, gt), field, rtol=0, atol=1e-9)
  field22 = np.linalg.norm(full - gt_xyz, axis=-1)[:, h36m_skeleton.PREDICTED_JOINTS].mean(-1)
  np.testing.assert_allclose(
      h36m_skeleton.mpjpe(pred, gt, h36m_skeleton.PREDICTED_JOINTS), field22, atol=1e-9)
  assert field.min() > 10  # a second apart, the body has moved


def test_action_lists_and_a_copy_lacking_actions(tmp_path):
  assert data_utils.define_actions("walking,eating,walking") == ["walking", "eating"]
  with pytest.raises(data_utils.DataError, match="unknown --action 'runing'"):
    data_utils.define_actions("walking,runing")
  root = write_h36m(str(tmp_path / "h36m"), frames=300, actions=("walking", "eating"))
  code, _, err = human(root, tiny(action="all", model="zero_velocity"))
  assert code == 1 and len(err.strip().splitlines()) == 1
  assert "missing sequence file {}".format(os.path.join(root, "S1", "smoking_1.txt")) in err
  assert "the actions complete in {}: --action walking,eating".format(root) in err


@pytest.mark.slow
def test_validation_evaluates_s11_and_never_reads_s5(h36m, tmp_path):
  """S11 holding S5's files, the baseline's validation table is the test
  table; a run selecting on validation trains without S5 at all."""
  mirrored = str(tmp_path / "mirrored")
  shutil.copytree(h36m, mirrored)
  shutil.rmtree(os.path.join(mirrored, "S11"))
  shutil.copytree(os.path.join(h36m, "S5"), os.path.join(mirrored, "S11"))
  tables = []
  for select_on in ("test", "validation"):
    code, out, err = human(mirrored, tiny(model="zero_velocity", select_on=select_on))
    assert code == 0, err
    tables.append(out[out.index("milliseconds"):])
  assert tables[0] == tables[1]
  no_s5 = str(tmp_path / "no_s5")
  shutil.copytree(h36m, no_s5)
  shutil.rmtree(os.path.join(no_s5, "S5"))
  code, out, err = human(no_s5, tiny(select_on="validation", iterations="10", test_every="10",
                                     train_dir=str(tmp_path / "runs")))
  assert code == 0, err
  assert "select_on_validation" in out and "Found a better model; checkpoint id 10" in out
  code, _, err = human(no_s5, tiny(select_on="validation", iterations="10", sample=None,
                                   load="10", train_dir=str(tmp_path / "runs")))
  assert code == 1 and "missing sequence file {}".format(os.path.join(no_s5, "S5")) in err


def test_all_windows_observe_at_most_50_frames(h36m):
  code, _, err = human(h36m, tiny(model="zero_velocity", eval_protocol="all", seq_length_in="60"))
  assert code == 1 and "--seq_length_in 60: the 'all' windows observe 50 frames (at most 50)" in err


def test_a_run_older_than_select_on_selected_on_test(tmp_path):
  """flags.json of a run before --select_on existed: asking for validation
  conflicts with it (its normalisation included S11), as any model flag."""
  import json
  import tprnn_train_human
  from tprnn.util.errors import UsageError
  flags = tprnn_train_human.parse_flags(["--action", "walking", "--rnn_size", "8"])
  recorded = {k: v for k, v in vars(flags).items() if isinstance(v, (str, int, float, bool, list))}
  del recorded["select_on"]
  with open(str(tmp_path / "flags.json"), "w") as f:
    json.dump(recorded, f)
  again = tprnn_train_human.parse_flags(["--experiment_dir", str(tmp_path)])
  assert again.select_on == "test" and again.rnn_size == 8
  with pytest.raises(UsageError, match="--select_on validation conflicts with the run in"):
    tprnn_train_human.parse_flags(["--experiment_dir", str(tmp_path), "--select_on", "validation"])


@pytest.mark.slow
def test_a_resume_must_normalise_as_the_run_did(tmp_path):
  root = write_h36m(str(tmp_path / "h36m"), frames=400, actions=("walking", "eating"))
  runs = str(tmp_path / "runs")
  code, _, err = human(root, tiny(iterations="10", test_every="10", train_dir=runs))
  assert code == 0, err
  directory = os.path.dirname(glob.glob(runs + "/**/flags.json", recursive=True)[0])
  code, _, err = human(root, argv=["--experiment_dir", directory, "--load", "10", "--more", "10",
                                   "--action", "walking,eating"])
  assert code == 1 and "the run was normalised with other statistics" in err
  with open(os.path.join(directory, "flags.json")) as f:
    assert '"action": "walking"' in f.read()  # the refused resume changed nothing
  code, _, err = human(root, argv=["--experiment_dir", directory, "--load", "10", "--more", "10"])
  assert code == 0, err
