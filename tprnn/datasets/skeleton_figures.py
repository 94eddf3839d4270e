"""Pictures of exp-map samples files (visualize.py h36m, cmu, compare):
skeletons from the frames by forward kinematics, z up, as a GIF and a strip,
and the error curves of every action. One Figures per dataset."""

import os

import numpy as np
from matplotlib import animation

from tprnn.util import atomic_file
from tprnn.util.figures import (GT_COLOUR, OBSERVED_COLOUR, PRED_COLOUR, VisualizeError,
                                fitted_suptitle, fraction_below, plt, read, open_samples, save)

FRAME_MS = 40  # the samples are at 25 fps
MARKER = None  # 25 points a second: a line
Z_UP = [0, 2, 1]  # both skeletons' y axis points up


class Figures(object):
  """The figures of one dataset's samples files: `command` of visualize.py,
  the `dataset` attribute its files carry (None: files without one),
  `positions` ([..., D] -> [..., J, 3]), `bones` [(parent, joint)], the
  panels' `limits` ((x0, x1), (y0, y1), (z0, z1)) and {metric: samples key}
  of its millimetre curves with their `y_labels`."""

  def __init__(self, command, dataset, positions, bones, limits, mm_curves, y_labels):
    self.command, self.dataset, self.positions, self.bones = command, dataset, positions, bones
    self.limits, self.mm_curves, self.y_labels = limits, mm_curves, y_labels

  def add_command(self, commands):
    sub = commands.add_parser(self.command, help="GIF and strip of one {} forecast".format(
        self.command))
    sub.add_argument("samples")
    sub.add_argument("--action", default="walking")
    sub.add_argument("--seed", type=int, default=0,
                     help="which of the samples file's first 8 windows (0..7; for srnn8, "
                          "256 and 8 the published ones)")
    sub.add_argument("--every", type=int, default=5, help="strip: every k-th forecast frame")
    sub.add_argument("--observed", type=int, default=10,
                     help="GIF: how many of the last observed frames come before the forecast")
    return sub

  def actions(self, samples):
    """The actions whose errors the file holds; none for another dataset's file."""
    if samples.attrs.get("dataset", None) != self.dataset:
      return []
    return sorted(k[len("mean_"):-len("_error")] for k in samples
                  if k.startswith("mean_") and k.endswith("_error") and "position" not in k)

  def sequence(self, samples, action, seed):
    """Observed [O, J, 3] (O = 0 when the file has none), ground truth and
    prediction [T, J, 3] joint positions, z up."""
    if action not in self.actions(samples):
      raise VisualizeError("{} has no action '{}' (it has: {})".format(
          samples.filename, action,
          ", ".join(self.actions(samples)) or "none: not a {} samples file".format(self.command)))
    name = "{}_{}".format(action, seed)
    gt = read(samples, "expmap/gt/" + name)
    observed_key = "expmap/observed/" + name
    observed = read(samples, observed_key) if observed_key in samples else gt[:0]
    return [self.positions(frames)[..., Z_UP] for frames in
            (observed, gt, read(samples, "expmap/preds/" + name))]

  def draw_skeleton(self, ax, joints, colour):
    for parent, child in self.bones:
      ax.plot(*zip(joints[parent], joints[child]), color=colour, lw=2)

  def skeleton_axes(self, figure, rows, columns, index, title):
    """A 3D panel framing a body around the root, without axes."""
    ax = figure.add_subplot(rows, columns, index, projection="3d")
    for set_limits, limits in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), self.limits):
      set_limits(*limits)
    ax.set_axis_off()
    try:
      ax.set_box_aspect((1, 1, 1.5), zoom=1.5)
    except TypeError:  # matplotlib < 3.6 (Python 3.7) has no zoom
      pass
    ax.set_title(title, fontsize=8)
    return ax

  def animation(self, observed, gt, pred, size=(5, 2.8), dpi=60):
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
      self.draw_skeleton(self.skeleton_axes(figure, 1, 2, 1, "ground truth, " + label), *left)
      self.draw_skeleton(self.skeleton_axes(figure, 1, 2, 2, "prediction, " + label), *right)
      figure.subplots_adjust(left=0, right=1, bottom=0, top=0.9, wspace=0)

    return figure, animation.FuncAnimation(figure, draw, frames=len(observed) + len(gt))

  def strip(self, gt, pred, every, dpi=60):
    """Every `every`-th forecast frame: ground truth above, prediction below."""
    steps = list(range(every - 1, len(gt), every)) or [len(gt) - 1]
    figure = plt.figure(figsize=(1.5 * len(steps), 3.6), dpi=dpi)
    for column, step in enumerate(steps):
      for row, (poses, colour) in enumerate(((gt, GT_COLOUR), (pred, PRED_COLOUR))):
        title = "+{} ms".format((step + 1) * FRAME_MS) if row == 0 else ""
        self.draw_skeleton(self.skeleton_axes(figure, 2, len(steps),
                                              row * len(steps) + column + 1, title),
                           poses[step], colour)
    title = fitted_suptitle(figure, "ground truth (top, blue), prediction (bottom, red)", 9)
    # room under the (maybe wrapped) title for the panels' own titles
    figure.subplots_adjust(left=0, right=1, bottom=0, top=min(0.88, fraction_below(figure, title, 18)),
                           wspace=0, hspace=0.05)
    return figure

  def run(self, args):
    with open_samples(args.samples) as samples:
      observed, gt, pred = self.sequence(samples, args.action, args.seed)
    observed = observed[len(observed) - min(args.observed, len(observed)):]
    stem = os.path.join(args.out, "{}_{}_{}".format(self.command, args.action, args.seed))
    figure, movie = self.animation(observed, gt, pred)
    with atomic_file.atomic_output(stem + ".gif") as tmp:
      movie.save(tmp, writer=animation.PillowWriter(fps=1000 // FRAME_MS))
    plt.close(figure)
    print("Wrote {}.gif".format(stem))
    save(self.strip(gt, pred, args.every), stem + "_strip.png")

  def curves(self, samples):
    """{metric: {action: values}} of the file ('euler', and each millimetre
    curve every action has), or None for another dataset's file."""
    actions = self.actions(samples)
    if not actions:
      return None
    found = {"euler": {a: read(samples, "mean_{}_error".format(a)) for a in actions}}
    for metric, key in self.mm_curves.items():
      if all("mean_{}_{}".format(a, key) in samples for a in actions):
        found[metric] = {a: read(samples, "mean_{}_{}".format(a, key)) for a in actions}
    return found


def horizon(values):
  """(x values, x label) of a curve."""
  return FRAME_MS * np.arange(1, len(values) + 1), "horizon (ms)"
