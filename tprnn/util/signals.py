"""SIGINT and SIGTERM as requests a program acts on when it is ready (between
training steps, or while supervising workers), instead of dying mid-write."""

import signal

HANDLED = (signal.SIGINT, signal.SIGTERM)


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
