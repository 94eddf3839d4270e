"""The version of this code a run or an output file records."""

import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def code_version():
  """The git commit of this code ('+' if modified), or 'unknown'."""
  try:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            universal_newlines=True, timeout=10)
    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             universal_newlines=True, timeout=10)
  except (OSError, subprocess.SubprocessError):
    return "unknown"
  if commit.returncode != 0:
    return "unknown"
  return commit.stdout.strip() + ("+" if changed.stdout.strip() else "")
