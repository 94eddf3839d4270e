"""The original's training loop: a step per batch, a progress line every 10
steps, learning-rate decay every --learning_rate_step, an evaluation every
--test_every steps (saved when best and at a --save_every multiple), a final
save; besides, a rolling checkpoint every --save_secs. SIGINT or SIGTERM on
any worker stops all of them at the same step and saves; a non-finite loss
or weight stops without saving."""

import collections
import signal
import sys
import time

import numpy as np

from tprnn.parallel.cluster import DistributedError
from tprnn.training import checkpoints
from tprnn.training import rundir
from tprnn.training import seeds
from tprnn.training.graph import feed_dict, predictor
from tprnn.training.outputs import Rank0Outputs
from tprnn.util import signals
from tprnn.util.errors import TrainingError

PRINT_EVERY = 10

Status = collections.namedtuple("Status", [
    "step",           # training steps taken
    "global_step",    # the stored global step
    "learning_rate",
    "step_time_ms",   # mean over the steps since the last evaluation
    "train_loss",     # likewise
    "rng",            # for the evaluation's own random draws
])


def time_left(seconds):
  """'16h 21m', '3m 05s' or '42s'."""
  seconds = int(round(seconds))
  if seconds >= 3600:
    return "{}h {:02d}m".format(seconds // 3600, seconds % 3600 // 60)
  if seconds >= 60:
    return "{}m {:02d}s".format(seconds // 60, seconds % 60)
  return "{}s".format(seconds)


class Loop(object):
  """One worker's training run from step --load to its last step.
  batch(step) gives this worker's feeds; evaluate(predict, status) prints an
  evaluation and returns its evaluation.report.Report (rank 0 only)."""

  def __init__(self, sess, net, backend, flags, directory, seed, checkpoint, batch, evaluate):
    self.sess, self.net, self.backend, self.flags = sess, net, backend, flags
    self.seed, self.batch, self.evaluate = seed, batch, evaluate
    self.directory = directory
    self.rank0 = backend.rank == 0
    self.outputs = (Rank0Outputs(sess, net, directory, flags.save_secs, checkpoint, flags.load)
                    if self.rank0 else None)
    self.step = flags.load
    self.last_step = rundir.last_step(vars(flags))
    self.step_time = self.loss = 0.0  # sums since the last evaluation
    self.recent_time, self.recent_steps = 0.0, 0  # since the last progress line

  def run(self):
    """Trains to the last step; returns the exit status: 0, or 128 + the
    signal that stopped training."""
    if self.rank0 and evaluations_ahead(self.flags, self.step, self.last_step) == 0:
      print("note: no evaluation in this run (no multiple of --test_every {} in steps {} to {}): "
            "no table, no best model; the last step is saved".format(
                self.flags.test_every, self.step + 1, self.last_step))
    try:
      with signals.Recorder() as received:
        stop = False
        while self.step < self.last_step and not stop:
          stop = self.train_step(received)
        self.net.savers.check_finite(self.sess, self.step)
        self.backend.on_rank0(self.sess, self.finish)
        if self.rank0:
          self.outputs.close(report=True)
        if stop:
          print("Interrupted at step {}; resume with: {}".format(self.step, rundir.resume_command(
              self.flags.prog, self.directory, self.step, self.last_step)))
          return 128 + (received.received or [signal.SIGINT])[0]
        return 0
    except (TrainingError, checkpoints.CheckpointError, DistributedError) as e:
      if not self.rank0:  # only rank 0 knows the checkpoints
        raise
      raise type(e)("{} (last good checkpoint: {})".format(
          e, self.outputs.last_checkpoint or "none"))
    finally:
      if self.rank0:
        self.outputs.close(report=False)  # the error in flight, if any, is the one to report

  def train_step(self, received):
    """One step and what follows it; returns whether training stops."""
    model, start = self.net.model, time.time()
    feed = feed_dict(model, *self.batch(self.step))
    if self.rank0:
      self.outputs.last_feed = dict(feed)
    feed[model.keep_prob] = self.flags.dropout_keep
    feed[self.net.requests] = [float(bool(received.received)),
                               float(self.rank0 and self.outputs.save_due())]
    _, loss, lr, stop, save = self.backend.run(self.sess, self.net.step, feed)
    if not np.isfinite(loss):
      raise TrainingError("training loss became {} at step {}; stopped without saving".format(
          loss, self.step))
    self.account(loss, lr, time.time() - start)
    self.step += 1
    if self.step % self.flags.learning_rate_step == 0:
      self.sess.run(model.learning_rate_decay_op)
    self.checkpoint_if_due(save, stop)
    return stop

  def account(self, loss, lr, elapsed):
    """Summaries, the progress line and the sums of the evaluation's status."""
    if self.rank0:
      self.outputs.summarize(self.outputs.train_writer,
                             {"loss/loss": loss, "learning_rate/learning_rate": lr}, self.step)
    self.recent_time += elapsed
    self.recent_steps += 1
    if self.step % PRINT_EVERY == 0:
      self.print_progress(loss, elapsed)
    self.step_time += elapsed / self.flags.test_every
    self.loss += loss / self.flags.test_every

  def print_progress(self, loss, elapsed):
    """The original's `step NNNN; step_loss: x`, then step time, steps done of
    the run's last step and the time left at the mean step time since the last
    line (evaluations and saves left out)."""
    pace = self.recent_time / self.recent_steps
    self.recent_time, self.recent_steps = 0.0, 0
    done = self.step + 1  # `step NNNN` is the original's: the step's index, counted from 0
    print("step {:04d}; step_loss: {:.4f}  ({:.1f} ms/step, {}/{} done, {} left)".format(
        self.step, loss, elapsed * 1000, done, self.last_step,
        time_left(pace * (self.last_step - done))))

  def checkpoint_if_due(self, save, stop):
    """Evaluates at a --test_every multiple; saves a rolling checkpoint when a
    worker asked for one. Every worker checks the weights first: they all stop."""
    evaluating = self.step % self.flags.test_every == 0
    if evaluating or save or stop:
      self.net.savers.check_finite(self.sess, self.step)
    if evaluating:
      self.backend.on_rank0(self.sess, self.evaluate_and_save)
      self.step_time = self.loss = 0.0
      sys.stdout.flush()
    if save and not stop:
      self.backend.on_rank0(self.sess, lambda: self.outputs.save(self.step, rolling=True))

  def evaluate_and_save(self):
    """Rank 0's evaluation; saves when the model is the best so far and the
    step is a --save_every multiple."""
    model = self.net.model
    global_step, lr = self.sess.run([model.global_step, model.learning_rate])
    status = Status(self.step, global_step, lr, self.step_time * 1000, self.loss,
                    seeds.batch_rng(self.seed, self.step, seeds.EVALUATION))
    report = self.evaluate(predictor(self.sess, model), status)
    self.outputs.summarize(self.outputs.test_writer, report.summaries, self.step)
    if self.outputs.best.update(report.criteria, self.step):
      self.outputs.best_steps.append(self.step)
      if self.step % self.flags.save_every == 0:
        print("Found a better model; checkpoint id {} (saved as {}-{})".format(
            self.step, checkpoints.PREFIX, self.step))
        self.outputs.save(self.step)
      elif self.step == self.last_step:
        print("Found a better model; checkpoint id {} (the last step, saved as {}-{} at the "
              "end)".format(self.step, checkpoints.PREFIX, self.step))
      else:
        print("Found a better model at step {} (not saved: not a multiple of --save_every "
              "{})".format(self.step, self.flags.save_every))

  def finish(self):
    if self.step not in self.outputs.saved_steps:  # a best model at the last step is saved already
      self.outputs.save(self.step)
    print(self.closing_line())

  def closing_line(self):
    """The best model among this run's saved checkpoints, and what was not saved."""
    best, saved = self.outputs.best.step, self.outputs.saved_steps
    if best is None:
      return "Best model's checkpoint id: none (no evaluation ran; the last checkpoint is {})".format(
          checkpoints.path(self.directory, self.step))
    if best in saved:
      return "Best model's checkpoint id: {}".format(best)
    kept = ([s for s in self.outputs.best_steps if s in saved] or [None])[-1]
    return ("Best model's checkpoint id: {} (the best evaluated, step {}, was not saved: "
            "--save_every {})".format("none saved" if kept is None else "{}, the best saved".format(
                kept), best, self.flags.save_every))


def evaluations_ahead(flags, first, last):
  """How many --test_every multiples lie in (first, last]: the evaluations a run will make."""
  return last // flags.test_every - first // flags.test_every
