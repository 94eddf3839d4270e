"""Pictures of forecasts from samples files written by --sample.

  python visualize.py h36m samples.h5 --action walking --seed 0 --out figures
      an animated GIF (the last --observed frames, then the forecast beside
      the ground truth) and a PNG strip of every --every-th forecast frame
  python visualize.py penn samples.h5 --index 0 --out figures [--frames_dir DIR]
      2D skeleton strips of ground truth and prediction, over the video
      frames DIR/NNNN/FFFFFF.jpg when given
  python visualize.py compare a.h5 b.h5 --labels model,zero_velocity --out figures
      error against the horizon for every action (H3.6M: Euler angles and mm),
      or PCK against the predicted step (Penn), one line per file

Everything is written atomically into --out; matplotlib runs headless (Agg).
"""

import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")
import h5py  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import animation  # noqa: E402

from tprnn.util import atomic_file  # noqa: E402
from tprnn.util import errors  # noqa: E402
from tprnn.datasets import h36m_skeleton  # noqa: E402
import load  # noqa: E402

GT_COLOUR, PRED_COLOUR, OBSERVED_COLOUR = "#1f77b4", "#d62728", "#7f7f7f"
FRAME_MS = 40  # H3.6M samples are at 25 fps
PENN_LIMBS = ((0, 1), (0, 2), (1, 2), (1, 3), (3, 5), (2, 4), (4, 6), (1, 7), (2, 8), (7, 8),
              (7, 9), (9, 11), (8, 10), (10, 12))  # head, shoulders, arms, torso, legs


class VisualizeError(errors.Error):
  """A missing file, key or action; one line for the user."""


def open_samples(path):
  if not os.path.isfile(path):
    raise VisualizeError("samples file {} not found".format(path))
  try:
    return h5py.File(path, "r")
  except OSError as e:
    raise VisualizeError("{} is not a readable samples file: {}".format(path, e))


def read(samples, key):
  """samples[key] as an array; a missing key is a VisualizeError."""
  if key not in samples:
    raise VisualizeError("{} has no '{}'".format(samples.filename, key))
  return samples[key][()]


def h36m_actions(samples):
  """The actions whose errors the file holds."""
  return sorted(k[len("mean_"):-len("_error")] for k in samples
                if k.startswith("mean_") and k.endswith("_error") and "position" not in k)


def save(figure, path, **kwargs):
  with atomic_file.atomic_output(path) as tmp:
    figure.savefig(tmp, **kwargs)
  plt.close(figure)
  print("Wrote {}".format(path))


# ----------------------------------------------------------------------------
# H3.6M


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


def run_h36m(args):
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


# ----------------------------------------------------------------------------
# Penn Action


def penn_sequence(samples, index):
  """Pixel poses [S, 13, 2] of one sequence: observed then ground truth, and
  observed then prediction; its video number and frame indices [S]."""
  count = len(read(samples, "predictions"))
  if not 0 <= index < count:
    raise VisualizeError("--index {} is not a sequence of {} (0..{})".format(
        index, samples.filename, count - 1))
  length, centre = read(samples, "bounding_box_length")[index], read(samples, "box_centre")[index]
  observed = read(samples, "observed")[index]

  def pixels(poses):
    return load.to_pixels(np.concatenate([observed, poses])[None], [length], [centre])[0]

  return (pixels(read(samples, "ground_truth")[index]), pixels(read(samples, "predictions")[index]),
          int(read(samples, "video")[index]), read(samples, "frame_index")[index], len(observed))


def draw_2d(ax, joints, colour):
  for a, b in PENN_LIMBS:
    ax.plot(*zip(joints[a], joints[b]), color=colour, lw=2)


def penn_strip(gt, pred, frames, observed, every, images=None, dpi=60):
  """Every `every`-th frame of a sequence: ground truth (blue) and prediction
  (red) in pixel coordinates, over the video frames when `images` gives them."""
  steps = list(range(observed - 1, len(gt), every))
  figure = plt.figure(figsize=(1.8 * len(steps), 2.2), dpi=dpi)
  lo, hi = np.minimum(gt.min((0, 1)), pred.min((0, 1))), np.maximum(gt.max((0, 1)), pred.max((0, 1)))
  for column, step in enumerate(steps):
    ax = figure.add_subplot(1, len(steps), column + 1)
    if images is not None:
      ax.imshow(images(frames[step]))
    else:
      ax.set_xlim(lo[0] - 10, hi[0] + 10)
      ax.set_ylim(hi[1] + 10, lo[1] - 10)  # image coordinates: y grows downwards
    draw_2d(ax, gt[step], GT_COLOUR)
    if step >= observed:
      draw_2d(ax, pred[step], PRED_COLOUR)
    ax.set_title("observed" if step < observed else "step {}".format(step - observed + 1),
                 fontsize=8)
    ax.set_axis_off()
  return figure


def frame_reader(frames_dir, video):
  """frame index (0-based) -> image array of DIR/NNNN/FFFFFF.jpg."""
  def image(frame):
    path = os.path.join(frames_dir, "{:04d}".format(video), "{:06d}.jpg".format(frame + 1))
    if not os.path.isfile(path):
      raise VisualizeError("frame {} not found (--frames_dir holds NNNN/FFFFFF.jpg)".format(path))
    return plt.imread(path)
  return image


def run_penn(args):
  with open_samples(args.samples) as samples:
    gt, pred, video, frames, observed = penn_sequence(samples, args.index)
  images = frame_reader(args.frames_dir, video) if args.frames_dir else None
  save(penn_strip(gt, pred, frames, observed, args.every, images),
       os.path.join(args.out, "penn_{:04d}_{}.png".format(video, args.index)))


# ----------------------------------------------------------------------------
# Comparisons


def curves(paths, labels):
  """{metric: {label: {action: values}}} of the samples files: H3.6M
  'euler' and 'position' errors per action, Penn 'pck' and 'pck_per_joint'."""
  found = {}
  for path, label in zip(paths, labels):
    with open_samples(path) as samples:
      if "pck" in samples:
        for metric in ("pck", "pck_per_joint"):
          found.setdefault(metric, {})[label] = {"Penn Action": read(samples, metric)}
        continue
      actions = h36m_actions(samples)
      if not actions:
        raise VisualizeError("{} holds neither H3.6M errors nor Penn PCK".format(path))
      found.setdefault("euler", {})[label] = {a: read(samples, "mean_{}_error".format(a))
                                              for a in actions}
      if all("mean_{}_position_error".format(a) in samples for a in actions):
        found.setdefault("position", {})[label] = {
            a: read(samples, "mean_{}_position_error".format(a)) for a in actions}
  return found


Y_LABELS = {"euler": "Euler angle error", "position": "position error (mm)",
            "pck": "PCK@0.05 (as published)", "pck_per_joint": "PCK@0.05 (per joint)"}


def comparison_figure(metric, by_label, dpi=80):
  """One panel per action, one labelled line per file."""
  actions = sorted({a for per_action in by_label.values() for a in per_action})
  figure, axes = plt.subplots(1, len(actions), figsize=(3.6 * len(actions), 3), dpi=dpi,
                              squeeze=False)
  for ax, action in zip(axes[0], actions):
    for label, per_action in by_label.items():
      if action in per_action:
        values = per_action[action]
        if metric.startswith("pck"):
          ax.plot(np.arange(1, len(values) + 1), values, marker=".", label=label)
          ax.set_xlabel("predicted step")
        else:
          ax.plot(FRAME_MS * np.arange(1, len(values) + 1), values, label=label)
          ax.set_xlabel("horizon (ms)")
    ax.set_title(action, fontsize=10)
    ax.set_ylabel(Y_LABELS[metric])
    ax.legend(fontsize=8)
  figure.tight_layout()
  return figure


def run_compare(args):
  labels = args.labels.split(",") if args.labels else [
      os.path.splitext(os.path.basename(p))[0] for p in args.samples]
  if len(labels) != len(args.samples):
    raise VisualizeError("--labels names {} files, {} were given".format(
        len(labels), len(args.samples)))
  for metric, by_label in curves(args.samples, labels).items():
    save(comparison_figure(metric, by_label), os.path.join(args.out, "compare_{}.png".format(metric)))


# ----------------------------------------------------------------------------


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  commands = p.add_subparsers(dest="command")
  h36m = commands.add_parser("h36m", help="GIF and strip of one H3.6M forecast")
  h36m.add_argument("samples")
  h36m.add_argument("--action", default="walking")
  h36m.add_argument("--seed", type=int, default=0, help="which of the 8 SRNN windows (0..7)")
  h36m.add_argument("--every", type=int, default=5, help="strip: every k-th forecast frame")
  h36m.add_argument("--observed", type=int, default=10,
                    help="GIF: how many of the last observed frames come before the forecast")
  penn = commands.add_parser("penn", help="skeleton strip of one Penn Action forecast")
  penn.add_argument("samples")
  penn.add_argument("--index", type=int, default=0, help="which validation sequence")
  penn.add_argument("--every", type=int, default=3, help="every k-th frame")
  penn.add_argument("--frames_dir", default="", help="Penn_Action/frames, to draw over the video")
  compare = commands.add_parser("compare", help="error or PCK against the horizon, per file")
  compare.add_argument("samples", nargs="+")
  compare.add_argument("--labels", default="", help="comma-separated, one per file")
  for sub in (h36m, penn, compare):
    sub.add_argument("--out", default="figures", help="directory for the pictures")
  args = p.parse_args(argv)
  if args.command is None:
    p.error("choose h36m, penn or compare")
  if getattr(args, "every", 1) < 1:
    p.error("--every must be at least 1")
  if getattr(args, "observed", 0) < 0:
    p.error("--observed must be 0 or more")
  return args


def main(argv):
  args = parse_args(argv)
  try:
    os.makedirs(args.out, exist_ok=True)
  except OSError as e:
    raise VisualizeError("cannot create --out {}: {}".format(args.out, e.strerror or e))
  {"h36m": run_h36m, "penn": run_penn, "compare": run_compare}[args.command](args)
  return 0


if __name__ == "__main__":
  sys.exit(errors.run_main(main))
