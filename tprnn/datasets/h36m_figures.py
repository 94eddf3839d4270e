"""Pictures of H3.6M samples files (visualize.py h36m, compare): skeletons
from the exp-map frames by forward kinematics, in mm, z up."""

import os

import numpy as np
from matplotlib import animation

from tprnn.datasets import h36m_skeleton
from tprnn.util import atomic_file
from tprnn.util.figures import (GT_COLOUR, OBSERVED_COLOUR, PRED_COLOUR, VisualizeError, plt,
                                read, open_samples, save)

COMMAND = "h36m"
FRAME_MS = 40  # H3.6M samples are at 25 fps
MARKER = None  # 25 points a second: a line
Y_LABELS = {"euler": "Euler angle error", "position": "position error (mm)",
            "mpjpe": "MPJPE (mm, 32 joints)", "mpjpe22": "MPJPE (mm, 22 joints)"}
MM_CURVES = {"position": "position_error", "mpjpe": "mpjpe", "mpjpe22": "mpjpe22"}  # metric: key


def add_command(commands):
  h36m = commands.add_parser(COMMAND, help="GIF and strip of one H3.6M forecast")
  h36m.add_argument("samples")
  h36m.add_argument("--action", default="walking")
  h36m.add_argument("--seed", type=int, default=0, help="which of the samples file's first 8 windows (0..7; the SRNN ones for srnn8 and 256)")
  h36m.add_argument("--every", type=int, default=5, help="strip: every k-th forecast frame")
  h36m.add_argument("--observed", type=int, default=10,
                    help="GIF: how many of the last observed frames come before the forecast")
  return h36m


def h36m_actions(samples):
  """The actions whose errors the file holds."""
  return sorted(k[len("mean_"):-len("_error")] for k in samples
                if k.startswith("mean_") and k.endswith("_error") and "position" not in k)


def h36m_sequence(samples, action, seed):
  """Observed [O, 32, 3] (O = 0 when the file has none), ground truth and
  prediction [T, 32, 3] joint positions in mm, z up."""
  if action not in h36m_actions(samples):
    raise VisualizeError("{} has no action '{}' (it has: {})".format(
        samples.filename, action, ", ".join(h36m_actions(samples)) or "none"))
  name = "{}_{}".format(action, seed)
  observed_key = "expmap/observed/" + name
  observed = read(samples, observed_key) if observed_key in samples else np.zeros((0, 99))
  z_up = [0, 2, 1]  # the skeleton's y axis points up
  return [h36m_skeleton.positions(frames)[..., z_up] for frames in
          (observed, read(samples, "expmap/gt/" + name), read(samples, "expmap/preds/" + name))]


def draw_skeleton(ax, joints, colour):
  for parent, child in h36m_skeleton.BONES:
    ax.plot(*zip(joints[parent], joints[child]), color=colour, lw=2)


def skeleton_axes(figure, rows, columns, index, title):
  """A 3D panel framing a body (mm around the root), without axes."""
  ax = figure.add_subplot(rows, columns, index, projection="3d")
  ax.set_xlim(-600, 600)
  ax.set_ylim(-600, 600)
  ax.set_zlim(-950, 850)
  ax.set_axis_off()
  try:
    ax.set_box_aspect((1, 1, 1.5), zoom=1.5)
  except TypeError:  # matplotlib < 3.6 (Python 3.7) has no zoom
    pass
  ax.set_title(title, fontsize=8)
  return ax


def h36m_animation(observed, gt, pred, size=(5, 2.8), dpi=60):
  """A FuncAnimation: the observed frames in grey on both sides, then ground
  truth (left) and prediction (right). Frames: len(observed) + len(gt)."""
  figure = plt.figure(figsize=size, dpi=dpi)

  def draw(t):
    figure.clear()
    if t < len(observed):
      label = "observed {} ms".format((t - len(observed) + 1) * FRAME_MS)
      left = right = (observed[t], OBSERVED_COLOUR)
    else:
      k = t - len(observed)
      label = "forecast +{} ms".format((k + 1) * FRAME_MS)
      left, right = (gt[k], GT_COLOUR), (pred[k], PRED_COLOUR)
    draw_skeleton(skeleton_axes(figure, 1, 2, 1, "ground truth, " + label), *left)
    draw_skeleton(skeleton_axes(figure, 1, 2, 2, "prediction, " + label), *right)
    figure.subplots_adjust(left=0, right=1, bottom=0, top=0.9, wspace=0)

  return figure, animation.FuncAnimation(figure, draw, frames=len(observed) + len(gt))


def h36m_strip(gt, pred, every, dpi=60):
  """Every `every`-th forecast frame: ground truth above, prediction below."""
  steps = list(range(every - 1, len(gt), every)) or [len(gt) - 1]
  figure = plt.figure(figsize=(1.5 * len(steps), 3.6), dpi=dpi)
  for column, step in enumerate(steps):
    for row, (poses, colour) in enumerate(((gt, GT_COLOUR), (pred, PRED_COLOUR))):
      title = "+{} ms".format((step + 1) * FRAME_MS) if row == 0 else ""
      draw_skeleton(skeleton_axes(figure, 2, len(steps), row * len(steps) + column + 1, title),
                    poses[step], colour)
  figure.suptitle("ground truth (top, blue), prediction (bottom, red)", fontsize=9)
  figure.subplots_adjust(left=0, right=1, bottom=0, top=0.88, wspace=0, hspace=0.05)
  return figure


def run(args):
  with open_samples(args.samples) as samples:
    observed, gt, pred = h36m_sequence(samples, args.action, args.seed)
  observed = observed[len(observed) - min(args.observed, len(observed)):]
  stem = os.path.join(args.out, "h36m_{}_{}".format(args.action, args.seed))
  figure, movie = h36m_animation(observed, gt, pred)
  with atomic_file.atomic_output(stem + ".gif") as tmp:
    movie.save(tmp, writer=animation.PillowWriter(fps=1000 // FRAME_MS))
  plt.close(figure)
  print("Wrote {}.gif".format(stem))
  save(h36m_strip(gt, pred, args.every), stem + "_strip.png")




def curves(samples):
  """{metric: {action: values}} of an H3.6M samples file ('euler', and each
  millimetre curve every action has), or None for another dataset's."""
  actions = h36m_actions(samples)
  if not actions:
    return None
  found = {"euler": {a: read(samples, "mean_{}_error".format(a)) for a in actions}}
  for metric, key in MM_CURVES.items():
    if all("mean_{}_{}".format(a, key) in samples for a in actions):
      found[metric] = {a: read(samples, "mean_{}_{}".format(a, key)) for a in actions}
  return found


def horizon(values):
  """(x values, x label) of a curve."""
  return FRAME_MS * np.arange(1, len(values) + 1), "horizon (ms)"
