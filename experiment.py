"""Plumbing shared by tprnn_train_human.py and tprnn_train_penn.py: flags, the
experiment directory, sessions, checkpoints, summaries and the training loop.
Models only build graphs; everything that runs them lives here."""

import argparse
import contextlib
import os
import re
import signal
import sys
import time

import numpy as np
import tensorflow.compat.v1 as tf

import devices
from data_utils import DataError
import tprnn_basic_model
import tprnn_generic_model
import tprnn_graph

MODELS = {"basic": tprnn_basic_model.TPRNNBasicModel,
          "generic": tprnn_generic_model.TPRNNGenericModel}
ZERO_VELOCITY = "zero_velocity"
CHECKPOINT_PREFIX = "checkpoint"
PRINT_EVERY = 10
EVAL_CHUNK = 2048  # sequences per forward pass when evaluating


class UsageError(Exception):
  """A bad flag, file or state; run_main prints its one-line message and exits 1."""


class TrainingError(Exception):
  """Training cannot go on (e.g. a non-finite loss); reported like UsageError."""


# ----------------------------------------------------------------------------
# Flags


def _bool(text):
  value = str(text).strip().lower()
  if value in ("1", "true", "t", "yes", "y"):
    return True
  if value in ("0", "false", "f", "no", "n"):
    return False
  raise argparse.ArgumentTypeError("expected true or false, got '{}'".format(text))


class _Parser(argparse.ArgumentParser):
  def error(self, message):
    raise UsageError(message)


def add_bool(group, name, default, help_text):
  """TF1/absl-style boolean: --name, --name=false, --noname."""
  group.add_argument("--" + name, nargs="?", const=True, default=default, type=_bool,
                     help=help_text + " (default: %(default)s)")
  group.add_argument("--no" + name, dest=name, action="store_false", help=argparse.SUPPRESS)


def flag_parser(description, dataset, data_dir, seq_length_in, seq_length_out):
  """The original's flags (same names and defaults) plus this port's own."""
  p = _Parser(description=description,
              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  g = p.add_argument_group("learning")
  g.add_argument("--learning_rate", type=float, default=0.005, help="Learning rate.")
  g.add_argument("--learning_rate_decay_factor", type=float, default=0.95,
                 help="Learning rate is multiplied by this much. 1 means no decay.")
  g.add_argument("--learning_rate_step", type=int, default=10000,
                 help="Every this many steps, do decay.")
  g.add_argument("--max_gradient_norm", type=float, default=5, help="Clip gradients to this norm.")
  g.add_argument("--batch_size", type=int, default=16, help="Batch size to use during training.")
  g.add_argument("--iterations", type=int, default=int(1e5), help="Iterations to train for.")
  g.add_argument("--more", type=int, default=0,
                 help="If > 0, train this many iterations instead of --iterations "
                      "(the directory name still uses --iterations).")
  g.add_argument("--seed", type=int, default=None,
                 help="Seed for batches and initial weights; the same seed and flags "
                      "give the same losses. Default: drawn and printed.")
  g = p.add_argument_group("architecture")
  g.add_argument("--model", default="basic",
                 help="basic (M=2, K=2, the published model), generic (M, K free) "
                      "or zero_velocity (no network: repeat the last observed frame).")
  g.add_argument("--rnn_size", type=int, default=1024, help="Size of each LSTM.")
  g.add_argument("--tprnn_scale", type=int, default=2, help="K: scale of the prism.")
  g.add_argument("--tprnn_layers", type=int, default=2, help="M: number of levels.")
  g.add_argument("--dropout_keep", type=float, default=1.0,
                 help="Dropout keep probability (generic model).")
  add_bool(g, "fix_generic_contexts", False,
            "Generic model: feed the generator the context of each level's phase that "
            "updated last, instead of the published phase-as-channel indexing.")
  g.add_argument("--seq_length_in", type=int, default=seq_length_in,
                 help="Frames fed to the encoder (it gets seq_length_in - 1 of them).")
  g.add_argument("--seq_length_out", type=int, default=seq_length_out,
                 help="Frames the decoder predicts.")
  add_bool(g, "omit_one_hot", True, "Remove the one-hot action encoding (must be true).")
  g = p.add_argument_group("data and directories")
  g.add_argument("--data_dir", default=os.path.normpath(data_dir), help="Data directory.")
  g.add_argument("--train_dir", default=os.path.normpath("./experiments/"),
                 help="Root of the experiment directories.")
  g.add_argument("--dataset", default=dataset, help="human or penn (fixed by the script).")
  g = p.add_argument_group("running")
  g.add_argument("--test_every", type=int, default=1000, help="Evaluate every this many steps.")
  g.add_argument("--save_every", type=int, default=1000,
                 help="Save (when best so far) only at steps that are multiples of this.")
  add_bool(g, "sample", False, "Evaluate checkpoint --load and write --samples_file.")
  g.add_argument("--samples_file", default="samples.h5", help="Where --sample writes.")
  g.add_argument("--load", type=int, default=0,
                 help="Restore checkpoint-N of the experiment directory (resume or sample).")
  g = p.add_argument_group("device and precision")
  g.add_argument("--device", default="auto",
                 help="auto (npu if npu_bridge imports, else gpu if one is visible, else "
                      "cpu), cpu, gpu or npu.")
  add_bool(g, "use_cpu", False, "The original's switch: same as --device cpu.")
  add_bool(g, "mixed_precision", False,
           "GPU: fp16 auto mixed precision with dynamic loss scaling; CPU: bf16 where "
           "supported. Variables stay float32.")
  g.add_argument("--precision_mode", default="force_fp16",
                 help="NPU only: " + ", ".join(devices.NPU_PRECISION_MODES) + ".")
  add_bool(g, "xla", False, "Compile the graph with XLA JIT.")
  return p


def check_common_flags(flags, dataset):
  """Validates what both scripts share; raises UsageError naming the flag."""
  if flags.dataset != dataset:
    raise UsageError("--dataset {} does not match this script, which trains on {}".format(
        flags.dataset, dataset))
  if flags.model not in list(MODELS) + [ZERO_VELOCITY]:
    raise UsageError("unknown --model '{}': expected one of {}".format(
        flags.model, ", ".join(list(MODELS) + [ZERO_VELOCITY])))
  if flags.model == "basic":
    message = tprnn_basic_model.unsupported_prism(flags.tprnn_scale, flags.tprnn_layers,
                                                  flags.dropout_keep)
    if message:
      raise UsageError(message)
  if not flags.omit_one_hot:
    raise UsageError("--omit_one_hot false is not supported: the TP-RNN models take "
                     "poses without the one-hot action code")
  for name in ("batch_size", "rnn_size", "tprnn_scale", "tprnn_layers", "test_every",
               "save_every", "learning_rate_step", "seq_length_out"):
    if getattr(flags, name) < 1:
      raise UsageError("--{} must be at least 1, got {}".format(name, getattr(flags, name)))
  if flags.seq_length_in < 2:
    raise UsageError("--seq_length_in must be at least 2 (the encoder gets "
                     "seq_length_in - 1 frames), got {}".format(flags.seq_length_in))
  if not 0.0 < flags.dropout_keep <= 1.0:
    raise UsageError("--dropout_keep must be in (0, 1], got {}".format(flags.dropout_keep))
  if flags.sample and flags.load <= 0 and flags.model != ZERO_VELOCITY:
    raise UsageError("--sample needs --load N, the checkpoint to evaluate")
  if flags.model != ZERO_VELOCITY:
    flags.placement = devices.resolve("cpu" if flags.use_cpu else flags.device,
                                      flags.mixed_precision, flags.precision_mode, flags.xla)
    print(devices.describe(flags.placement))


def experiment_dir(flags, *dataset_parts):
  """The original's layout: train_dir/<dataset parts>/out_O/iterations_I/
  rnn_size_R/lr_L/tprnn_scale_K/tprnn_layers_M/dropout_keep_D/<basic|generic>."""
  parts = [flags.train_dir] + list(dataset_parts) + [
      "out_{}".format(flags.seq_length_out),
      "iterations_{}".format(flags.iterations),
      "rnn_size_{}".format(flags.rnn_size),
      "lr_{}".format(flags.learning_rate)]
  if flags.tprnn_scale > 0:
    parts.append("tprnn_scale_{}".format(flags.tprnn_scale))
  if flags.tprnn_layers > 0:
    parts.append("tprnn_layers_{}".format(flags.tprnn_layers))
  parts.append("dropout_keep_{}".format(flags.dropout_keep))
  parts.append("basic" if flags.model == "basic" else "generic")
  return os.path.normpath(os.path.join(*parts))


def run_main(main, argv=None):
  """Runs main(argv); a UsageError or data error becomes one line on stderr
  and exit status 1, without a traceback."""
  try:
    return main(sys.argv[1:] if argv is None else argv)
  except (UsageError, TrainingError, DataError, devices.DeviceError) as e:
    print("error: {}".format(e), file=sys.stderr)
    return 1


# ----------------------------------------------------------------------------
# Graph, session and checkpoints


def model_config(flags, input_size, source_seq_len):
  return tprnn_graph.ModelConfig(
      input_size=input_size, source_seq_len=source_seq_len,
      target_seq_len=flags.seq_length_out, rnn_size=flags.rnn_size,
      max_gradient_norm=flags.max_gradient_norm, learning_rate=flags.learning_rate,
      learning_rate_decay_factor=flags.learning_rate_decay_factor,
      tprnn_scale=flags.tprnn_scale, tprnn_layers=flags.tprnn_layers,
      dropout_keep=flags.dropout_keep, fix_generic_contexts=flags.fix_generic_contexts)


def build_model(flags, input_size, source_seq_len, seed):
  """A fresh graph holding the model and its saver. Returns (graph, model, saver)."""
  graph = tf.Graph()
  with graph.as_default():
    tf.set_random_seed(seed)
    model = MODELS[flags.model](model_config(flags, input_size, source_seq_len),
                                devices.optimizer_wrapper(flags.placement))
    saver = tf.train.Saver(tf.global_variables(), max_to_keep=10)
  return graph, model, saver


def session_config(flags):
  return devices.session_config(flags.placement)


def checkpoint_steps(directory):
  """Steps N of the checkpoint-N files in `directory`, sorted."""
  if not os.path.isdir(directory):
    return []
  pattern = re.compile(r"^{}-(\d+)\.index$".format(CHECKPOINT_PREFIX))
  return sorted(int(m.group(1)) for m in map(pattern.match, os.listdir(directory)) if m)


def checkpoint_path(directory, step):
  return os.path.join(directory, "{}-{}".format(CHECKPOINT_PREFIX, step))


def initialize_or_restore(sess, directory, load):
  """Initialises fresh variables (load <= 0) or restores checkpoint-`load`."""
  if load <= 0:
    print("Creating model with fresh parameters.")
    sess.run(tf.global_variables_initializer())
    return
  steps = checkpoint_steps(directory)
  if load not in steps:
    raise UsageError("--load {}: no {}-{} in {} (present: {})".format(
        load, CHECKPOINT_PREFIX, load, directory,
        ", ".join(str(s) for s in steps) or "none"))
  path = checkpoint_path(directory, load)
  print("Loading model {}".format(path))
  restorer = tf.train.Saver(restorable_variables(sess.graph, path))
  sess.run(tf.global_variables_initializer())
  restorer.restore(sess, path)


def restorable_variables(graph, path):
  """The graph's variables that checkpoint `path` holds, so that checkpoints
  move between precisions and optimizers: state the checkpoint lacks (loss
  scale, optimizer slots) starts fresh. Its extra entries are ignored; a
  missing or differently shaped model weight is an error."""
  stored = dict(tf.train.list_variables(path))
  variables = graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)
  trainable = {v.op.name for v in graph.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES)}
  wrong = ["{} (model {}, checkpoint {})".format(v.op.name, v.shape.as_list(), stored.get(v.op.name))
           for v in variables
           if v.op.name in trainable and stored.get(v.op.name) != v.shape.as_list()]
  if wrong:
    raise UsageError("{} does not fit this model: {}".format(path, "; ".join(wrong)))
  fresh = [v.op.name for v in variables if v.op.name not in stored]
  if fresh:
    print("Not in the checkpoint, initialised fresh: {}".format(", ".join(fresh)))
  return [v for v in variables if v.op.name in stored]


def save_checkpoint(sess, saver, directory, step):
  print("Saving the model at {} ...".format(directory))
  start = time.time()
  os.makedirs(directory, exist_ok=True)
  saver.save(sess, os.path.join(directory, CHECKPOINT_PREFIX), global_step=step)
  print("done in {:.2f} ms".format((time.time() - start) * 1000))


def feed_dict(model, enc, dec_in, dec_out):
  return {model.encoder_inputs: enc, model.decoder_inputs: dec_in, model.decoder_outputs: dec_out}


def predict(sess, model, enc, dec_in, dec_out, chunk_size=EVAL_CHUNK):
  """Forward pass (no dropout) over [N, ...] feeds in chunks of `chunk_size`
  sequences, so memory stays bounded. Returns (predictions [N, out, P], mean
  squared error over all of them)."""
  outputs, total = [], 0.0
  for start in range(0, len(enc), chunk_size):
    chunk = slice(start, start + chunk_size)
    out, loss = sess.run([model.outputs, model.loss],
                         feed_dict(model, enc[chunk], dec_in[chunk], dec_out[chunk]))
    outputs.append(out)
    total += loss * len(out)
  return np.concatenate(outputs), total / len(enc)


def predictor(sess, model):
  """predict(enc, dec_in, dec_out) for an evaluation: see `predict`."""
  return lambda enc, dec_in, dec_out: predict(sess, model, enc, dec_in, dec_out)


def zero_velocity_predict(enc, dec_in, dec_out):
  """The baseline: repeats the last observed frame (decoder input 0) over the
  horizon. Returns (predictions [N, out, P], mean squared error)."""
  preds = np.repeat(dec_in[:, :1], dec_out.shape[1], axis=1)
  return preds, float(np.mean((dec_out - preds) ** 2))


def scalar_summary(values):
  """A Summary proto of {tag: value}."""
  return tf.Summary(value=[tf.Summary.Value(tag=tag, simple_value=float(v))
                           for tag, v in values.items()])


@contextlib.contextmanager
def atomic_output(path):
  """Yields a temporary path beside `path`; renames it to `path` on success
  and removes it on failure, so no half-written file is left behind."""
  tmp = "{}.tmp{}".format(path, os.getpid())
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def resolve_seed(seed):
  if seed is None:
    seed = int.from_bytes(os.urandom(4), "little") % 2 ** 31
  print("Seed: {}".format(seed))
  return seed


# ----------------------------------------------------------------------------
# Training loop


class Best(object):
  """The original's best-model rule: better when either criterion is at least
  as good as the best so far (both are lower-is-better)."""

  def __init__(self):
    self.criteria = (np.inf, np.inf)
    self.step = None

  def update(self, criteria, step):
    if criteria[0] <= self.criteria[0] or criteria[1] <= self.criteria[1]:
      self.criteria, self.step = tuple(criteria), step
      return True
    return False


class _StopOnSignal(object):
  """Turns Ctrl-C into a flag the loop checks between steps."""

  def __enter__(self):
    self.requested = False
    self._previous = signal.signal(signal.SIGINT, self._handle)
    return self

  def _handle(self, signum, frame):
    self.requested = True

  def __exit__(self, *exc):
    signal.signal(signal.SIGINT, self._previous)


def train_loop(sess, model, saver, flags, directory, next_batch, evaluate):
  """The original's loop: a step per batch, a progress line every 10 steps,
  learning-rate decay every learning_rate_step, an evaluation every
  test_every steps (saved when best and at a save_every multiple), a final
  save. Ctrl-C saves and stops; a non-finite loss stops without saving.

  next_batch() returns (encoder_inputs, decoder_inputs, decoder_outputs);
  evaluate(step, train_loss, step_time_ms, test_writer) returns the two
  lower-is-better criteria of the best-model rule.
  """
  train_writer = tf.summary.FileWriter(os.path.join(directory, "log", "train"), sess.graph)
  test_writer = tf.summary.FileWriter(os.path.join(directory, "log", "test"))
  current_step = 0 if flags.load <= 0 else flags.load + 1
  best, last_saved = Best(), flags.load if flags.load > 0 else None
  step_time = loss = 0.0
  iterations = flags.iterations if flags.more == 0 else flags.more
  try:
    with _StopOnSignal() as stop:
      for _ in range(iterations):
        start = time.time()
        feed = feed_dict(model, *next_batch())
        feed[model.keep_prob] = flags.dropout_keep
        _, step_loss, lr = sess.run([model.train_op, model.loss, model.learning_rate], feed)
        if not np.isfinite(step_loss):
          raise TrainingError(
              "training loss became {} at step {}; stopped without saving (last good "
              "checkpoint: {})".format(step_loss, current_step, checkpoint_path(
                  directory, last_saved) if last_saved else "none"))
        train_writer.add_summary(scalar_summary(
            {"loss/loss": step_loss, "learning_rate/learning_rate": lr}), current_step)
        elapsed = time.time() - start
        if current_step % PRINT_EVERY == 0:
          print("step {:04d}; step_loss: {:.4f}  ({:.1f} ms/step)".format(
              current_step, step_loss, elapsed * 1000))
        step_time += elapsed / flags.test_every
        loss += step_loss / flags.test_every
        current_step += 1

        if current_step % flags.learning_rate_step == 0:
          sess.run(model.learning_rate_decay_op)

        if current_step % flags.test_every == 0:
          criteria = evaluate(current_step, loss, step_time * 1000, test_writer)
          if best.update(criteria, current_step):
            print("Found a better model; checkpoint id {}".format(current_step))
            if current_step % flags.save_every == 0:
              save_checkpoint(sess, saver, directory, current_step)
              last_saved = current_step
          step_time = loss = 0.0
          sys.stdout.flush()
        if stop.requested:
          print("Interrupted at step {}; resume with --load {}.".format(
              current_step, current_step))
          break
    save_checkpoint(sess, saver, directory, current_step)
    print("Best model's checkpoint id: {}".format(best.step))
  finally:
    train_writer.close()
    test_writer.close()
