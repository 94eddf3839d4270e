"""SIGINT and SIGTERM as requests a program acts on when it is ready (between
training steps, or while supervising workers), instead of dying mid-write."""

import signal

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
  """SIGTERM, raised as Ctrl-C's KeyboardInterrupt is, so both stop a program the same way."""


def _raise_terminated(signum, frame):
  raise Terminated()


def raise_on_sigterm():
  """From now on SIGTERM raises Terminated in the main thread (Python leaves SIGTERM
  fatal, so nothing would be cleaned up). Returns the previous handler."""
  return signal.signal(signal.SIGTERM, _raise_terminated)


def exit_status(interrupt):
  """128 + the signal number of a KeyboardInterrupt (Terminated or Ctrl-C)."""
  return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)


class Recorder(object):
  """While installed (a with block), records the signals received, in order,
  in `received`; a second signal is recorded too and changes nothing."""

  def __enter__(self):
    self.received = []
    self._previous = {s: signal.signal(s, self._handle) for s in HANDLED}
    return self

  def _handle(self, signum, frame):
    self.received.append(signum)

  def __exit__(self, *exc):
    for s, handler in self._previous.items():
      signal.signal(s, handler)
