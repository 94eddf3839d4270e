"""The experiment directory a run writes into: one run at a time (an exclusive
lock the operating system drops when its holder dies, so a stale lock never
blocks), checked writable before training starts, never reused by a fresh
run unless asked (--overwrite), and the flags of the run that wrote it."""

import contextlib
import fcntl
import json
import os
import shutil
import socket
import sys
import tempfile
import time

from tprnn.util import atomic_file
from tprnn.training import checkpoints
from tprnn.util import errors

LOCK_NAME = ".lock"
FLAGS_NAME = "flags.json"
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


def claim_for_training(directory, resume, overwrite):
  """A fresh run (no --load) refuses a directory holding checkpoints unless
  `overwrite`, which deletes them and the summaries first."""
  check_writable(directory)
  held = checkpoints.steps(directory) + checkpoints.steps(directory, checkpoints.ROLLING_PREFIX)
  if resume or not held:
    return
  if not overwrite:
    raise DirectoryError("{} already holds checkpoints ({}): resume with --load {}, or pass "
                         "--overwrite to delete them and start afresh".format(
                             directory, checkpoints.present(directory), max(held)))
  print("--overwrite: deleting the checkpoints and summaries in {}".format(directory))
  for name in os.listdir(directory):
    if name.startswith((checkpoints.PREFIX, checkpoints.ROLLING_PREFIX)) or name == FLAGS_NAME:
      os.remove(os.path.join(directory, name))
  shutil.rmtree(os.path.join(directory, LOG_DIR), ignore_errors=True)


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
      return json.load(f)
  except (OSError, ValueError) as e:
    raise DirectoryError("cannot read {}: {}".format(path, e))
