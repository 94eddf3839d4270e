"""The Penn Action protocol (docs/PROTOCOL.md §6): every validation sequence,
the published PCK and the per-joint PCK at each of the 16 predicted steps,
on the visible joints of the target frames."""

import collections

import numpy as np

import load

EVAL_SUBSET_SEED = 0

ValidationSet = collections.namedtuple("ValidationSet", [
    "feeds",                # (encoder input, decoder input, target), [N, ...]
    "visibilities",         # [N, 16, 13] of the target frames
    "bounding_box_length",  # [N]
    "observed",             # [N, encoder length, 26]: the frames before the targets
    "video",                # [N]
    "frame_index",          # [N, S]: the video frame of each sequence frame
    "box_centre",           # [N, 2]
])


def model_feeds(sequences, encoder_length):
  """Encoder, decoder input and target [N, ...] of sequences whose first
  frame is repeated in front (zero initial velocity)."""
  poses = load.with_repeated_first_frame(sequences.poses)  # [N, S+1, 26]
  return (poses[:, :encoder_length], poses[:, encoder_length:-1],
          poses[:, encoder_length + 1:])


def validation_set(sequences, encoder_length):
  """The model feeds and target-frame visibilities, built once per run."""
  return ValidationSet(model_feeds(sequences, encoder_length),
                       sequences.visibilities[:, encoder_length:],
                       sequences.bounding_box_length, sequences.poses[:, :encoder_length],
                       sequences.video, sequences.frame_index, sequences.box_centre)


def validation_subset(val, size, seed=EVAL_SUBSET_SEED):
  """A fixed random subset of `size` sequences (all of them when size is 0
  or at least their number), the same in every run."""
  count = len(val.bounding_box_length)
  if size == 0 or size >= count:
    return val
  chosen = np.sort(np.random.RandomState(seed).choice(count, size, replace=False))
  return ValidationSet(tuple(f[chosen] for f in val.feeds), *(f[chosen] for f in val[1:]))


def pck_metrics(predictions, targets, visibilities):
  """[16, 4]: l2 norm, euclidean, published PCK and per-joint PCK of each
  predicted step [N, 16, 26], on the visible joints [N, 16, 13] of the target."""
  rows = []
  for step in range(predictions.shape[1]):
    pred, target, visible = predictions[:, step], targets[:, step], visibilities[:, step]
    l2, euclidean, pck = load.distance(pred, target, visible)
    per_joint = load.distance(pred, target, visible, per_joint=True)[2]
    rows.append((l2, euclidean, pck, per_joint))
  return np.array(rows)


def print_metrics(metrics, loss):
  print("Validation loss: {}".format(loss))
  for step, (l2, euclidean, pck, per_joint) in enumerate(metrics, 1):
    print("Predict next %d steps, l2_norm: %f, euclidean: %f, pck: %f, pck_per_joint: %f"
          % (step, l2, euclidean, pck, per_joint))


def evaluate_validation(predict, val, model):
  """Predicts the whole validation set and prints its metrics under a title
  naming `model` ('checkpoint-N'). Returns (predictions [N, 16, 26], metrics
  [16, 4], loss)."""
  print("PCK@0.05 of {} on {} validation sequences (pck: the original's coordinate pairing, "
        "pck_per_joint: x_j with y_j)".format(model, len(val.bounding_box_length)), flush=True)
  predictions, loss = predict(*val.feeds)
  metrics = pck_metrics(predictions, val.feeds[2], val.visibilities)
  print_metrics(metrics, loss)
  return predictions, metrics, loss
