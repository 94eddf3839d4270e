"""What every figure of visualize.py shares: matplotlib headless (Agg), the
colours, samples files opened with one-line errors, atomic PNG writes."""

import os

import matplotlib

matplotlib.use("Agg")
import h5py  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

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


def save(figure, path, **kwargs):
  with atomic_file.atomic_output(path) as tmp:
    figure.savefig(tmp, **kwargs)
  plt.close(figure)
  print("Wrote {}".format(path))
