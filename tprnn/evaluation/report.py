"""What an evaluation returns, and the original's rule for the best model."""

import collections

import numpy as np

Criterion = collections.namedtuple("Criterion", [
    "name",
    "value",
    "higher_is_better",  # PCK: True; errors: False
])

Report = collections.namedtuple("Report", [
    "criteria",   # the two Criterion of the best-model rule
    "summaries",  # {TensorBoard tag: value} of the test set
])


class Best(object):
  """The original's best-model rule: a model is better when either criterion is
  at least as good as the best so far."""

  def __init__(self):
    self.values = (np.inf, np.inf)  # the best model's criteria, as lower-is-better numbers
    self.step = None

  def update(self, criteria, step):
    """Whether the model of `step`, scored by `criteria`, is the best so far."""
    values = [-c.value if c.higher_is_better else c.value for c in criteria]
    if any(v <= b for v, b in zip(values, self.values)):
      self.values, self.step = values, step
      return True
    return False


def average_rows(rows):
  """[(name, values)...] followed by ("average", their mean)."""
  rows = list(rows)
  return rows + [("average", np.mean([values for _, values in rows], axis=0))]
