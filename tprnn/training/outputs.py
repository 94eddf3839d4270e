"""What rank 0 alone writes: summaries, checkpoints (only of a model that
predicts finite values), the rolling-save clock and the best model so far."""

import os
import threading
import time

import numpy as np
import tensorflow.compat.v1 as tf

from tprnn.evaluation.report import Best
from tprnn.training import checkpoints
from tprnn.training.metrics import MetricsTable
from tprnn.training import rundir
from tprnn.util import errors
from tprnn.util.errors import TrainingError


def scalar_summary(values):
  """A Summary proto of {tag: value}."""
  return tf.Summary(value=[tf.Summary.Value(tag=tag, simple_value=float(v))
                           for tag, v in values.items()])


def _quiet_summary_thread(args, previous=getattr(threading, "excepthook", None)):
  """threading.excepthook leaving out the summary writer's thread, whose I/O
  failure the main thread reports as one line (see Rank0Outputs.summarize)."""
  if args.thread is None or args.thread.name != "EventLoggerThread":
    previous(args)


class Rank0Outputs(object):
  """Summary writers, checkpoints and the best-model rule of a training run."""

  def __init__(self, sess, net, directory, save_secs, checkpoint, first_step):
    """`checkpoint`: the one the run resumed from (at `first_step`), or None."""
    if hasattr(threading, "excepthook"):  # Python >= 3.8
      threading.excepthook = _quiet_summary_thread
    self.sess, self.net, self.directory = sess, net, directory
    self.train_writer = tf.summary.FileWriter(os.path.join(directory, rundir.LOG_DIR, "train"),
                                              sess.graph)
    self.test_writer = tf.summary.FileWriter(os.path.join(directory, rundir.LOG_DIR, "test"))
    self.metrics = MetricsTable(directory, first_step)
    self.best = Best()
    self.best_steps = []  # every step that was the best so far, in order
    self.saved_steps = set()  # this run's checkpoint-N
    self.save_secs = save_secs
    self.last_save_time = time.time()
    self.last_checkpoint = checkpoint
    self.last_feed = None  # the last training batch, whose forward pass a save checks
    # The rolling saver deletes the oldest ones of earlier runs too.
    net.savers.rolling.recover_last_checkpoints([
        checkpoints.path(directory, s, checkpoints.ROLLING_PREFIX)
        for s in checkpoints.steps(directory, checkpoints.ROLLING_PREFIX)])

  def save_due(self):
    return time.time() - self.last_save_time >= self.save_secs

  def save(self, step, rolling=False):
    """checkpoint-`step` (rolling-`step`), if the model predicts finite values."""
    self.check_predictions(step)
    self.net.savers.save(self.sess, self.directory, step, rolling)
    if not rolling:
      self.saved_steps.add(step)
    self.last_save_time, self.last_checkpoint = time.time(), checkpoints.path(
        self.directory, step, checkpoints.ROLLING_PREFIX if rolling else checkpoints.PREFIX)

  def check_predictions(self, step):
    """Finite weights can still predict NaN (e.g. ~1e5 after a huge step):
    the forward pass of the last batch must be finite too."""
    if self.last_feed is None:
      return
    predictions = self.sess.run(self.net.model.outputs, self.last_feed)
    if not np.all(np.isfinite(predictions)):
      raise checkpoints.CheckpointError(
          "the model predicts non-finite values after step {}; not saved".format(step))

  def summarize(self, writer, values, step):
    """Adds scalars {tag: value}, to metrics.csv too (written after each
    evaluation); a full or unwritable disk is a TrainingError."""
    self.metrics.add(os.path.basename(writer.get_logdir()), values, step)
    try:
      writer.add_summary(scalar_summary(values), step)
      if writer is self.test_writer:
        self.metrics.write()
    except Exception as e:  # the writer thread re-raises its I/O failure as any type
      raise TrainingError("cannot write summaries to {}: {}".format(
          writer.get_logdir(), errors.tf_error_reason(e)))

  def close(self, report):
    """Flushes and closes the writers, writes metrics.csv; their failures
    raise when `report`."""
    try:
      self.metrics.write()
    except OSError as e:
      if report:
        raise TrainingError("cannot write {}: {}".format(self.metrics.path, e.strerror or e))
    for writer in (self.train_writer, self.test_writer):
      try:
        writer.close()
      except Exception as e:  # likewise
        if report:
          raise TrainingError("cannot write summaries to {}: {}".format(
              writer.get_logdir(), errors.tf_error_reason(e)))
