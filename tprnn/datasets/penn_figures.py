"""Pictures of Penn Action samples files (visualize.py penn, compare): 2D
skeletons in pixels, over the video frames when given."""

import os

import numpy as np

import load
from tprnn.util.figures import (GT_COLOUR, OBSERVED_COLOUR, PRED_COLOUR, VisualizeError,
                                fraction_above, legend_below, plt, read, open_samples, save)

COMMAND = "penn"
PENN_LIMBS = ((0, 1), (0, 2), (1, 2), (1, 3), (3, 5), (2, 4), (4, 6), (1, 7), (2, 8), (7, 8),
              (7, 9), (9, 11), (8, 10), (10, 12))  # head, shoulders, arms, torso, legs
MARKER = "."  # 16 predicted steps
KINDS = (("observed", OBSERVED_COLOUR), ("ground truth", GT_COLOUR), ("prediction", PRED_COLOUR))
Y_LABELS = {"pck": "PCK@0.05 (as published)", "pck_per_joint": "PCK@0.05 (per joint)"}


def add_command(commands):
  penn = commands.add_parser(COMMAND, help="skeleton strip of one Penn Action forecast")
  penn.add_argument("samples")
  penn.add_argument("--index", type=int, default=0, help="which validation sequence")
  penn.add_argument("--every", type=int, default=3, help="every k-th frame")
  penn.add_argument("--frames_dir", default="", help="Penn_Action/frames, to draw over the video")
  return penn


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


def penn_axes(figure, columns, column, images, limits):
  """Panel `column` of the strip: the video frame `images` gives, else the
  pixel `limits` ((x0, y0), (x1, y1)) with y growing downwards as in images."""
  ax = figure.add_subplot(1, columns, column + 1)
  if images is not None:
    ax.imshow(images)
  else:
    (x0, y0), (x1, y1) = limits
    ax.set_xlim(x0 - 10, x1 + 10)
    ax.set_ylim(y1 + 10, y0 - 10)
  ax.set_axis_off()
  return ax


def penn_strip(gt, pred, frames, observed, every, images=None, dpi=60):
  """Every `every`-th frame of a sequence: the observed pose (grey), then
  ground truth (blue) and prediction (red) in pixel coordinates, over the
  video frames when `images` gives them; a legend of the kinds drawn."""
  steps = list(range(observed - 1, len(gt), every))
  figure = plt.figure(figsize=(1.8 * len(steps), 2.4), dpi=dpi)
  limits = (np.minimum(gt.min((0, 1)), pred.min((0, 1))), np.maximum(gt.max((0, 1)), pred.max((0, 1))))
  for column, step in enumerate(steps):
    ax = penn_axes(figure, len(steps), column, images(frames[step]) if images else None, limits)
    if step < observed:
      draw_2d(ax, gt[step], OBSERVED_COLOUR)
    else:
      draw_2d(ax, gt[step], GT_COLOUR)
      draw_2d(ax, pred[step], PRED_COLOUR)
    ax.set_title("observed" if step < observed else "step {}".format(step - observed + 1),
                 fontsize=8)
  drawn = {line.get_color() for ax in figure.axes for line in ax.get_lines()}
  legend = legend_below(figure, [kind for kind in KINDS if kind[1] in drawn])
  figure.subplots_adjust(left=0, right=1, top=0.9, bottom=fraction_above(figure, legend, 2))
  return figure


def frame_reader(frames_dir, video):
  """frame index (0-based) -> image array of DIR/NNNN/FFFFFF.jpg."""
  def image(frame):
    path = os.path.join(frames_dir, "{:04d}".format(video), "{:06d}.jpg".format(frame + 1))
    if not os.path.isfile(path):
      raise VisualizeError("frame {} not found (--frames_dir holds NNNN/FFFFFF.jpg)".format(path))
    return plt.imread(path)
  return image


def run(args):
  with open_samples(args.samples) as samples:
    gt, pred, video, frames, observed = penn_sequence(samples, args.index)
  images = frame_reader(args.frames_dir, video) if args.frames_dir else None
  save(penn_strip(gt, pred, frames, observed, args.every, images),
       os.path.join(args.out, "penn_{:04d}_{}.png".format(video, args.index)))


def curves(samples):
  """{metric: {"Penn Action": values}} of a Penn samples file, or None."""
  if "pck" not in samples:
    return None
  return {metric: {"Penn Action": read(samples, metric)} for metric in Y_LABELS}


def horizon(values):
  return np.arange(1, len(values) + 1), "predicted step"
