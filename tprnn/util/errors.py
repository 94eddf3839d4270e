"""The base of every error this project reports to a user: its message is one
line naming the file, flag or value at fault, and run_main prints it without
a traceback."""

import sys


class Error(Exception):
  """A failure the user can act on; str(error) is one line."""


def run_main(main, argv=None):
  """Runs main(argv) (default: the command line); an Error becomes one line
  on stderr and exit status 1, without a traceback. Returns the status."""
  try:
    return main(sys.argv[1:] if argv is None else argv) or 0
  except Error as e:
    print("error: {}".format(e), file=sys.stderr)
    return 1


def tf_error_reason(error):
  """The cause in a TensorFlow OpError's message ('...; File too large'),
  without the node trace; else its first line."""
  lines = [l.strip() for l in str(getattr(error, "message", error)).splitlines()]
  for line in reversed(lines):
    if line and not line.startswith(("[[", "Node:", "File ", "Detected at node",
                                     "Graph execution error", "Failed to flush")):
      return line.split(" [[")[0].rstrip().split("; ")[-1]  # drop the file name before '; '
  return lines[0] if lines else type(error).__name__


class UsageError(Error):
  """A bad flag, file or state."""


class TrainingError(Error):
  """Training cannot go on (e.g. a non-finite loss)."""
