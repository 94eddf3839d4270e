"""Imports TensorFlow without its start-up banner. The oneDNN and CPU-feature
notices are logged before TF_CPP_MIN_LOG_LEVEL takes effect, so they are
captured while TensorFlow loads and shown only if loading fails. Python
deprecation warnings are left out too. A user who sets TF_CPP_MIN_LOG_LEVEL
keeps control: then TensorFlow logs as that says. The scripts import this
module before anything imports TensorFlow."""

import importlib
import os
import sys
import tempfile


def import_quietly():
  """tensorflow.compat.v1, imported without the banner unless the user set
  TF_CPP_MIN_LOG_LEVEL."""
  if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
    return importlib.import_module("tensorflow.compat.v1")
  os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
  sys.stderr.flush()
  saved = os.dup(2)
  loaded = False
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      tf = importlib.import_module("tensorflow.compat.v1")
      loaded = True
    finally:
      os.dup2(saved, 2)
      os.close(saved)
      if not loaded:
        captured.seek(0)
        sys.stderr.write(captured.read().decode("utf-8", "replace"))
  tf.get_logger().setLevel("ERROR")
  return tf


import_quietly()
