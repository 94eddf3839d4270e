"""The experiment directory a run writes into: its name, one run at a time
(an exclusive lock the operating system drops when its holder dies, so a
stale lock never blocks), checked writable before training starts, never
reused by a fresh run unless asked (--overwrite), the flags of the run that
wrote it and its normalisation statistics, and the checkpoint --load names."""

import contextlib
import fcntl
import json
import os
import shlex
import shutil
import socket
import sys
import tempfile
import time
import zipfile

import numpy as np

from tprnn.util import atomic_file
from tprnn import config
from tprnn.training import checkpoints
from tprnn.training import metrics
from tprnn.util import errors
from tprnn.util.version import code_version

LOCK_NAME = ".lock"
FLAGS_NAME = config.FLAGS_NAME
NORMALISATION_NAME = "normalisation.npz"
LOG_DIR = "log"


class DirectoryError(errors.Error):
  """The experiment directory cannot be used; one line for the user."""


@contextlib.contextmanager
def locked(directory):
  """Holds the exclusive lock of `directory` (created if needed) while the
  block runs; a second run is refused with a message naming the holder."""
  make(directory)
  path = os.path.join(directory, LOCK_NAME)
  try:
    handle = open(path, "a+")
  except OSError as e:
    raise DirectoryError("cannot write in the experiment directory {}: {}".format(
        directory, e.strerror))
  with handle:
    try:
      fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      handle.seek(0)
      raise DirectoryError("{} is in use by another run ({}); wait for it to end or stop "
                           "it".format(directory, handle.read().strip() or "holder unknown"))
    handle.seek(0)
    handle.truncate()
    handle.write("pid {} on {} since {}: {}".format(
        os.getpid(), socket.gethostname(), time.strftime("%Y-%m-%d %H:%M:%S"),
        " ".join(sys.argv)))
    handle.flush()
    try:
      yield
    finally:
      handle.truncate(0)


def make(directory):
  """Creates `directory` and its parents; a path that is a file, or one that
  cannot be created, is a DirectoryError."""
  try:
    os.makedirs(directory, exist_ok=True)
  except OSError as e:
    raise DirectoryError("cannot create the experiment directory {}: {}".format(
        directory, e.strerror or e))


def check_writable(directory):
  """Writes and removes a small file, so a read-only or full directory fails
  now rather than at the first save."""
  try:
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".write_test") as f:
      f.write(b"0" * 4096)
      f.flush()
      os.fsync(f.fileno())
  except OSError as e:
    raise DirectoryError("cannot write in the experiment directory {}: {}".format(
        directory, e.strerror or e))


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
      "lr_{}".format(flags.learning_rate),
      "tprnn_scale_{}".format(flags.tprnn_scale),
      "tprnn_layers_{}".format(flags.tprnn_layers),
      "dropout_keep_{}".format(flags.dropout_keep),
      "basic" if flags.model == "basic" else "generic"]  # as the original names them
  return os.path.normpath(os.path.join(*(parts + list(leaf_parts))))


def last_step(values):
  """The step a run with the flag values `values` (a dict, as in flags.json)
  ends at: --load N trains --iterations steps more, or --more steps."""
  more = values.get("more") or 0
  return (values.get("load") or 0) + (more or values["iterations"])


def resume_command(prog, directory, step, end):
  """The command that goes on from checkpoint `step` of `directory` and ends at
  step `end`, where the uninterrupted run would (flags.json gives the rest)."""
  return "python {} --experiment_dir {} --load {} --more {}".format(
      prog, shlex.quote(directory), step, end - step)


def continue_hint(flags, directory, step):
  """What to do with a run whose latest checkpoint is `step`: resume it to its
  last step, or, when it got there, evaluate it."""
  recorded = read_flags(directory)
  end = last_step(recorded if recorded is not None else vars(flags))
  if step < end:
    return "resume with: " + resume_command(flags.prog, directory, step, end)
  return ("the run is complete; evaluate it with: python {} --experiment_dir {} --load {} "
          "--sample".format(flags.prog, shlex.quote(directory), step))


def claim_for_training(flags, directory):
  """A fresh run (no --load) refuses a directory holding checkpoints unless
  --overwrite, which deletes them and the summaries first."""
  check_writable(directory)
  remove_leftovers(directory)
  held = checkpoints.steps(directory) + checkpoints.steps(directory, checkpoints.ROLLING_PREFIX)
  if flags.load > 0 or not held:
    return
  if not flags.overwrite:
    raise DirectoryError("{} already holds checkpoints ({}): {}; or pass --overwrite to delete "
                         "them and start afresh".format(
                             directory, checkpoints.present(directory),
                             continue_hint(flags, directory, max(held))))
  print("--overwrite: deleting the checkpoints and summaries in {}".format(directory))
  for name in os.listdir(directory):
    if (name.startswith((checkpoints.PREFIX, checkpoints.ROLLING_PREFIX))
        or name in (FLAGS_NAME, NORMALISATION_NAME, metrics.NAME)):
      os.remove(os.path.join(directory, name))
  shutil.rmtree(os.path.join(directory, LOG_DIR), ignore_errors=True)


def remove_leftovers(directory):
  """Removes what killed saves and writers left (their temporary files), saying so."""
  names = checkpoints.remove_partial_saves(directory)
  for name in atomic_file.leftovers(directory):
    os.remove(os.path.join(directory, name))
    names.append(name)
  if names:
    print("Removed the temporary files of an interrupted save: {}".format(", ".join(names)))


def write_flags(directory, values):
  """flags.json: the run's flags (a dict), written atomically."""
  path = os.path.join(directory, FLAGS_NAME)
  try:
    with atomic_file.atomic_output(path) as tmp:
      with open(tmp, "w") as f:
        json.dump(values, f, indent=1, sort_keys=True)
  except OSError as e:
    raise DirectoryError("cannot write {}: {}".format(path, e.strerror or e))


def read_flags(directory):
  """The dict of flags.json, or None where there is none."""
  path = os.path.join(directory, FLAGS_NAME)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      values = json.load(f)
  except OSError as e:
    raise DirectoryError("cannot read {}: {}".format(path, e.strerror or e))
  except ValueError as e:
    raise DirectoryError("{} is damaged: not JSON ({})".format(path, e))
  if not isinstance(values, dict):
    raise DirectoryError("{} is damaged: not a JSON object of flags".format(path))
  return values


def recordable(flags, seed):
  """The flags as plain values, the seed and the code's version, for flags.json."""
  return dict(config.plain_values(flags), seed=seed, code_version=code_version())


def check_normalisation(directory, stats):
  """A resumed run must normalise as it did before (its stored `stats`, if
  any), or its earlier checkpoints would be sampled with statistics they never
  saw."""
  stored = read_normalisation(directory)
  if stored is not None and not all(
      name in stored and stored[name].shape == value.shape and np.allclose(stored[name], value)
      for name, value in stats.items()):
    raise DirectoryError("{}: the run was normalised with other statistics than --action and "
                         "--data_dir give now; resume with the run's".format(
                             os.path.join(directory, NORMALISATION_NAME)))


def write_normalisation(directory, stats):
  """normalisation.npz: the arrays {name: array} a dataset normalises with."""
  path = os.path.join(directory, NORMALISATION_NAME)
  try:
    with atomic_file.atomic_output(path) as tmp:
      with open(tmp, "wb") as f:
        np.savez(f, **stats)
  except OSError as e:
    raise DirectoryError("cannot write {}: {}".format(path, e.strerror or e))


def read_normalisation(directory):
  """{name: array} of normalisation.npz, or None where there is none (runs
  older than it, the authors' checkpoints)."""
  path = os.path.join(directory, NORMALISATION_NAME)
  if not os.path.exists(path):
    return None
  try:
    with np.load(path) as f:
      return {name: f[name] for name in f.files}
  except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
    raise DirectoryError("{} is damaged ({}): delete it, and the statistics are recomputed from "
                         "--data_dir".format(path, e))


def find_checkpoint(flags, directory):
  """The path of checkpoint --load of `directory`; when it is elsewhere under
  --train_dir, the error names the command that would load it."""
  try:
    return checkpoints.find(directory, flags.load)
  except checkpoints.CheckpointError as e:
    elsewhere = [d for d in holders_of(flags.train_dir, flags.load)
                 if d != directory and dataset_of(d, flags.train_dir) == flags.dataset]
    if not elsewhere:
      raise
    command = "python {} --experiment_dir {} --load {}{}".format(
        flags.prog, elsewhere[0], flags.load, " --sample" if flags.sample else "")
    if not os.path.exists(os.path.join(elsewhere[0], FLAGS_NAME)):
      command = "its flags, or --experiment_dir {} once it has a {}".format(
          elsewhere[0], FLAGS_NAME)
    raise checkpoints.CheckpointError("{}; checkpoint {} is in {} (run: {})".format(
        e, flags.load, ", ".join(elsewhere), command))


def dataset_of(directory, train_dir):
  """The dataset of a run's directory: its flags.json says, else its first part
  under --train_dir (as experiment_dir names it)."""
  try:
    recorded = read_flags(directory) or {}
  except DirectoryError:
    recorded = {}
  return recorded.get("dataset") or os.path.relpath(directory, train_dir).split(os.sep)[0]


def holders_of(train_dir, step):
  """The directories under `train_dir` holding checkpoint-`step` (or rolling-)."""
  found = []
  for root, _, files in os.walk(train_dir):
    if any(f in files for f in ("{}-{}.index".format(p, step)
                                for p in (checkpoints.PREFIX, checkpoints.ROLLING_PREFIX))):
      found.append(os.path.normpath(root))
  return sorted(found)
