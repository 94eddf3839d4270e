"""Files written whole or not at all."""

import contextlib
import os


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
