"""Scoring exp-map models on test windows (docs/PROTOCOL.md §2-3, §8-9): the
Euler-angle error at each predicted frame, the original's tables and
TensorBoard values; and the windows of H3.6M: the published eight SRNN
windows per action of the test subject (srnn8), the field's 256 and all."""

import numpy as np

import data_utils
from tprnn.evaluation.report import average_rows


def horizons(target_len):
  """(column ms, frame index) of the table that a target_len horizon reaches."""
  return [(ms, f) for ms, f in zip(data_utils.HORIZON_MS, data_utils.HORIZON_FRAMES)
          if f < target_len]


class WindowTest(object):
  """Normalised test windows {action: [N, source_len + target_len, P]} of
  `data` (a data_utils.Dataset, whose statistics de-normalise), their feeds,
  and their de-normalised ground truth in exp-map [N, out, D] and Euler
  angles."""

  def __init__(self, data, windows, source_len, target_len, protocol, source):
    """`source` names the sequences the windows are cut from ('subject 5')."""
    self.data, self.actions, self.target_len = data, list(windows), target_len
    self.protocol, self.source = protocol, source
    self.feeds, self.gt_expmap, self.gt_euler = {}, {}, {}
    for action, action_windows in windows.items():
      self.feeds[action] = data_utils.split_windows(action_windows, source_len)
      self.gt_expmap[action] = self.denormalize(self.feeds[action][2])
      self.gt_euler[action] = data_utils.expmap_to_euler(self.gt_expmap[action])

  def describe(self):
    """'protocol srnn8, 8 windows per action of subject 5': what a table scores."""
    counts = sorted({len(feeds[0]) for feeds in self.feeds.values()})
    per_action = str(counts[0]) if len(counts) == 1 else "{}-{}".format(counts[0], counts[-1])
    return "protocol {}, {} windows per action of {}".format(self.protocol, per_action, self.source)

  def title(self, what, model):
    """A table's title line: what it shows, of which model, on which windows."""
    return "{} of {}; {}".format(what, model, self.describe())

  def denormalize(self, poses):
    return data_utils.unnormalize(poses, self.data.mean, self.data.std, self.data.dim_to_use)

  def observed(self, action):
    """The de-normalised frames the model observes [N, in, D]: the encoder's
    and the first decoder input."""
    enc, dec_in, _ = self.feeds[action]
    return self.denormalize(np.concatenate([enc, dec_in[:, :1]], axis=1))

  def evaluate(self, predict, mask_from):
    """predict(enc, dec_in, dec_out) -> (normalised predictions [N, out, P], loss).
    Returns ({action: mean error over the windows [out]}, {action: de-normalised
    predictions [N, out, D]}, the mean of the actions' losses)."""
    mean_errors, predictions, losses = {}, {}, []
    for action in self.actions:
      preds, loss = predict(*self.feeds[action])
      predictions[action] = self.denormalize(preds)
      errors = data_utils.euler_errors(data_utils.expmap_to_euler(predictions[action]),
                                       self.gt_euler[action], mask_from)
      mean_errors[action] = errors.mean(axis=0)
      losses.append(loss)
    return mean_errors, predictions, float(np.mean(losses))


class SrnnTest(WindowTest):
  """The H3.6M test windows of each action under `protocol` (srnn8, 256 or
  all; see data_utils.eval_anchors) on the sequences of `subject` in data.test."""

  def __init__(self, data, actions, source_len, target_len, protocol="srnn8",
               subject=data_utils.TEST_SUBJECT):
    windows = {action: data_utils.eval_windows(data.test, action, source_len, target_len,
                                               protocol, subject) for action in actions}
    super().__init__(data, windows, source_len, target_len, protocol,
                     "subject {}".format(subject))


def print_table(mean_errors, target_len, cell=" {0:.3f} |", title=None):
  """The original's table: one row per action, then the average row."""
  print()
  if title:
    print(title)
  print("{0: <16} |".format("milliseconds") + "".join(
      " {0:5d} |".format(ms) for ms in data_utils.HORIZON_MS))
  for name, errors in average_rows(mean_errors.items()):
    print("{0: <16} |".format(name) + "".join(
        cell.format(errors[f]) if f < target_len else "   n/a |"
        for f in data_utils.HORIZON_FRAMES))


def error_summaries(mean_errors, target_len, protocol="srnn8"):
  """TensorBoard values: each action's and the average's horizons, and the
  average error summed over the whole horizon (tags srnn_seeds_* for srnn8,
  as the original, else windows_<protocol>_*)."""
  rows = average_rows(mean_errors.items())
  tag = "srnn_seeds" if protocol == "srnn8" else "windows_" + protocol
  values = {"euler_error_{}/{}_{:04d}".format(name, tag, ms): errors[frame]
            for name, errors in rows for ms, frame in horizons(target_len)}
  values["euler_error_average/{}_sum".format(tag)] = np.sum(rows[-1][1])
  return values


def print_sample_results(mean_errors, target_len):
  """The original --sample lines: full-horizon errors per action and averaged,
  then the 80/160/320/400 ms subset (and the six columns when they exist)."""
  def print_subsets(errors):
    print("Subset results for 80ms, 160ms, 320ms, 400ms")
    print(",".join(str(errors[f]) for f in data_utils.HORIZON_FRAMES[:4] if f < target_len))
    if target_len > data_utils.HORIZON_FRAMES[-1]:
      print("Subset results for 80ms, 160ms, 320ms, 400ms, 560ms, 1000ms")
      print(",".join(str(errors[f]) for f in data_utils.HORIZON_FRAMES))

  for name, errors in average_rows(mean_errors.items()):
    print(name if name != "average" else "Avg mean errors across all actions:")
    print(",".join(map(str, errors.tolist())))
    print_subsets(errors)
