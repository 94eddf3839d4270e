"""What every figure of visualize.py shares: matplotlib headless (Agg), the
colours, samples files opened with one-line errors, titles and legends fitted
to the figure by its renderer, atomic PNG writes."""

import os
import textwrap

import matplotlib

matplotlib.use("Agg")
import h5py  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from tprnn.util import atomic_file  # noqa: E402
from tprnn.util import errors  # noqa: E402

GT_COLOUR, PRED_COLOUR, OBSERVED_COLOUR = "#1f77b4", "#d62728", "#7f7f7f"


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


def extent(figure, artist):
  """The artist's box in pixels, as the figure's renderer draws it."""
  return artist.get_window_extent(figure.canvas.get_renderer())


def inside(figure, artist):
  """Whether the artist lies wholly within the figure."""
  box, frame = extent(figure, artist), figure.bbox
  return frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1


def balanced(text, fits):
  """`text` wrapped at spaces onto the fewest lines `fits` accepts, the lines as
  even as that count allows; None if no wrapping fits."""
  wraps = [textwrap.fill(text, width, break_long_words=False) for width in range(len(text), 0, -1)]
  fitting = [t for t in wraps if fits(t)]
  fewest = min([t.count("\n") for t in fitting], default=None)
  return ([t for t in fitting if t.count("\n") == fewest] or [None])[-1]


def fitted_suptitle(figure, text, fontsize):
  """The figure's title `text`, wrapped onto more lines, then smaller, until it
  fits the figure's width."""
  for size in range(fontsize, 4, -1):
    wrapped = balanced(text, lambda t: inside(figure, figure.suptitle(t, fontsize=size)))
    if wrapped is not None:
      break
  return figure.suptitle(wrapped or text, fontsize=size)


def legend_below(figure, kinds, fontsize=8):
  """A legend at the figure's foot of [(label, colour)] lines, in as many
  columns as fit the figure's width."""
  handles = [Line2D([], [], color=colour, lw=2, label=label) for label, colour in kinds]
  legend = None
  for columns in range(len(handles), 0, -1):
    if legend is not None:
      legend.remove()
    legend = figure.legend(handles=handles, loc="lower center", ncol=columns, fontsize=fontsize,
                           frameon=False)
    if inside(figure, legend):
      break
  return legend


def fraction_below(figure, artist, points):
  """The height, as a fraction of the figure's, from its foot to `points` below the artist."""
  return (extent(figure, artist).y0 - points * figure.dpi / 72.0) / figure.bbox.height


def fraction_above(figure, artist, points):
  """The height, as a fraction of the figure's, from its foot to `points` above the artist."""
  return (extent(figure, artist).y1 + points * figure.dpi / 72.0) / figure.bbox.height


def save(figure, path, **kwargs):
  with atomic_file.atomic_output(path) as tmp:
    figure.savefig(tmp, **kwargs)
  plt.close(figure)
  print("Wrote {}".format(path))
