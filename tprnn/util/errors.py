"""The base of every error this project reports to a user: its message is one
line naming the file, flag or value at fault, and run_main prints it without
a traceback."""

import argparse
import errno
import os
import signal
import sys

from tprnn.util import signals


class Error(Exception):
  """A failure the user can act on; str(error) is one line."""


def run_main(main, argv=None):
  """Runs main(argv) (default: the command line); an Error becomes one line
  on stderr and exit status 1, without a traceback; Ctrl-C or SIGTERM where
  nothing catches them (the training loop saves and stops by itself) one line
  and 130 or 143. Returns the status."""
  previous = signals.raise_on_sigterm()
  try:
    return main(sys.argv[1:] if argv is None else argv) or 0
  except Error as e:
    print("error: {}".format(e), file=sys.stderr)
    return 1
  except KeyboardInterrupt as e:
    print("\ninterrupted: stopped before the end; files are written whole or not at all, so "
          "nothing half-written is left", file=sys.stderr)
    return signals.exit_status(e)
  finally:
    signal.signal(signal.SIGTERM, previous)


# Operating-system failures a TensorFlow message may carry: (its text, errno name)
OS_FAILURES = [(os.strerror(getattr(errno, name)), name)
               for name in ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EFBIG", "EIO")]


def tf_error_reason(error):
  """The cause in a TensorFlow OpError's message: an operating-system failure it
  names ('No space left on device (ENOSPC)'), else the last line that is not
  node trace or advice ('...; File too large'), else its first line."""
  text = str(getattr(error, "message", error))
  for reason, name in OS_FAILURES:
    if reason in text:
      return "{} ({})".format(reason, name)
  lines = [line.strip() for line in text.splitlines()]
  for line in reversed(lines):
    if line and not line.startswith(("[[", "Node:", "File ", "Detected at node", "Hint:",
                                     "Graph execution error", "Failed to flush")):
      return line.split(" [[")[0].rstrip().split("; ")[-1]  # drop the file name before '; '
  return lines[0] if lines else type(error).__name__


class UsageError(Error):
  """A bad flag, file or state."""


class ArgumentParser(argparse.ArgumentParser):
  """argparse whose errors are a UsageError: one line and exit status 1."""

  def error(self, message):
    raise UsageError(message)


class TrainingError(Error):
  """Training cannot go on (e.g. a non-finite loss)."""
