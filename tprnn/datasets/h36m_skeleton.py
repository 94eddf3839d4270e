"""Forward kinematics of the 32-joint H3.6M skeleton: 99-d exponential-map
frames to joint positions in millimetres, the mean per-joint position error
of this port (26 joints) and the MPJPE of the field (32 and 22 joints),
docs/PROTOCOL.md §7-8.

The skeleton (each joint's parent and its bone offset from the parent, in mm,
in the parent's frame) is the standard one of the H3.6M exponential-map data;
joint j is rotated by the exp-map triplet at entries 3 + 3j .. 5 + 3j, and the
global translation and rotation are left out (tprnn.datasets.kinematics).
"""

import numpy as np

from tprnn.datasets import kinematics

NUM_JOINTS = 32
# Parent of each joint (-1: the root); a parent always precedes its children.
PARENTS = np.array([0, 1, 2, 3, 4, 5, 1, 7, 8, 9, 10, 1, 12, 13, 14, 15, 13, 17, 18, 19, 20,
                    21, 20, 23, 13, 25, 26, 27, 28, 29, 28, 31]) - 1
# Bone offset of each joint from its parent, in mm, in the parent's frame.
OFFSETS = np.array([
    [0, 0, 0], [-132.948591, 0, 0], [0, -442.894612, 0], [0, -454.206447, 0],
    [0, 0, 162.767078], [0, 0, 74.999437], [132.948826, 0, 0], [0, -442.894413, 0],
    [0, -454.206590, 0], [0, 0, 162.767426], [0, 0, 74.999948], [0, 0.1, 0],
    [0, 233.383263, 0], [0, 257.077681, 0], [0, 121.134938, 0], [0, 115.002227, 0],
    [0, 257.077681, 0], [0, 151.034226, 0], [0, 278.882773, 0], [0, 251.733451, 0],
    [0, 0, 0], [0, 0, 99.999627], [0, 100.000188, 0], [0, 0, 0],
    [0, 257.077681, 0], [0, 151.031437, 0], [0, 278.892924, 0], [0, 251.728680, 0],
    [0, 0, 0], [0, 0, 99.999888], [0, 137.499922, 0], [0, 0, 0]])
# Joints at a distance from their parent; the others repeat their parent's position.
MOVING_JOINTS = np.flatnonzero(np.linalg.norm(OFFSETS, axis=1) > 1.0)
# The 22 joints the field's models predict and score (HisRepItself, siMLPe,
# PGBIG, MSR-GCN); the others are the root's children or copies at distance 0.
PREDICTED_JOINTS = np.array([2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 14, 15, 17, 18, 19, 21, 22, 25, 26,
                             27, 29, 30])
# Bones to draw: (parent, joint) of every moving joint.
BONES = [(int(PARENTS[j]), int(j)) for j in MOVING_JOINTS]


SKELETON = kinematics.Skeleton(PARENTS, OFFSETS)
positions = SKELETON.positions  # [..., 99] exp-map frames -> [..., 32, 3] in mm


def position_errors(pred_frames, gt_frames):
  """Mean over the moving joints of the Euclidean distance (mm) between
  predicted and true positions: [..., T, 99] twice -> [..., T]."""
  return SKELETON.mpjpe(pred_frames, gt_frames, MOVING_JOINTS)


def mpjpe(pred_frames, gt_frames, joints=None):
  """The mean per-joint position error as the field reports it (mm): over all
  32 joints (`joints` None) or the given ones. [..., T, 99] twice -> [..., T]."""
  return SKELETON.mpjpe(pred_frames, gt_frames, joints)
