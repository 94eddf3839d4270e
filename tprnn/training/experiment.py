"""Plumbing shared by tprnn_train_human.py and tprnn_train_penn.py: flags, the
experiment directory, sessions, checkpoints, summaries, and the two ways of
running a model, `train` and `sample`. Models only build graphs and the
scripts only know their dataset; everything that runs a model lives here."""

import argparse
import collections
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import tensorflow.compat.v1 as tf

from tprnn.training import checkpoints
from tprnn.util import devices
from tprnn.parallel import distributed
from tprnn.util import errors
from tprnn.util import signals
from tprnn.util.progress import progress
import tprnn_basic_model
import tprnn_generic_model
from tprnn import prism
from tprnn.training import rundir

MODELS = {"basic": tprnn_basic_model.TPRNNBasicModel,
          "generic": tprnn_generic_model.TPRNNGenericModel}
ZERO_VELOCITY = "zero_velocity"
# Flags that set the model's shape or its experiment directory: with
# --experiment_dir they come from flags.json, and an explicit other value is an error.
MODEL_FLAGS = ("model", "rnn_size", "tprnn_scale", "tprnn_layers", "dropout_keep",
               "fix_generic_contexts", "seq_length_in", "seq_length_out", "omit_one_hot",
               "learning_rate", "iterations", "init_velocity", "dataset")
# Settings that also come from flags.json, but an explicit value overrides.
TRAINING_FLAGS = ("action", "learning_rate_decay_factor", "learning_rate_step",
                  "max_gradient_norm", "batch_size", "data_dir", "test_every", "save_every",
                  "save_secs", "eval_subset")
PRINT_EVERY = 10
EVAL_CHUNK = 2048  # sequences per forward pass when evaluating
EVAL_STREAM = 1  # batch_rng stream of evaluation draws, apart from training batches
MAX_SEED = 2 ** 32 - 1  # numpy's RandomState takes seeds below 2^32
STOP, SAVE = 0, 1  # the requests a worker sends with each step


class UsageError(errors.Error):
  """A bad flag, file or state; run_main prints its one-line message and exits 1."""


class TrainingError(errors.Error):
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


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
  """Shows each flag's default, except those computed later (None), whose
  help text says what they become."""

  def _get_help_string(self, action):
    if action.default is None:
      return action.help
    return super(_HelpFormatter, self)._get_help_string(action)


def add_bool(group, name, default, help_text):
  """TF1/absl-style boolean: --name, --name=false, --noname."""
  group.add_argument("--" + name, nargs="?", const=True, default=default, type=_bool,
                     help=help_text + " (default: %(default)s)")
  group.add_argument("--no" + name, dest=name, action="store_false", help=argparse.SUPPRESS)


def flag_parser(script, description, dataset, data_dir, seq_length_in, seq_length_out,
                seq_length_in_note=""):
  """The original's flags (same names and defaults) plus this port's own;
  `script` is the file of the script they are for."""
  p = _Parser(prog=os.path.basename(script), description=description,
              formatter_class=_HelpFormatter, allow_abbrev=False)
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
                 help="Frames fed to the encoder (it gets seq_length_in - 1 of them)." +
                 seq_length_in_note)
  g.add_argument("--seq_length_out", type=int, default=seq_length_out,
                 help="Frames the decoder predicts.")
  add_bool(g, "omit_one_hot", True, "Remove the one-hot action encoding (must be true).")
  g = p.add_argument_group("data and directories")
  g.add_argument("--data_dir", default=os.path.normpath(data_dir), help="Data directory.")
  g.add_argument("--train_dir", default=os.path.normpath("./experiments/"),
                 help="Root of the experiment directories.")
  g.add_argument("--experiment_dir", default=None,
                 help="Use this experiment directory instead of the one the flags compute; the "
                      "flags of its run (its flags.json) become the defaults, so --sample, "
                      "--load N and resuming need no other flag.")
  g.add_argument("--dataset", default=dataset, help="human or penn (fixed by the script).")
  g = p.add_argument_group("running")
  g.add_argument("--test_every", type=int, default=1000, help="Evaluate every this many steps.")
  g.add_argument("--save_every", type=int, default=1000,
                 help="Save (when best so far) only at steps that are multiples of this.")
  g.add_argument("--save_secs", type=float, default=600,
                 help="Also save a rolling resumable checkpoint (rolling-N, the last {} kept) at "
                      "least this often, so a crash loses at most this much training.".format(
                          checkpoints.ROLLING_KEEP))
  add_bool(g, "overwrite", False,
           "Let a fresh run (no --load) delete the checkpoints and summaries of an experiment "
           "directory that already has some.")
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
  distributed.add_flags(p)
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
               "save_every", "learning_rate_step", "seq_length_out", "iterations"):
    if getattr(flags, name) < 1:
      raise UsageError("--{} must be at least 1, got {}".format(name, getattr(flags, name)))
  for name in ("more", "load"):
    if getattr(flags, name) < 0:
      raise UsageError("--{} must be 0 or more, got {}".format(name, getattr(flags, name)))
  for name in ("max_gradient_norm", "save_secs", "learning_rate"):
    if not getattr(flags, name) > 0:
      raise UsageError("--{} must be positive, got {}".format(name, getattr(flags, name)))
  if flags.seed is not None and not 0 <= flags.seed <= MAX_SEED:
    raise UsageError("--seed must be in 0..{}, got {}".format(MAX_SEED, flags.seed))
  if flags.seq_length_in < 2:
    raise UsageError("--seq_length_in must be at least 2 (the encoder gets "
                     "seq_length_in - 1 frames), got {}".format(flags.seq_length_in))
  if not 0.0 < flags.dropout_keep <= 1.0:
    raise UsageError("--dropout_keep must be in (0, 1], got {}".format(flags.dropout_keep))
  if flags.sample and flags.load <= 0 and flags.model != ZERO_VELOCITY:
    raise UsageError("--sample needs --load N, the checkpoint to evaluate")
  if flags.sample:
    check_samples_file(flags.samples_file)
  flags.placement = None
  if flags.model != ZERO_VELOCITY:
    flags.placement = devices.resolve("cpu" if flags.use_cpu else flags.device,
                                      flags.mixed_precision, flags.precision_mode, flags.xla)
  flags.cluster = distributed.resolve(flags)
  check_distribution(flags)


def check_distribution(flags):
  """What may run on several workers, and how they are asked for."""
  if flags.workers < 1:
    raise UsageError("--workers must be at least 1, got {}".format(flags.workers))
  several = flags.workers > 1 or flags.cluster.size > 1
  if several and (flags.sample or flags.model == ZERO_VELOCITY):
    raise UsageError("--sample and --model zero_velocity run in one process; drop --workers, "
                     "--worker_hosts and RANK_SIZE")
  if flags.workers > 1 and (flags.cluster.backend != "none" or flags.dist not in ("auto", "collective")):
    raise UsageError("--workers {} starts its own local collective workers: drop --worker_hosts "
                     "and use --dist auto or collective".format(flags.workers))
  if flags.cluster.backend == "npu" and flags.placement and flags.placement.device != "npu":
    raise UsageError("--dist npu needs --device npu (or auto with npu_bridge)")
  if flags.cluster.rank > 0:
    sys.stdout = open(os.devnull, "w")  # only rank 0 prints


def parse(parser, argv):
  """The flags of argv; with --experiment_dir, the flags recorded in its
  flags.json are the defaults (see apply_recorded_flags)."""
  flags = parser.parse_args(argv)
  flags.prog = parser.prog
  if flags.experiment_dir:
    apply_recorded_flags(flags, explicit_flags(argv))
  return flags


def explicit_flags(argv):
  """Names of the flags argv sets (--name, --name=value, --noname)."""
  names = set()
  for token in argv:
    if token.startswith("--"):
      name = token[2:].split("=", 1)[0]
      names.update([name, name[2:]] if name.startswith("no") else [name])
  return names


def apply_recorded_flags(flags, explicit):
  """Takes the run's flags from flags.json in --experiment_dir: what defines
  the model and its directory (an explicit different value is an error) and
  its training settings (an explicit value overrides them)."""
  recorded = rundir.read_flags(flags.experiment_dir)
  if recorded is None:
    if flags.load > 0 or flags.sample:
      raise UsageError("--experiment_dir {} holds no {}: give the run's flags instead, or write "
                       "one (see README, Runs that remember their flags)".format(
                           flags.experiment_dir, rundir.FLAGS_NAME))
    return
  for name in MODEL_FLAGS + TRAINING_FLAGS:
    if name not in recorded or not hasattr(flags, name):
      continue
    if name in explicit and name in MODEL_FLAGS and getattr(flags, name) != recorded[name]:
      raise UsageError("--{} {} conflicts with the run in {} ({} {} in its {}): drop the flag, or "
                       "train a new run".format(name, getattr(flags, name), flags.experiment_dir,
                                                name, recorded[name], rundir.FLAGS_NAME))
    if name not in explicit:
      setattr(flags, name, recorded[name])


def experiment_dir(flags, dataset_parts, leaf_parts=()):
  """--experiment_dir, else the original's layout: train_dir/<dataset parts>/
  out_O/iterations_I/rnn_size_R/lr_L/tprnn_scale_K/tprnn_layers_M/
  dropout_keep_D/<basic|generic>/<leaf parts>."""
  if flags.experiment_dir:
    return os.path.normpath(flags.experiment_dir)
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
  return os.path.normpath(os.path.join(*(parts + list(leaf_parts))))


# ----------------------------------------------------------------------------
# Graph, session and checkpoints


def model_config(flags, input_size, source_seq_len):
  return prism.ModelConfig(
      input_size=input_size, source_seq_len=source_seq_len,
      target_seq_len=flags.seq_length_out, rnn_size=flags.rnn_size,
      max_gradient_norm=flags.max_gradient_norm, learning_rate=flags.learning_rate,
      learning_rate_decay_factor=flags.learning_rate_decay_factor,
      tprnn_scale=flags.tprnn_scale, tprnn_layers=flags.tprnn_layers,
      dropout_keep=flags.dropout_keep, fix_generic_contexts=flags.fix_generic_contexts)


Network = collections.namedtuple("Network", [
    "graph",
    "model",
    "savers",     # checkpoints.Savers of every variable
    "requests",   # placeholder [2]: this worker asks to stop, to save (1.0)
    "step",       # fetches of a training step: update, global mean loss,
                  # learning rate, whether any worker asked to stop, to save
    "broadcast",  # op giving every worker rank 0's variables, or None
])


def build_model(flags, input_size, source_seq_len, seed, backend=None):
  """A fresh graph holding the model, its savers and the training step, on
  this worker's device, its gradients averaged by the distribution backend
  (one process when None)."""
  backend = backend or distributed.Local(flags.cluster)
  graph = tf.Graph()
  with graph.as_default(), tf.device(backend.device()):
    tf.set_random_seed(seed)
    loss_scaling = devices.optimizer_wrapper(flags.placement, distributed=backend.size > 1)
    model = MODELS[flags.model](model_config(flags, input_size, source_seq_len),
                                lambda opt: loss_scaling(backend.wrap_optimizer(opt)))
    requests = tf.placeholder_with_default([0.0, 0.0], [2], name="requests")
    mean_loss, mean_requests = backend.mean([model.loss, requests])
    step = (model.train_op, mean_loss, model.learning_rate, mean_requests[STOP] > 0,
            mean_requests[SAVE] > 0)
    broadcast = backend.build_sync(tf.global_variables())
    savers = checkpoints.Savers(tf.global_variables())
  return Network(graph, model, savers, requests, step, broadcast)


def open_session(flags, graph, backend):
  """A session for `graph` on this worker, configured for its device."""
  config = backend.session_config(devices.session_config(flags.placement))
  return tf.Session(backend.target(config), graph=graph, config=config)


def print_header(flags):
  print(devices.describe(flags.placement))
  print(distributed.describe(flags.cluster))


def initialize_or_restore(sess, net, directory, load):
  """Fresh variables (load 0), or checkpoint-`load` (else rolling-`load`) of
  `directory` with its global step set to `load`: the checkpoint number is
  the number of steps taken (the authors' checkpoints store another)."""
  if load <= 0:
    print("Creating model with fresh parameters.")
    sess.run(tf.variables_initializer(net.graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)))
    return
  checkpoint = checkpoints.find(directory, load)
  print("Loading model {}".format(checkpoint))
  checkpoints.restore(sess, checkpoint)
  stored = sess.run(net.model.global_step)
  if stored != load:
    print("{} stores global step {}; counting on from {}".format(checkpoint, stored, load))
    net.model.global_step.load(load, sess)


def feed_dict(model, enc, dec_in, dec_out):
  return {model.encoder_inputs: enc, model.decoder_inputs: dec_in, model.decoder_outputs: dec_out}


def predict(sess, model, enc, dec_in, dec_out, chunk_size=EVAL_CHUNK):
  """Forward pass (no dropout) over [N, ...] feeds in chunks of `chunk_size`
  sequences, so memory stays bounded. Returns (predictions [N, out, P], mean
  squared error over all of them). Non-finite predictions are an error: no
  error measure may turn them into a small number."""
  outputs, total = [], 0.0
  starts = range(0, len(enc), chunk_size)
  if len(starts) > 1:
    starts = progress(starts, len(starts), "Predicting {} sequences".format(len(enc)), "chunk")
  for start in starts:
    chunk = slice(start, start + chunk_size)
    out, loss = sess.run([model.outputs, model.loss],
                         feed_dict(model, enc[chunk], dec_in[chunk], dec_out[chunk]))
    if not np.all(np.isfinite(out)):
      raise TrainingError("the model predicts non-finite values (NaN or inf): its weights have "
                          "diverged, so it has no error to report")
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


def check_samples_file(path):
  """--samples_file must be a file path in an existing directory."""
  folder = os.path.dirname(os.path.abspath(path))
  if os.path.isdir(path):
    raise UsageError("--samples_file {} is a directory; give a file name".format(path))
  if not os.path.isdir(folder):
    raise UsageError("--samples_file {}: directory {} does not exist".format(path, folder))


def seed_of_run(flags, directory):
  """--seed, else, when resuming (--load), the seed in the flags.json of the
  run in `directory`, else a new one; printed."""
  recorded = rundir.read_flags(directory) if flags.load > 0 else None
  return resolve_seed(flags.seed, recorded and recorded.get("seed"))


def resolve_seed(seed, recorded=None):
  """--seed, else the seed `recorded` by the run being resumed, else a new one."""
  if seed is None and recorded is not None:
    print("Seed: {} (the resumed run's)".format(recorded))
    return recorded
  if seed is None:
    seed = int.from_bytes(os.urandom(4), "little") % 2 ** 31
  print("Seed: {}".format(seed))
  return seed


def recordable(flags):
  """The flags as plain values, and the code's version, for flags.json."""
  values = {k: v for k, v in sorted(vars(flags).items())
            if isinstance(v, (str, int, float, bool, type(None), list))}
  values["code_version"] = code_version()
  return values


def code_version():
  """The git commit of this code ('+' if modified), or 'unknown'."""
  root = os.path.dirname(os.path.abspath(__file__))
  try:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            universal_newlines=True, timeout=10)
    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             universal_newlines=True, timeout=10)
  except (OSError, subprocess.SubprocessError):
    return "unknown"
  if commit.returncode != 0:
    return "unknown"
  return commit.stdout.strip() + ("+" if changed.stdout.strip() else "")


def find_checkpoint(flags, directory):
  """checkpoints.find, with a hint when the checkpoint is elsewhere under
  --train_dir: the command that would load it."""
  try:
    return checkpoints.find(directory, flags.load)
  except checkpoints.CheckpointError as e:
    elsewhere = [d for d in holders_of(flags.train_dir, flags.load) if d != directory]
    if not elsewhere:
      raise
    command = "python {} --experiment_dir {} --load {}{}".format(
        flags.prog, elsewhere[0], flags.load, " --sample" if flags.sample else "")
    if not os.path.exists(os.path.join(elsewhere[0], rundir.FLAGS_NAME)):
      command = "its flags, or --experiment_dir {} once it has a {}".format(
          elsewhere[0], rundir.FLAGS_NAME)
    raise checkpoints.CheckpointError("{}; checkpoint {} is in {} (run: {})".format(
        e, flags.load, ", ".join(elsewhere), command))


def holders_of(train_dir, step):
  """The directories under `train_dir` holding checkpoint-`step` (or rolling-)."""
  found = []
  for root, _, files in os.walk(train_dir):
    if any(f in files for f in ("{}-{}.index".format(p, step)
                                for p in (checkpoints.PREFIX, checkpoints.ROLLING_PREFIX))):
      found.append(os.path.normpath(root))
  return sorted(found)


# ----------------------------------------------------------------------------
# Training loop


Status = collections.namedtuple("Status", [
    "step",           # training steps taken
    "global_step",    # the stored global step
    "learning_rate",
    "step_time_ms",   # mean over the steps since the last evaluation
    "train_loss",     # likewise
    "rng",            # for the evaluation's own random draws
])


def batch_rng(seed, step, stream=0):
  """The random state of one step's draws: a function of (seed, step), so
  every worker draws the same global batch and a resumed run draws the
  batches the uninterrupted run would have."""
  return np.random.RandomState([seed, step, stream])


def train(flags, input_size, directory, next_batch, evaluate):
  """Trains the model of `flags` on this worker: builds it, initialises or
  restores checkpoint --load (on rank 0, then broadcast) and runs the loop.
  Rank 0 holds the experiment directory's lock throughout. Returns the exit
  status: 0, or 128 + the signal that interrupted training.

  next_batch(rng, n) returns the feeds (encoder input, decoder input, target)
  [n, ...] of n sequences drawn with rng; each worker trains on its slice of
  one global batch of workers x batch_size. evaluate(predict, status, summarize)
  prints an evaluation (rank 0 only) and returns the two lower-is-better
  criteria of the best-model rule; predict is `predict` on this session and
  summarize({tag: value}) writes TensorBoard scalars of the test set.
  """
  print_header(flags)
  backend = distributed.make(flags.cluster, flags.placement)
  if flags.load > 0 and backend.rank == 0:
    find_checkpoint(flags, directory)
  if backend.rank != 0:
    return run_training(flags, input_size, directory, next_batch, evaluate, backend, flags.seed)
  with rundir.locked(directory):
    rundir.claim_for_training(directory, flags.load > 0, flags.overwrite)
    seed = seed_of_run(flags, directory)
    rundir.write_flags(directory, dict(recordable(flags), seed=seed))
    return run_training(flags, input_size, directory, next_batch, evaluate, backend, seed)


def run_training(flags, input_size, directory, next_batch, evaluate, backend, seed):
  """`seed` is rank 0's; elsewhere --seed or None, and rank 0's arrives by broadcast."""
  # Other ranks' initial weights are replaced by rank 0's; their graph seed only draws dropout masks.
  graph_seed = seed if backend.rank == 0 or seed is None else (seed + backend.rank) % (MAX_SEED + 1)
  net = build_model(flags, input_size, flags.seq_length_in, graph_seed, backend)
  with open_session(flags, net.graph, backend) as sess:
    initialize_or_restore(sess, net, directory, flags.load if backend.rank == 0 else 0)
    if net.broadcast is not None:
      backend.run(sess, net.broadcast)
    seed = backend.share_seed(sess, seed)  # every worker draws the batches of rank 0's seed
    return train_loop(sess, net, backend, flags, directory, seed, lambda step: worker_batch(
        next_batch, batch_rng(seed, step), flags.batch_size, backend), evaluate)


def worker_batch(next_batch, rng, batch_size, backend):
  """This worker's slice of the global batch drawn with `rng`."""
  mine = slice(backend.rank * batch_size, (backend.rank + 1) * batch_size)
  return [feed[mine] for feed in next_batch(rng, batch_size * backend.size)]


def sample(flags, input_size, source_seq_len, directory, evaluate):
  """Restores checkpoint --load and returns evaluate(predict) (one process),
  holding the experiment directory's lock."""
  print_header(flags)
  find_checkpoint(flags, directory)
  backend = distributed.Local(flags.cluster)
  with rundir.locked(directory):
    net = build_model(flags, input_size, source_seq_len, 0, backend)
    with open_session(flags, net.graph, backend) as sess:
      initialize_or_restore(sess, net, directory, flags.load)
      return evaluate(predictor(sess, net.model))


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


def _quiet_summary_thread(args, previous=getattr(threading, "excepthook", None)):
  """threading.excepthook leaving out the summary writer's thread, whose I/O
  failure the main thread reports as one line (see _Rank0Outputs.summarize)."""
  if args.thread is None or args.thread.name != "EventLoggerThread":
    previous(args)


class _Rank0Outputs(object):
  """Summary writers, checkpoints, the rolling-save clock and the best-model
  rule; they exist on rank 0 only, the only worker that writes."""

  def __init__(self, sess, net, directory, save_secs, load):
    if hasattr(threading, "excepthook"):  # Python >= 3.8
      threading.excepthook = _quiet_summary_thread
    self.sess, self.net, self.directory = sess, net, directory
    self.train_writer = tf.summary.FileWriter(os.path.join(directory, rundir.LOG_DIR, "train"),
                                              sess.graph)
    self.test_writer = tf.summary.FileWriter(os.path.join(directory, rundir.LOG_DIR, "test"))
    self.best = Best()
    self.save_secs = save_secs
    self.last_save = time.time()
    self.last_saved = checkpoints.find(directory, load) if load else None
    # The rolling saver deletes the oldest ones of earlier runs too.
    net.savers.rolling.recover_last_checkpoints([
        checkpoints.path(directory, s, checkpoints.ROLLING_PREFIX)
        for s in checkpoints.steps(directory, checkpoints.ROLLING_PREFIX)])

  def save_due(self):
    return time.time() - self.last_save >= self.save_secs

  def save(self, step, rolling=False):
    self.net.savers.save(self.sess, self.directory, step, rolling)
    self.last_save, self.last_saved = time.time(), checkpoints.path(
        self.directory, step, checkpoints.ROLLING_PREFIX if rolling else checkpoints.PREFIX)

  def summarize(self, writer, values, step):
    """Adds scalars {tag: value}; a full or unwritable disk is a TrainingError."""
    try:
      writer.add_summary(scalar_summary(values), step)
    except Exception as e:  # the writer thread re-raises its I/O failure as any type
      raise TrainingError("cannot write summaries to {}: {}".format(
          writer.get_logdir(), errors.tf_error_reason(e)))

  def close(self, report):
    """Flushes and closes the writers; their failures raise when `report`."""
    for writer in (self.train_writer, self.test_writer):
      try:
        writer.close()
      except Exception as e:  # likewise
        if report:
          raise TrainingError("cannot write summaries to {}: {}".format(
              writer.get_logdir(), errors.tf_error_reason(e)))


def train_loop(sess, net, backend, flags, directory, seed, batch, evaluate):
  """The original's loop: a step per batch, a progress line every 10 steps,
  learning-rate decay every learning_rate_step, an evaluation every
  test_every steps (saved when best and at a save_every multiple), a final
  save; besides, a rolling checkpoint every save_secs. SIGINT or SIGTERM on
  any worker stops all of them at the same step and saves; a non-finite loss
  or weight stops without saving. batch(step) gives this worker's feeds.
  Returns the exit status.
  """
  model, rank0 = net.model, backend.rank == 0
  outputs = _Rank0Outputs(sess, net, directory, flags.save_secs, flags.load) if rank0 else None
  current_step = flags.load
  step_time = loss = 0.0
  iterations = flags.iterations if flags.more == 0 else flags.more
  try:
    with signals.Recorder() as signals_received:
      for _ in range(iterations):
        start = time.time()
        feed = feed_dict(model, *batch(current_step))
        feed[model.keep_prob] = flags.dropout_keep
        feed[net.requests] = [float(bool(signals_received.received)),
                              float(rank0 and outputs.save_due())]
        _, step_loss, lr, stop, save = backend.run(sess, net.step, feed)
        if not np.isfinite(step_loss):
          raise TrainingError("training loss became {} at step {}; stopped without saving".format(
              step_loss, current_step))
        elapsed = time.time() - start
        if rank0:
          outputs.summarize(outputs.train_writer,
                            {"loss/loss": step_loss, "learning_rate/learning_rate": lr}, current_step)
        if current_step % PRINT_EVERY == 0:
          print("step {:04d}; step_loss: {:.4f}  ({:.1f} ms/step)".format(
              current_step, step_loss, elapsed * 1000))
        step_time += elapsed / flags.test_every
        loss += step_loss / flags.test_every
        current_step += 1

        if current_step % flags.learning_rate_step == 0:
          sess.run(model.learning_rate_decay_op)
        evaluating = current_step % flags.test_every == 0
        if evaluating or save or stop:
          net.savers.check_finite(sess, current_step)  # on every worker: they all stop
        if evaluating:
          status = Status(current_step, None, None, step_time * 1000, loss,
                          batch_rng(seed, current_step, EVAL_STREAM))
          backend.on_rank0(sess, lambda: evaluate_and_save(sess, net, outputs, flags, status,
                                                           evaluate))
          step_time = loss = 0.0
          sys.stdout.flush()
        if save and not stop:
          backend.on_rank0(sess, lambda: outputs.save(current_step, rolling=True))
        if stop:
          break
      net.savers.check_finite(sess, current_step)
      backend.on_rank0(sess, lambda: finish(outputs, current_step))
      if rank0:
        outputs.close(report=True)
      if stop:
        print("Interrupted at step {}; resume with --load {}.".format(current_step, current_step))
        return 128 + (signals_received.received or [signal.SIGINT])[0]
      return 0
  except (TrainingError, checkpoints.CheckpointError, distributed.DistributedError) as e:
    if not rank0:  # only rank 0 knows the checkpoints
      raise
    raise type(e)("{} (last good checkpoint: {})".format(e, outputs.last_saved or "none"))
  finally:
    if rank0:
      outputs.close(report=False)  # the error in flight, if any, is the one to report


def finish(outputs, step):
  outputs.save(step)
  print("Best model's checkpoint id: {}".format(outputs.best.step))


def evaluate_and_save(sess, net, outputs, flags, status, evaluate):
  """Rank 0's evaluation; saves when the model is the best so far and the
  step is a save_every multiple."""
  status = status._replace(global_step=sess.run(net.model.global_step),
                           learning_rate=sess.run(net.model.learning_rate))
  criteria = evaluate(predictor(sess, net.model), status,
                      lambda values: outputs.summarize(outputs.test_writer, values, status.step))
  if outputs.best.update(criteria, status.step):
    print("Found a better model; checkpoint id {}".format(status.step))
    if status.step % flags.save_every == 0:
      outputs.save(status.step)
