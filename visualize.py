"""Pictures of forecasts from samples files written by --sample.

  python visualize.py h36m samples.h5 --action walking --seed 0 --out figures
      an animated GIF (the last --observed frames, then the forecast beside
      the ground truth) and a PNG strip of every --every-th forecast frame
  python visualize.py cmu samples.h5 --action walking --seed 0 --out figures
      the same for a CMU-Mocap samples file
  python visualize.py penn samples.h5 --index 0 --out figures [--frames_dir DIR]
      2D skeleton strips of ground truth and prediction, over the video
      frames DIR/NNNN/FFFFFF.jpg when given
  python visualize.py compare a.h5 b.h5 --labels model,zero_velocity --out figures
      error against the horizon for every action (H3.6M, CMU-Mocap: Euler angles and mm),
      or PCK against the predicted step (Penn), one line per file

Everything is written atomically into --out; matplotlib runs headless (Agg).
"""

import os
import sys

from tprnn import datasets
from tprnn.util import errors
from tprnn.util.figures import VisualizeError, open_samples, plt, save

FIGURES = datasets.figures()


def curves(paths, labels):
  """{metric: (figures module, {label: {panel: values}})} of the samples files,
  all of one dataset."""
  found, first = {}, None
  for path, label in zip(paths, labels):
    with open_samples(path) as samples:
      for figures in FIGURES:
        metrics = figures.curves(samples)
        if metrics is not None:
          break
      else:
        raise VisualizeError("{} holds the errors or PCK of no known dataset".format(path))
      first = first or (path, figures)
      if figures is not first[1]:
        raise VisualizeError("compare takes files of one dataset: {} is a {} file, {} a {} "
                             "file".format(first[0], first[1].COMMAND, path, figures.COMMAND))
      for metric, per_panel in metrics.items():
        found.setdefault(metric, (figures, {}))[1][label] = per_panel
  return found


def file_colours(labels):
  """{label: colour} in file order, so a file keeps its colour in every panel and figure."""
  return {label: "C{}".format(i % 10) for i, label in enumerate(labels)}


def comparison_figure(figures, metric, by_label, colours, dpi=80):
  """One panel per action, one labelled line per file in its `colours` entry."""
  actions = sorted({a for per_action in by_label.values() for a in per_action})
  figure, axes = plt.subplots(1, len(actions), figsize=(3.6 * len(actions), 3), dpi=dpi,
                              squeeze=False)
  for ax, action in zip(axes[0], actions):
    for label, per_action in by_label.items():
      if action in per_action:
        x, x_label = figures.horizon(per_action[action])
        ax.plot(x, per_action[action], marker=figures.MARKER, label=label, color=colours[label])
        ax.set_xlabel(x_label)
    ax.set_title(action, fontsize=10)
    ax.set_ylabel(figures.Y_LABELS[metric])
    ax.legend(fontsize=8)
  figure.tight_layout()
  return figure


def run_compare(args):
  labels = args.labels.split(",") if args.labels else [
      os.path.splitext(os.path.basename(p))[0] for p in args.samples]
  if len(labels) != len(args.samples):
    raise VisualizeError("--labels names {} files, {} were given".format(
        len(labels), len(args.samples)))
  colours = file_colours(labels)
  for metric, (figures, by_label) in curves(args.samples, labels).items():
    save(comparison_figure(figures, metric, by_label, colours),
         os.path.join(args.out, "compare_{}.png".format(metric)))


def parse_args(argv):
  p = errors.ArgumentParser(description=__doc__.splitlines()[0])
  commands = p.add_subparsers(dest="command")
  subs = [figures.add_command(commands) for figures in FIGURES]
  compare = commands.add_parser("compare", help="error or PCK against the horizon, per file")
  compare.add_argument("samples", nargs="+")
  compare.add_argument("--labels", default="", help="comma-separated, one per file")
  for sub in subs + [compare]:
    sub.add_argument("--out", default="figures", help="directory for the pictures")
  args = p.parse_args(argv)
  if args.command is None:
    p.error("choose {} or compare".format(", ".join(f.COMMAND for f in FIGURES)))
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
  commands = dict({f.COMMAND: f.run for f in FIGURES}, compare=run_compare)
  commands[args.command](args)
  return 0


if __name__ == "__main__":
  sys.exit(errors.run_main(main))
