"""Penn Action labels: per-video normalisation, fixed-length sequences and the
PCK metrics of the published protocol (docs/PROTOCOL.md §6)."""

import collections
import os
import re

import h5py
import numpy as np
import scipy.io

import data_utils
from data_utils import DataError
from tprnn.util.progress import progress

NUM_JOINTS = 13
POSE_SIZE = 2 * NUM_JOINTS
PREDICTED_STEPS = 16
PCK_THRESHOLD = 0.1  # PCK@0.05 of a box normalised to [-1, 1]
LABEL_KEYS = ("x", "y", "visibility", "train")

Sequences = collections.namedtuple("Sequences", [
    "poses",                # [N, S, 26] float64, [x0..x12, y0..y12] per frame
    "visibilities",         # [N, S, 13]
    "bounding_box_length",  # [N], L in pixels
    "video",                # [N], the label file's number
    "frame_index",          # [N, S], each frame's index in its video (0-based)
    "box_centre",           # [N, 2], x and y in pixels
])


def sequence_length(init_velocity):
  """S: 1 observed frame (2 with --init_velocity) + 16 predicted."""
  return PREDICTED_STEPS + (2 if init_velocity else 1)


def label_files(labels_dir):
  """The NNNN.mat files of `labels_dir`, sorted."""
  data_utils.check_data_folder(labels_dir, "Penn Action labels folder", "0001.mat", "labels")
  names = sorted(n for n in os.listdir(labels_dir) if re.match(r"^\d+\.mat$", n))
  if not names:
    raise DataError("no NNNN.mat label files in {} (see data/README.md)".format(labels_dir))
  return [os.path.join(labels_dir, n) for n in names]


def read_mat(path):
  """The LABEL_KEYS of a .mat file, squeezed; MATLAB v7.3 files (HDF5, which
  scipy cannot read) through h5py, transposed back to MATLAB's layout."""
  try:
    return scipy.io.loadmat(path, squeeze_me=True, variable_names=LABEL_KEYS)
  except NotImplementedError:
    with h5py.File(path, "r") as f:
      return {k: np.squeeze(np.array(f[k]).T) for k in LABEL_KEYS if k in f}


def read_label(path):
  """x, y [T, 13] pixel coordinates, visibility [T, 13] and whether the
  video belongs to the training split."""
  try:
    label = read_mat(path)
  except (scipy.io.matlab.MatReadError, ValueError, OSError, TypeError) as e:
    raise DataError("{}: not a readable .mat label file ({})".format(path, e))
  missing = [k for k in LABEL_KEYS if k not in label]
  if missing:
    raise DataError("{}: missing key(s) {}, expected {}".format(
        path, ", ".join(missing), ", ".join(LABEL_KEYS)))
  x, y, vis = (np.atleast_2d(np.asarray(label[k], dtype=np.float64)) for k in ("x", "y", "visibility"))
  if x.shape != y.shape or x.shape != vis.shape or x.shape[1] != NUM_JOINTS:
    raise DataError("{}: x, y and visibility must all be [T, {}], got {}, {} and {}".format(
        path, NUM_JOINTS, x.shape, y.shape, vis.shape))
  for name, values in (("x", x), ("y", y), ("visibility", vis)):
    if not np.isfinite(values).all():
      raise DataError("{}: {} holds non-finite values (nan or inf)".format(path, name))
  return x, y, vis, int(label["train"]) == 1


def video_sequences(x, y, visibility, length, video=0):
  """All fixed-length sequences of one video (number `video`).

  Coordinates are centred on the video's joint bounding box and divided by
  half its longer side (+1e-8). From every start frame s = 0..T-1, frames
  min(s + k * stride, T-1) for k < length, stride = (T-1) // length.
  Returns Sequences with N = T; to_pixels inverts the normalisation.
  """
  box = max(x.max() - x.min(), y.max() - y.min()) + 1e-8
  centre_x = x.min() + (x.max() - x.min()) / 2.0
  centre_y = y.min() + (y.max() - y.min()) / 2.0
  poses = np.concatenate([(x - centre_x) / (box / 2.0), (y - centre_y) / (box / 2.0)], axis=1)
  frames = len(x)
  stride = (frames - 1) // length
  index = np.minimum(np.arange(frames)[:, None] + stride * np.arange(length)[None, :],
                     frames - 1)  # [T starts, length]
  return Sequences(poses[index], visibility[index], np.full(frames, box), np.full(frames, video),
                   index, np.tile([centre_x, centre_y], (frames, 1)))


def to_pixels(poses, bounding_box_length, box_centre):
  """Normalised poses [N, ..., 26] back to pixel coordinates [N, ..., 13, 2]
  (x, y) with each sequence's box side L [N] and centre [N, 2]."""
  poses = np.asarray(poses, dtype=np.float64)
  xy = np.stack([poses[..., :NUM_JOINTS], poses[..., NUM_JOINTS:]], axis=-1)  # [N, ..., 13, 2]
  ones = (1,) * (xy.ndim - 2)  # the axes between N and x/y
  half = np.reshape(bounding_box_length, (-1,) + ones + (1,)) / 2.0
  return xy * half + np.reshape(box_centre, (-1,) + ones + (2,))


def load_sequences(labels_dir, train, init_velocity):
  """The training (train=True) or validation sequences of every video."""
  length = sequence_length(init_velocity)
  parts = []
  paths = label_files(labels_dir)
  for path in progress(paths, len(paths), "Reading {} labels".format("training" if train else
                                                                    "validation"), "file"):
    x, y, vis, is_train = read_label(path)
    if is_train == train:
      video = int(re.match(r"^(\d+)", os.path.basename(path)).group(1))
      parts.append(video_sequences(x, y, vis, length, video))
  if not parts:
    raise DataError("no {} videos found in {}".format("training" if train else "validation",
                                                       labels_dir))
  return Sequences(*(np.concatenate(field) for field in zip(*parts)))


def with_repeated_first_frame(poses):
  """Prepends a copy of frame 0, so the first velocity is zero. [N, S, P] -> [N, S+1, P]."""
  return np.concatenate([poses[:, :1], poses], axis=1)


def distance(prediction, ground_truth, visibility, per_joint=False):
  """Published metrics of one predicted step.

  prediction, ground_truth [N, 26]; visibility [N, 13]. Returns (mean l2 norm
  of the pose difference, mean joint distance, PCK over visible joints).
  As published, joint j's offset is (diff[2j], diff[2j+1]), which on the
  [x..., y...] layout pairs neighbouring coordinates; per_joint=True pairs
  x_j with y_j instead.
  """
  diff = prediction - ground_truth
  l2_norm = np.mean(np.linalg.norm(diff, axis=1))
  if per_joint:
    dx, dy = diff[:, :NUM_JOINTS], diff[:, NUM_JOINTS:]
  else:
    dx, dy = diff[:, ::2], diff[:, 1::2]
  joint_distance = np.sqrt(dx ** 2 + dy ** 2)
  hits = (joint_distance < PCK_THRESHOLD) * visibility
  return l2_norm, np.mean(joint_distance), np.sum(hits) / np.sum(visibility)
