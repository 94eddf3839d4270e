"""Shared test helpers: paths to ../shared, running the scripts in-process."""

import contextlib
import io
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
H36M_DIR = os.path.join(SHARED, "data", "h3.6m", "dataset")
PENN_DIR = os.path.join(SHARED, "data", "Penn_Action", "labels")
REFERENCE = os.path.join(SHARED, "reference")
HUMAN_INDEX = os.path.join(REFERENCE, "published_checkpoints", "human", "checkpoint-92000")
PENN_CHECKPOINT = os.path.join(REFERENCE, "published_checkpoints", "penn", "checkpoint-63000")

sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def need(path):
  """Skips the test when a ../shared file is absent (a user's clone)."""
  if not os.path.exists(path):
    pytest.skip("{} not found: the ../shared reference data is only in CI".format(path))
  return path


def run_script(module, argv):
  """Runs a training script's main in-process through run_main.
  Returns (exit code, stdout, stderr)."""
  import experiment
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = experiment.run_main(module.main, argv)
  return code or 0, out.getvalue(), err.getvalue()
