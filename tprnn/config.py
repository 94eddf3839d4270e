"""A run's flags: the original's (same names and defaults) and this port's
own, the dataset's, the flags.json of an --experiment_dir as defaults, and
their validation. Parsing has no side effects: devices and workers are
resolved by tprnn.training.run. The result is a read-only Config."""

import argparse
import os

from tprnn.parallel import cluster
from tprnn.util import devices
from tprnn.util.errors import ArgumentParser, UsageError
import tprnn_basic_model
import tprnn_generic_model

MODELS = {"basic": tprnn_basic_model.TPRNNBasicModel,
          "generic": tprnn_generic_model.TPRNNGenericModel}
ZERO_VELOCITY = "zero_velocity"
MAX_SEED = 2 ** 32 - 1  # numpy's RandomState takes seeds below 2^32
FLAGS_NAME = "flags.json"
# Flags that set the model's shape or its experiment directory: with
# --experiment_dir they come from flags.json, and an explicit other value is an error.
MODEL_FLAGS = ("model", "rnn_size", "tprnn_scale", "tprnn_layers", "dropout_keep",
               "fix_generic_contexts", "seq_length_in", "seq_length_out", "omit_one_hot",
               "learning_rate", "iterations", "init_velocity", "dataset", "select_on")
# Settings that also come from flags.json, but an explicit value overrides.
TRAINING_FLAGS = ("action", "learning_rate_decay_factor", "learning_rate_step",
                  "max_gradient_norm", "batch_size", "data_dir", "test_every", "save_every",
                  "save_secs", "eval_subset", "eval_protocol")
AT_LEAST_ONE = ("batch_size", "rnn_size", "tprnn_scale", "tprnn_layers", "test_every",
                "save_every", "learning_rate_step", "seq_length_out", "iterations")
AT_LEAST_ZERO = ("more", "load")
POSITIVE = ("max_gradient_norm", "save_secs", "learning_rate")


class Config(argparse.Namespace):
  """The validated flags of a run, read-only; replace() gives a changed copy."""

  def __init__(self, **values):
    for name, value in values.items():
      object.__setattr__(self, name, value)

  def __setattr__(self, name, value):
    raise AttributeError("a Config is read-only: use replace({}=...)".format(name))

  def replace(self, **changes):
    return Config(**dict(vars(self), **changes))


def _bool(text):
  value = str(text).strip().lower()
  if value in ("1", "true", "t", "yes", "y"):
    return True
  if value in ("0", "false", "f", "no", "n"):
    return False
  raise argparse.ArgumentTypeError("expected true or false, got '{}'".format(text))


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


def parser(dataset, script):
  """The flags of the training script `script` for the dataset module `dataset`."""
  p = ArgumentParser(prog=os.path.basename(script), description=dataset.DESCRIPTION,
                     formatter_class=_HelpFormatter, allow_abbrev=False)
  _learning_flags(p.add_argument_group("learning"))
  _architecture_flags(p.add_argument_group("architecture"), dataset)
  _directory_flags(p.add_argument_group("data and directories"), dataset)
  _running_flags(p.add_argument_group("running"))
  _device_flags(p.add_argument_group("device and precision"))
  cluster.add_flags(p)
  dataset.add_flags(p)
  return p


def _learning_flags(g):
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


def _architecture_flags(g, dataset):
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
  g.add_argument("--seq_length_in", type=int, default=dataset.DEFAULTS["seq_length_in"],
                 help="Frames fed to the encoder (it gets seq_length_in - 1 of them)." +
                 dataset.DEFAULTS.get("seq_length_in_note", ""))
  g.add_argument("--seq_length_out", type=int, default=dataset.DEFAULTS["seq_length_out"],
                 help="Frames the decoder predicts.")
  add_bool(g, "omit_one_hot", True, "Remove the one-hot action encoding (must be true).")


def _directory_flags(g, dataset):
  g.add_argument("--data_dir", default=os.path.normpath(dataset.DEFAULTS["data_dir"]),
                 help="Data directory.")
  g.add_argument("--train_dir", default=os.path.normpath("./experiments/"),
                 help="Root of the experiment directories.")
  g.add_argument("--experiment_dir", default=None,
                 help="Use this experiment directory instead of the one the flags compute; the "
                      "flags of its run (its flags.json) become the defaults, so --sample, "
                      "--load N and resuming need no other flag.")
  g.add_argument("--dataset", default=dataset.NAME,
                 help="{} (fixed by the script).".format(dataset.NAME))


def _running_flags(g):
  g.add_argument("--test_every", type=int, default=1000, help="Evaluate every this many steps.")
  g.add_argument("--save_every", type=int, default=1000,
                 help="Save (when best so far) only at steps that are multiples of this.")
  g.add_argument("--save_secs", type=float, default=600,
                 help="Also save a rolling resumable checkpoint (rolling-N, the last two kept) "
                      "at least this often, so a crash loses at most this much training.")
  add_bool(g, "overwrite", False,
           "Let a fresh run (no --load) delete the checkpoints and summaries of an experiment "
           "directory that already has some.")
  add_bool(g, "sample", False, "Evaluate checkpoint --load and write --samples_file.")
  g.add_argument("--samples_file", default="samples.h5", help="Where --sample writes.")
  g.add_argument("--load", type=int, default=0,
                 help="Restore checkpoint-N of the experiment directory (resume or sample).")


def _device_flags(g):
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


def parse(dataset, script, argv, read_recorded):
  """The Config of argv for `dataset`; with --experiment_dir, the flags its
  run recorded (read_recorded(directory) -> dict or None) are the defaults."""
  p = parser(dataset, script)
  flags = p.parse_args(argv)
  flags.prog = p.prog
  if flags.experiment_dir:
    recorded = read_recorded(flags.experiment_dir)
    check_dataset_of_run(flags.experiment_dir, recorded, dataset.NAME)
    if recorded is not None:  # a model flag newer than the run had its default there
      recorded = dict({n: p.get_default(n) for n in MODEL_FLAGS if hasattr(flags, n)}, **recorded)
    apply_recorded_flags(flags, explicit_flags(argv), recorded)
  config = Config(**dict(vars(flags), **dataset.derived_flags(flags)))
  dataset.check_flags(config)
  check_flags(config, dataset.NAME)
  return config


def plain_values(flags):
  """{name: value} of the flags whose values JSON holds (flags.json, samples.h5)."""
  return {k: v for k, v in sorted(vars(flags).items())
          if isinstance(v, (str, int, float, bool, type(None), list))}


def script_of(dataset_name):
  """The training script of a dataset (--dataset value)."""
  return "tprnn_train_{}.py".format(dataset_name)


def check_dataset_of_run(directory, recorded, name):
  """A run's directory belongs to the script of its dataset."""
  held = (recorded or {}).get("dataset", name)
  if held != name:
    raise UsageError("--experiment_dir {} holds a '{}' run, not a '{}' one: use {} for it".format(
        directory, held, name, script_of(held)))


def explicit_flags(argv):
  """Names of the flags argv sets (--name, --name=value, --noname)."""
  names = set()
  for token in argv:
    if token.startswith("--"):
      name = token[2:].split("=", 1)[0]
      names.update([name, name[2:]] if name.startswith("no") else [name])
  return names


def apply_recorded_flags(flags, explicit, recorded):
  """Takes the flags `recorded` by the run in --experiment_dir: what defines
  the model and its directory (an explicit different value is an error) and
  its training settings (an explicit value overrides them)."""
  if recorded is None:
    if flags.load > 0 or flags.sample:
      raise UsageError("--experiment_dir {} holds no {}: give the run's flags instead, or write "
                       "one (see docs/TRAINING.md, runs that remember their flags)".format(
                           flags.experiment_dir, FLAGS_NAME))
    return
  for name in MODEL_FLAGS + TRAINING_FLAGS:
    if name not in recorded or not hasattr(flags, name):
      continue
    if name in explicit and name in MODEL_FLAGS and getattr(flags, name) != recorded[name]:
      raise UsageError("--{} {} conflicts with the run in {} ({} {} in its {}): drop the flag, or "
                       "train a new run".format(name, getattr(flags, name), flags.experiment_dir,
                                                name, recorded[name], FLAGS_NAME))
    if name not in explicit:
      setattr(flags, name, recorded[name])


def check_flags(flags, dataset_name):
  """Validates what every dataset shares; raises UsageError naming the flag."""
  if flags.dataset != dataset_name:
    raise UsageError("--dataset {} does not match this script, which trains on {}".format(
        flags.dataset, dataset_name))
  _check_model(flags)
  _check_ranges(flags)
  if flags.sample and flags.load <= 0 and flags.model != ZERO_VELOCITY:
    raise UsageError("--sample needs --load N, the checkpoint to evaluate")
  if flags.sample:
    check_samples_file(flags.samples_file)


def _check_model(flags):
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


def _check_ranges(flags):
  for names, ok, what in ((AT_LEAST_ONE, lambda v: v >= 1, "at least 1"),
                          (AT_LEAST_ZERO, lambda v: v >= 0, "0 or more"),
                          (POSITIVE, lambda v: v > 0, "positive")):
    for name in names:
      if not ok(getattr(flags, name)):
        raise UsageError("--{} must be {}, got {}".format(name, what, getattr(flags, name)))
  if flags.workers < 1:
    raise UsageError("--workers must be at least 1, got {}".format(flags.workers))
  if flags.seed is not None and not 0 <= flags.seed <= MAX_SEED:
    raise UsageError("--seed must be in 0..{}, got {}".format(MAX_SEED, flags.seed))
  if flags.seq_length_in < 2:
    raise UsageError("--seq_length_in must be at least 2 (the encoder gets "
                     "seq_length_in - 1 frames), got {}".format(flags.seq_length_in))
  if not 0.0 < flags.dropout_keep <= 1.0:
    raise UsageError("--dropout_keep must be in (0, 1], got {}".format(flags.dropout_keep))


def check_samples_file(path):
  """--samples_file must be a file path in an existing directory."""
  folder = os.path.dirname(os.path.abspath(path))
  if os.path.isdir(path):
    raise UsageError("--samples_file {} is a directory; give a file name".format(path))
  if not os.path.isdir(folder):
    raise UsageError("--samples_file {}: directory {} does not exist".format(path, folder))
