"""Pictures of H3.6M samples files (visualize.py h36m, compare): skeletons
from the exp-map frames by forward kinematics, in mm, z up."""

from tprnn.datasets import h36m_skeleton, skeleton_figures
from tprnn.datasets.skeleton_figures import MARKER, horizon  # noqa: F401  (visualize.py's interface)

Y_LABELS = {"euler": "Euler angle error", "position": "position error (mm)",
            "mpjpe": "MPJPE (mm, 32 joints)", "mpjpe22": "MPJPE (mm, 22 joints)"}
FIGURES = skeleton_figures.Figures(
    "h36m", None, h36m_skeleton.positions, h36m_skeleton.BONES,
    limits=((-600, 600), (-600, 600), (-950, 850)),
    mm_curves={"position": "position_error", "mpjpe": "mpjpe", "mpjpe22": "mpjpe22"},
    y_labels=Y_LABELS)
COMMAND, add_command, run, curves = (FIGURES.command, FIGURES.add_command, FIGURES.run,
                                     FIGURES.curves)
