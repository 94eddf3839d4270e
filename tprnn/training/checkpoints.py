"""Checkpoint files of an experiment directory: the original's `checkpoint-N`
(best model, interruption, end of training), the rolling `rolling-N` saved
every --save_secs, restoring either, and saving only finite weights."""

import os
import re
import time

import tensorflow.compat.v1 as tf

from tprnn.util import errors

PREFIX = "checkpoint"
ROLLING_PREFIX = "rolling"
KEEP = 10  # checkpoint-N files kept, as the original
ROLLING_KEEP = 2


class CheckpointError(errors.Error):
  """A checkpoint that cannot be found, read or written, or weights that are
  not finite."""


def steps(directory, prefix=PREFIX):
  """Steps N of the <prefix>-N checkpoints in `directory`, sorted."""
  if not os.path.isdir(directory):
    return []
  pattern = re.compile(r"^{}-(\d+)\.index$".format(prefix))
  return sorted(int(m.group(1)) for m in map(pattern.match, os.listdir(directory)) if m)


def path(directory, step, prefix=PREFIX):
  return os.path.join(directory, "{}-{}".format(prefix, step))


def present(directory):
  """'10, 20, rolling-25' or 'none': what --load can name."""
  names = [str(s) for s in steps(directory)] + [
      "{}-{}".format(ROLLING_PREFIX, s) for s in steps(directory, ROLLING_PREFIX)]
  return ", ".join(names) or "none"


def find(directory, step):
  """The path of checkpoint-`step`, else rolling-`step`."""
  for prefix in (PREFIX, ROLLING_PREFIX):
    if step in steps(directory, prefix):
      return path(directory, step, prefix)
  raise CheckpointError("--load {}: no {}-{} in {} (present: {})".format(
      step, PREFIX, step, directory, present(directory)))


class Savers(object):
  """The savers of a graph's variables and the op telling whether they are
  all finite; build inside the graph."""

  def __init__(self, variables):
    self.numbered = tf.train.Saver(variables, max_to_keep=KEEP)  # checkpoint-N: best, last, interrupted
    self.rolling = tf.train.Saver(variables, max_to_keep=ROLLING_KEEP)
    floats = [v for v in variables if v.dtype.base_dtype.is_floating]
    self.all_finite = tf.reduce_all(tf.stack(
        [tf.reduce_all(tf.is_finite(v)) for v in floats]))

  def check_finite(self, sess, step):
    """Raises CheckpointError when a weight is NaN or infinite."""
    if not sess.run(self.all_finite):
      raise CheckpointError("the weights are not finite after step {}".format(step))

  def save(self, sess, directory, step, rolling=False):
    """Writes checkpoint-`step` (rolling-`step`) if the weights are finite.
    A failed write raises CheckpointError; TensorFlow leaves no partial file."""
    self.check_finite(sess, step)
    prefix = ROLLING_PREFIX if rolling else PREFIX
    print("Saving the model at {} ...".format(directory))
    start = time.time()
    saver = self.rolling if rolling else self.numbered
    try:
      saver.save(sess, os.path.join(directory, prefix), global_step=step,
                 latest_filename="{}_checkpoint".format(ROLLING_PREFIX) if rolling else None)
    except tf.errors.OpError as e:
      remove_partial_saves(directory)
      remove_files_of(path(directory, step, prefix))  # what did get written is not a checkpoint
      raise CheckpointError("could not save {}: {}".format(
          path(directory, step, prefix), errors.tf_error_reason(e)))
    print("done in {:.2f} ms".format((time.time() - start) * 1000))


def remove_files_of(checkpoint):
  """Removes the files of `checkpoint` (a path prefix: .index, .data-*, .meta)."""
  directory, name = os.path.split(checkpoint)
  for entry in os.listdir(directory):
    if entry.startswith(name + "."):
      os.remove(os.path.join(directory, entry))


def remove_partial_saves(directory):
  """Removes the temporary files of saves that did not finish (TensorFlow writes
  `<name>.tempstate<number>` and renames it when done); returns their names."""
  if not os.path.isdir(directory):  # a failed save's directory may be gone
    return []
  names = sorted(name for name in os.listdir(directory)
                 if name.startswith((PREFIX, ROLLING_PREFIX)) and ".tempstate" in name)
  for name in names:
    os.remove(os.path.join(directory, name))
  return names


def restore(sess, checkpoint):
  """Initialises every variable, then restores those `checkpoint` holds (see
  restorable_variables). Unreadable files raise CheckpointError."""
  try:
    variables = restorable_variables(sess.graph, checkpoint)
    sess.run(tf.variables_initializer(sess.graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)))
    tf.train.Saver(variables).restore(sess, checkpoint)
  except (tf.errors.OpError, ValueError) as e:
    raise CheckpointError("cannot read {}: {} (corrupt or truncated files?)".format(
        checkpoint, errors.tf_error_reason(e)))


def restorable_variables(graph, checkpoint):
  """The graph's variables that `checkpoint` holds, so that checkpoints move
  between precisions and optimizers: state the checkpoint lacks (loss scale,
  optimizer slots) starts fresh. Its extra entries are ignored; a missing or
  differently shaped model weight is an error."""
  stored = dict(tf.train.list_variables(checkpoint))
  variables = graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)
  trainable = {v.op.name for v in graph.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES)}
  wrong = ["{} (model {}, checkpoint {})".format(v.op.name, v.shape.as_list(), stored.get(v.op.name))
           for v in variables
           if v.op.name in trainable and stored.get(v.op.name) != v.shape.as_list()]
  if wrong:
    raise CheckpointError("{} does not fit this model: {}".format(checkpoint, "; ".join(wrong)))
  fresh = [v.op.name for v in variables if v.op.name not in stored]
  if fresh:
    print("Not in the checkpoint, initialised fresh: {}".format(", ".join(fresh)))
  return [v for v in variables if v.op.name in stored]
