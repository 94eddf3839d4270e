"""Imports TensorFlow without its start-up banner. The oneDNN and CPU-feature
notices are logged before TF_CPP_MIN_LOG_LEVEL takes effect, so they are
captured while TensorFlow loads and shown only if loading fails. Python
deprecation warnings and TensorFlow's error logs are left out too (its
failures reach the user as this project's one-line errors, e.g. a full disk
while saving). A user who sets TF_CPP_MIN_LOG_LEVEL
keeps control: then TensorFlow logs as that says. The scripts import this
module before anything imports TensorFlow."""

import importlib
import os
import sys
import tempfile

from tprnn.util import signals


def import_quietly():
  """tensorflow.compat.v1, imported without the banner unless the user set
  TF_CPP_MIN_LOG_LEVEL."""
  if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
    return importlib.import_module("tensorflow.compat.v1")
  os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # its errors reach the user as this project's one line
  sys.stderr.flush()
  saved = os.dup(2)
  replay = True  # what TensorFlow logged, if it fails to load
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      tf = importlib.import_module("tensorflow.compat.v1")
      replay = False
    except KeyboardInterrupt:
      replay = False  # the user stopped it: no banner, run_interruptible says so
      raise
    finally:
      os.dup2(saved, 2)
      os.close(saved)
      if replay:
        captured.seek(0)
        sys.stderr.write(captured.read().decode("utf-8", "replace"))
  tf.get_logger().setLevel("CRITICAL")
  return tf


def run_interruptible(load):
  """load(); Ctrl-C or SIGTERM meanwhile ends the program with one line."""
  signals.raise_on_sigterm()
  try:
    load()
  except KeyboardInterrupt as e:
    print("\ninterrupted while TensorFlow loaded; nothing was written", file=sys.stderr)
    raise SystemExit(signals.exit_status(e))


run_interruptible(import_quietly)
