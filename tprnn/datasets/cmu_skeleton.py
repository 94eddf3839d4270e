"""Forward kinematics of the 38-joint CMU-Mocap skeleton of the exp-map
release (docs/PROTOCOL.md §9): 117-d frames to joint positions, and the MPJPE
over all 38 joints as LTD, MSR-GCN and PGBIG report it.

Parents and offsets are those of `_some_variables_cmu` in LearnTrajDep
utils/forward_kinematics.py (the same numbers in the ConvSeq2Seq, MSR-GCN,
PGBIG and siMLPe code), offsets scaled by 70 as there. No code states a
unit; at this scale a body is about 1.76 thousand units tall, so tables call
them mm, as the papers do. The root's position and rotation do not move the
body (LTD's fkl skips them), as on H3.6M.
"""

import numpy as np

from tprnn.datasets import kinematics

NUM_JOINTS = 38
POSE_DIM = 3 + 3 * NUM_JOINTS  # 117
# Parent of each joint (-1: the root); a parent always precedes its children.
PARENTS = np.array([0, 1, 2, 3, 4, 5, 6, 1, 8, 9, 10, 11, 12, 1, 14, 15, 16, 17, 18, 19, 16,
                    21, 22, 23, 24, 25, 26, 24, 28, 16, 30, 31, 32, 33, 34, 35, 33, 37]) - 1
OFFSET_SCALE = 70
# Bone offset of each joint from its parent, before the scale, in the parent's frame.
UNSCALED_OFFSETS = np.array([
    [0, 0, 0], [0, 0, 0], [1.65674, -1.80282, 0.62477], [2.5972, -7.13576, 0],
    [2.49236, -6.8477, 0], [0.19704, -0.54136, 2.14581], [0, 0, 1.11249], [0, 0, 0],
    [-1.6107, -1.80282, 0.62476], [-2.59502, -7.12977, 0], [-2.4678, -6.78024, 0],
    [-0.23024, -0.63258, 2.13368], [0, 0, 1.11569], [0, 0, 0], [0.01961, 2.0545, -0.14112],
    [0.01021, 2.06436, -0.05921], [0, 0, 0], [0.00713, 1.56711, 0.14968],
    [0.03429, 1.56041, -0.10006], [0.01305, 1.6256, -0.05265], [0, 0, 0],
    [3.54205, 0.90436, -0.17364], [4.86513, 0, 0], [3.35554, 0, 0], [0, 0, 0],
    [0.66117, 0, 0], [0.53306, 0, 0], [0, 0, 0], [0.5412, 0, 0.5412], [0, 0, 0],
    [-3.49802, 0.75994, -0.32616], [-5.02649, 0, 0], [-3.36431, 0, 0], [0, 0, 0],
    [-0.73041, 0, 0], [-0.58887, 0, 0], [0, 0, 0], [-0.59786, 0, 0.59786]])
OFFSETS = OFFSET_SCALE * UNSCALED_OFFSETS
MOVING_JOINTS = np.flatnonzero(np.linalg.norm(OFFSETS, axis=1) > 1.0)
BONES = [(int(PARENTS[j]), int(j)) for j in MOVING_JOINTS]  # (parent, joint) to draw

SKELETON = kinematics.Skeleton(PARENTS, OFFSETS)
positions = SKELETON.positions  # [..., 117] exp-map frames -> [..., 38, 3]


def mpjpe(pred_frames, gt_frames):
  """The MPJPE of LTD / MSR-GCN / PGBIG on CMU: the mean over all 38 joints
  (the copies included). [..., T, 117] twice -> [..., T]."""
  return SKELETON.mpjpe(pred_frames, gt_frames)
