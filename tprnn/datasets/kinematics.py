"""Forward kinematics of an exponential-map skeleton (docs/PROTOCOL.md §7-9):
frames of 3 root-position numbers and one exp-map triplet per joint to joint
positions, and the mean per-joint position error over them.

As the field computes it on H3.6M and CMU-Mocap, the global translation
(entries 0..2) and rotation (3..5) are left out: the root stays at the
origin, unrotated, and positions say how the body moves relative to it.
"""

import numpy as np


def rotation_matrices(r):
  """Rodrigues' formula, exactly: [..., 3] axis-angle -> [..., 3, 3]
  orthonormal rotations (the identity at angle 0). The Euler error's
  data_utils.expmap_to_rotmat keeps the SRNN code's epsilon instead, which
  would stretch bones along the chain by ~1e-6."""
  theta = np.linalg.norm(r, axis=-1)[..., None]  # [..., 1]
  axis = r / np.where(theta > 0, theta, 1.0)
  x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
  zero = np.zeros_like(x)
  skew = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(r.shape + (3,))
  sin, cos = np.sin(theta)[..., None], np.cos(theta)[..., None]  # [..., 1, 1]
  return np.eye(3) + sin * skew + (1 - cos) * np.matmul(skew, skew)


class Skeleton(object):
  """J joints: PARENTS [J] (-1 for the root, a parent before its children) and
  OFFSETS [J, 3], each joint's bone from its parent in the parent's frame."""

  def __init__(self, parents, offsets):
    self.parents, self.offsets = np.asarray(parents), np.asarray(offsets, dtype=np.float64)
    self.num_joints = len(self.parents)
    self.pose_dim = 3 + 3 * self.num_joints

  def joint_rotations(self, frames):
    """[..., 3 + 3J] exp-map frames -> [..., J, 3, 3] local joint rotations,
    the root's (entries 3..5) replaced by the identity."""
    triplets = np.array(frames[..., 3:self.pose_dim], dtype=np.float64).reshape(
        frames.shape[:-1] + (self.num_joints, 3))  # [..., J, 3]
    triplets[..., 0, :] = 0.0
    return rotation_matrices(triplets)

  def positions(self, frames):
    """[..., 3 + 3J] exp-map frames -> [..., J, 3] joint positions.

    Row-vector convention of the H3.6M tools: a joint's global rotation is
    its local rotation times its parent's, and its position is its offset
    rotated by the parent's global rotation plus the parent's position.
    Vectorised over frames; the joints are visited once, parents first.
    """
    local = self.joint_rotations(frames)
    shape = frames.shape[:-1]
    glob = np.empty(shape + (self.num_joints, 3, 3))
    xyz = np.zeros(shape + (self.num_joints, 3))
    glob[..., 0, :, :] = local[..., 0, :, :]
    for j in range(1, self.num_joints):
      p = self.parents[j]
      xyz[..., j, :] = np.einsum("i,...ij->...j", self.offsets[j], glob[..., p, :, :]) + xyz[..., p, :]
      glob[..., j, :, :] = np.matmul(local[..., j, :, :], glob[..., p, :, :])
    return xyz

  def joint_errors(self, pred_frames, gt_frames):
    """Euclidean distance of each joint: [..., T, 3 + 3J] twice -> [..., T, J]."""
    return np.linalg.norm(self.positions(pred_frames) - self.positions(gt_frames), axis=-1)

  def mpjpe(self, pred_frames, gt_frames, joints=None):
    """The mean per-joint position error over all joints (`joints` None) or
    the given ones: [..., T, 3 + 3J] twice -> [..., T]."""
    distance = self.joint_errors(pred_frames, gt_frames)
    return distance.mean(axis=-1) if joints is None else distance[..., joints].mean(axis=-1)
