"""H3.6M exponential-map data: reading, normalisation, batches, SRNN test
windows and the Euler-angle error of the published protocol (docs/PROTOCOL.md §1-3)."""

import collections
import filecmp
import os

import numpy as np

from tprnn.util import errors
from tprnn.util.progress import progress

ACTIONS = ("walking", "eating", "smoking", "discussion", "directions",
           "greeting", "phoning", "posing", "purchases", "sitting",
           "sittingdown", "takingphoto", "waiting", "walkingdog",
           "walkingtogether")
ACTION_GROUPS = {"all": ACTIONS, "all_srnn": ACTIONS[:4]}

TRAIN_SUBJECTS = (1, 6, 7, 8, 9, 11)
TEST_SUBJECT = 5
VALIDATION_TRAIN_SUBJECTS, VALIDATION_SUBJECT = (1, 6, 7, 8, 9), 11  # LTD / HisRepItself
SUBACTIONS = (1, 2)
POSE_DIM = 99
MIN_STD = 1e-4

# Table columns: frame index (25 fps) -> milliseconds.
HORIZON_FRAMES = (1, 3, 7, 9, 13, 24)
HORIZON_MS = (80, 160, 320, 400, 560, 1000)

# SRNN test protocol: fixed seed, eight windows, first frame >= 16,
# 50 frames of context before and 100 after the drawn index.
SRNN_SEED = 1234567890
SRNN_NUM_SEEDS = 8
SRNN_PREFIX, SRNN_SUFFIX = 50, 100
MIN_START = 16
PROTOCOLS = ("srnn8", "256", "all")
PROTOCOL_PAIRS = {"srnn8": SRNN_NUM_SEEDS // 2, "256": 128}  # draws of the SRNN generator

DATA_README = "data/README.md"


class DataError(errors.Error, ValueError):
  """Bad or missing input data; its message is one line for the user."""


Dataset = collections.namedtuple("Dataset", "train test mean std dim_to_use")


def define_actions(action, actions=ACTIONS, groups=ACTION_GROUPS):
  """The action names `--action` selects among `actions` (H3.6M's by
  default): one action, a comma-separated list (walking,eating) or a group
  (all, all_srnn)."""
  if action in groups:
    return list(groups[action])
  names = [a.strip() for a in action.split(",")]
  unknown = [a for a in names if a not in actions]
  if unknown:
    raise DataError("unknown --action '{}': expected one of {}, or several joined by commas".format(
        unknown[0] or action, ", ".join(sorted(groups) + list(actions))))
  return sorted(set(names), key=names.index)


def check_data_folder(path, what, expected, inner):
  """Raises DataError unless folder `path` exists: the message says what a
  relative path is relative to, and names `path/inner` when that folder holds
  the `expected` entry that `path` lacks (--data_dir data/h3.6m for .../dataset)."""
  nested = os.path.join(path, inner)
  if not os.path.exists(os.path.join(path, expected)) and os.path.exists(
      os.path.join(nested, expected)):
    raise DataError("{} {} holds no {} but {} does: pass {}".format(
        what, path, expected, nested, nested))
  if not os.path.isdir(path):
    where = "" if os.path.isabs(path) else " (relative to the current directory, {})".format(
        os.getcwd())
    raise DataError("{} {} not found{} (see {})".format(what, path, where, DATA_README))


def check_files(data_dir, subjects, actions):
  """Every (subject, action, subaction) file must exist; a missing one is an
  error naming it and the actions whose files are all there."""
  missing = [sequence_path(data_dir, s, a, sub) for a in actions for s in subjects
             for sub in SUBACTIONS if not os.path.isfile(sequence_path(data_dir, s, a, sub))]
  if not missing:
    return
  complete = [a for a in ACTIONS if all(os.path.isfile(sequence_path(data_dir, s, a, sub))
                                        for s in TRAIN_SUBJECTS + (TEST_SUBJECT,)
                                        for sub in SUBACTIONS)]
  raise DataError("missing sequence file {} (see {}); the actions complete in {}: {}".format(
      missing[0], DATA_README, data_dir,
      "--action " + ",".join(complete) if complete else "none"))


def sequence_path(data_dir, subject, action, subaction):
  return os.path.join(data_dir, "S{}".format(subject),
                      "{}_{}.txt".format(action, subaction))


def read_sequence(path, dim=POSE_DIM):
  """Reads one comma-separated exp-map file of `dim` numbers a line (99 on
  H3.6M). Returns float32 [T, dim], every value finite."""
  if not os.path.isfile(path):
    raise DataError("missing sequence file {} (see {})".format(path, DATA_README))
  try:
    with open(path, encoding="utf-8") as f:
      rows = [line.strip().split(",") for line in f if line.strip()]
  except UnicodeDecodeError as e:
    raise DataError("{}: not text (undecodable byte at offset {}); expected {} comma-separated "
                    "numbers a line".format(path, e.start, dim))
  for lineno, row in enumerate(rows, 1):
    if len(row) != dim:
      raise DataError("{}:{}: expected {} comma-separated numbers, found {}".format(
          path, lineno, dim, len(row)))
  try:
    frames = np.array(rows, dtype=np.float32).reshape(-1, dim)
  except ValueError:
    lineno = next(i for i, row in enumerate(rows, 1) if not _all_floats(row))
    raise DataError("{}:{}: expected {} numbers, found a non-number".format(
        path, lineno, dim))
  finite = np.isfinite(frames).all(axis=1)
  if not finite.all():
    raise DataError("{}:{}: a value is not finite (nan or inf)".format(
        path, int(np.argmin(finite)) + 1))
  return frames


def identical_files(data_dir, train_subjects, held_out_subjects, actions):
  """The pairs of byte-identical files of `actions`, one of `train_subjects` and
  one of `held_out_subjects`, as [(training path, held-out path)] relative to
  `data_dir`: test sequences seen in training (a public copy has four such pairs,
  data/README.md)."""
  def files(subjects):
    return [sequence_path(data_dir, s, a, sub) for s in subjects for a in actions
            for sub in SUBACTIONS if os.path.isfile(sequence_path(data_dir, s, a, sub))]

  held_out = collections.defaultdict(list)  # compare only files of equal size
  for path in files(held_out_subjects):
    held_out[os.path.getsize(path)].append(path)
  return [(os.path.relpath(path, data_dir), os.path.relpath(other, data_dir))
          for path in files(train_subjects) for other in held_out[os.path.getsize(path)]
          if filecmp.cmp(path, other, shallow=False)]


def _all_floats(row):
  try:
    [float(x) for x in row]
    return True
  except ValueError:
    return False


def load_data(data_dir, subjects, actions):
  """Reads every (subject, action, subaction) file.

  Returns (sequences, full_rate): sequences maps (subject, action, subaction,
  'even') to the float32 [T/2, 99] sequence down-sampled to 25 fps; full_rate
  is the float32 [sum T, 99] concatenation of the 50 fps frames, from which
  the normalisation statistics are taken.
  """
  check_data_folder(data_dir, "data directory", "S{}".format(subjects[0]), "dataset")
  check_files(data_dir, subjects, actions)
  sequences, full_rate = {}, []
  keys = [(s, a, sub) for s in subjects for a in actions for sub in SUBACTIONS]
  for subject, action, subaction in progress(keys, len(keys), "Reading H3.6M", "file"):
    frames = read_sequence(sequence_path(data_dir, subject, action, subaction))
    sequences[(subject, action, subaction, "even")] = frames[::2]
    full_rate.append(frames)
  return sequences, np.concatenate(full_rate, axis=0)


def normalization_stats(full_rate):
  """Mean and std per dimension of [N, D] frames; dimensions with std < 1e-4
  are dropped.

  Returns (mean [D], std [D] with dropped dims set to 1, dim_to_ignore,
  dim_to_use) as in the SRNN pre-processing.
  """
  mean = np.mean(full_rate, axis=0)
  std = np.std(full_rate, axis=0)
  dim_to_ignore = np.where(std < MIN_STD)[0]
  dim_to_use = np.where(std >= MIN_STD)[0]
  std[dim_to_ignore] = 1.0
  return mean, std, dim_to_ignore, dim_to_use


def normalize(sequences, mean, std, dim_to_use):
  """Maps each [T, D] sequence to its normalised [T, len(dim_to_use)] form."""
  return {key: ((seq - mean) / std)[:, dim_to_use] for key, seq in sequences.items()}


def unnormalize(poses, mean, std, dim_to_use):
  """Inverse of `normalize` for [..., len(dim_to_use)] -> float32 [..., D]
  (D = len(mean), 99 on H3.6M); dropped dimensions come back as their mean."""
  full = np.zeros(poses.shape[:-1] + (len(mean),), dtype=np.float32)
  full[..., dim_to_use] = poses
  return full * std.astype(np.float32) + mean.astype(np.float32)


def read_all_data(actions, data_dir, train_subjects=TRAIN_SUBJECTS, test_subject=TEST_SUBJECT):
  """Loads the sequences of `train_subjects` (default 1, 6, 7, 8, 9, 11) and
  of `test_subject` (default 5), normalised with the statistics of the
  full-rate training frames."""
  train, full_rate = load_data(data_dir, train_subjects, actions)
  test, _ = load_data(data_dir, [test_subject], actions)
  mean, std, _, dim_to_use = normalization_stats(full_rate)
  return Dataset(normalize(train, mean, std, dim_to_use),
                 normalize(test, mean, std, dim_to_use), mean, std, dim_to_use)


def split_windows(windows, source_len):
  """Splits [N, source_len + target_len, D] windows into the model's feeds.

  Returns encoder input [N, source_len-1, D] (frames 0..in-2), decoder input
  [N, target_len, D] (frames in-1..in+out-2), decoder target [N, target_len, D]
  (frames in..in+out-1).
  """
  return (windows[:, :source_len - 1], windows[:, source_len - 1:-1],
          windows[:, source_len:])


def random_windows(sequences, rng, batch_size, window_len):
  """Draws `batch_size` windows [N, window_len, D]: a random sequence, then a
  random first frame in [16, T - window_len)."""
  keys = list(sequences)
  windows = []
  for key_index in rng.choice(len(keys), batch_size):
    seq = sequences[keys[key_index]]
    start = rng.randint(MIN_START, len(seq) - window_len)
    windows.append(seq[start:start + window_len])
  return np.stack(windows)


def eval_anchors(test_set, action, target_len, protocol="srnn8", subject=TEST_SUBJECT):
  """[(sub-action, first target frame)] of every test window of `action`:
  srnn8, the SRNN seeds d + 50 of RandomState(1234567890) drawn alternately
  on sub-actions 1 and 2 (4 pairs); 256, the same draws continued to 128
  pairs; all, every window of 50 frames and `target_len` targets, stride 1."""
  lengths = [len(test_set[(subject, action, sub, "even")]) for sub in SUBACTIONS]
  if protocol == "all":
    anchors = [(sub, anchor) for sub, length in zip(SUBACTIONS, lengths)
               for anchor in range(SRNN_PREFIX, length - target_len + 1)]
    if not anchors:
      raise DataError("S{} {} is too short for a window of {} + {} frames at 25 fps".format(
          subject, action, SRNN_PREFIX, target_len))
    return anchors
  need = MIN_START + SRNN_PREFIX + SRNN_SUFFIX + 1
  for sub, length in zip(SUBACTIONS, lengths):
    if length < need:
      raise DataError("S{} {}_{} has {} frames at 25 fps; the SRNN test windows need at least {} "
                      "({} at 50 Hz)".format(subject, action, sub, length, need, 2 * need))
  rng = np.random.RandomState(SRNN_SEED)
  return [(SUBACTIONS[i % 2], SRNN_PREFIX + rng.randint(MIN_START, lengths[i % 2] - SRNN_PREFIX -
                                                         SRNN_SUFFIX))
          for i in range(2 * PROTOCOL_PAIRS[protocol])]


def eval_windows(test_set, action, source_len, target_len, protocol="srnn8",
                 subject=TEST_SUBJECT):
  """The test windows [N, source_len + target_len, D] of `action` under
  `protocol` (see eval_anchors): frames [a - source_len, a + target_len) of
  each first target frame a."""
  return np.stack([test_set[(subject, action, sub, "even")][a - source_len:a + target_len]
                   for sub, a in eval_anchors(test_set, action, target_len, protocol, subject)])


def expmap_to_rotmat(r):
  """Rodrigues' formula, [..., 3] axis-angle -> [..., 3, 3] rotation."""
  r = np.asarray(r, dtype=np.float64)
  theta = np.linalg.norm(r, axis=-1)[..., None, None]
  axis = r / (theta[..., 0] + np.finfo(np.float32).eps)
  x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
  zero = np.zeros_like(x)
  skew = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1)
  skew = skew.reshape(axis.shape[:-1] + (3, 3))  # [..., 3, 3]
  return np.eye(3) + np.sin(theta) * skew + (1 - np.cos(theta)) * (skew @ skew)


def rotmat_to_euler(R):
  """[..., 3, 3] rotation -> [..., 3] Euler angles of the SRNN Matlab code."""
  r02 = R[..., 0, 2]
  gimbal = np.abs(r02) == 1
  e2 = np.where(gimbal, -np.sign(r02) * np.pi / 2, -np.arcsin(np.clip(r02, -1, 1)))
  cos2 = np.where(gimbal, 1.0, np.cos(e2))
  e1 = np.where(gimbal, np.arctan2(R[..., 0, 1], r02),
                np.arctan2(R[..., 1, 2] / cos2, R[..., 2, 2] / cos2))
  e3 = np.where(gimbal, 0.0, np.arctan2(R[..., 0, 1] / cos2, R[..., 0, 0] / cos2))
  return np.stack([e1, e2, e3], axis=-1)


def expmap_to_euler(poses):
  """[..., 3 + 3J] exp-map poses (J = 32 on H3.6M) -> the same with the J
  triplets from entry 3 on converted to Euler angles; entries 0..2
  (translation) are kept."""
  joints = poses[..., 3:].reshape(poses.shape[:-1] + (-1, 3))  # [..., J, 3]
  euler = rotmat_to_euler(expmap_to_rotmat(joints))
  out = np.array(poses, dtype=np.float32)
  out[..., 3:] = euler.reshape(poses.shape[:-1] + (-1,))
  return out


def euler_errors(pred_euler, gt_euler, mask_from):
  """Per-frame Euclidean error [N, T] between Euler poses [N, T, D].

  The first six entries (global translation and rotation) are zeroed in both.
  The dimensions scored are those whose std over time exceeds 1e-4 in the
  ground truth (`mask_from="gt"`, the training-loop rule) or in the
  prediction (`mask_from="pred"`, the original `--sample` rule), or all of
  them (`mask_from="all"`, LTD's rule on CMU-Mocap).
  """
  if mask_from not in ("gt", "pred", "all"):
    raise ValueError("mask_from must be 'gt', 'pred' or 'all', got {!r}".format(mask_from))
  pred, gt = np.array(pred_euler), np.array(gt_euler)
  pred[..., :6] = 0
  gt[..., :6] = 0
  reference = gt if mask_from == "gt" else pred
  used = mask_from == "all" or np.std(reference, axis=1, keepdims=True) > MIN_STD  # [N, 1, D]
  errors = np.sqrt(np.sum(np.where(used, (gt - pred) ** 2, 0), axis=-1))
  return errors.astype(np.float64)
