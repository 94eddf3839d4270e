"""Files written whole or not at all."""

import contextlib
import os
import re

LEFTOVER = re.compile(r"\.tmp\d+(\.\w+)?$")  # the temporary name of a writer that was killed


@contextlib.contextmanager
def atomic_output(path):
  """Yields a temporary path beside `path` (same extension, which writers such
  as matplotlib read the format from); renames it to `path` on success and
  removes it on failure, so no half-written file is left behind."""
  root, extension = os.path.splitext(path)
  tmp = "{}.tmp{}{}".format(root, os.getpid(), extension)
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def leftovers(directory):
  """Names of the temporary files in `directory` that killed writers left."""
  return sorted(n for n in os.listdir(directory) if LEFTOVER.search(n)) if os.path.isdir(
      directory) else []
