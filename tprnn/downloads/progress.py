"""Progress of a download shared by its threads: files, megabytes and rate, on one
rewritten line on a terminal, a plain line every PLAIN_EVERY_SECS in a log file."""

import sys
import threading
import time

PLAIN_EVERY_SECS = 10.0
TTY_EVERY_SECS = 0.2
MB = 1e6


class Progress(object):
  """Counts files done and bytes received; `line()` says where a download stands."""

  def __init__(self, title, files):
    self.title, self.files = title, files
    self.done = self.bytes = 0
    self.start = self.last = time.time()
    self.tty = sys.stdout.isatty()
    self.lock = threading.Lock()

  def received(self, count):
    with self.lock:
      self.bytes += count
      self._show()

  def file_done(self):
    with self.lock:
      self.done += 1
      self._show()

  def line(self):
    elapsed = max(time.time() - self.start, 1e-9)
    rate = self.bytes / MB / elapsed
    left = (self.files - self.done) * elapsed / self.done if self.done else None
    return "{}: {}/{} files, {:.1f} MB, {:.1f} MB/s{}".format(
        self.title, self.done, self.files, self.bytes / MB, rate,
        "" if left is None else ", {:.0f} s left".format(left))

  def _show(self):
    now = time.time()
    if now - self.last < (TTY_EVERY_SECS if self.tty else PLAIN_EVERY_SECS):
      return
    self.last = now
    if self.tty:
      sys.stdout.write("\r\033[K" + self.line())
    else:
      sys.stdout.write(self.line() + "\n")
    sys.stdout.flush()

  def close(self):
    """Clears the terminal line, so the summary starts a clean one."""
    if self.tty:
      sys.stdout.write("\r\033[K")
      sys.stdout.flush()
