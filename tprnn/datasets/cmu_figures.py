"""Pictures of CMU-Mocap samples files (visualize.py cmu, compare): the
38-joint skeleton from the exp-map frames, z up."""

from tprnn.datasets import cmu_skeleton, skeleton_figures
from tprnn.datasets.skeleton_figures import MARKER, horizon  # noqa: F401  (visualize.py's interface)

Y_LABELS = {"euler": "Euler angle error", "mpjpe": "MPJPE (mm, 38 joints)"}
FIGURES = skeleton_figures.Figures(
    "cmu", "cmu", cmu_skeleton.positions, cmu_skeleton.BONES,
    limits=((-700, 700), (-700, 700), (-1150, 850)), mm_curves={"mpjpe": "mpjpe"},
    y_labels=Y_LABELS)
COMMAND, add_command, run, curves = (FIGURES.command, FIGURES.add_command, FIGURES.run,
                                     FIGURES.curves)
