"""Progress with a rate and time left for long phases: a tqdm bar on a
terminal, plain lines (every PLAIN_EVERY_SECS, and at the end of a phase
that took PLAIN_MIN_SECS or more) when the output is a file, so logs hold no
control characters."""

import sys
import time

from tqdm import tqdm

PLAIN_EVERY_SECS = 10.0
PLAIN_MIN_SECS = 2.0  # a phase done sooner prints no line


def progress(iterable, total, desc, unit="it", scale=1):
  """Yields from `iterable` (`total` items, each worth `scale` units) while
  showing progress on stdout."""
  if sys.stdout.isatty():
    with tqdm(total=total * scale, desc=desc, unit=unit, unit_scale=scale > 1, leave=False,
              file=sys.stdout) as bar:
      for item in iterable:
        yield item
        bar.update(scale)
    return
  start = last = time.time()
  for done, item in enumerate(iterable, 1):
    yield item
    now = time.time()
    if now - last >= PLAIN_EVERY_SECS or (done == total and now - start >= PLAIN_MIN_SECS):
      last = now
      rate = done * scale / max(now - start, 1e-9)
      print("{}: {}/{} {}s ({:.0f}%), {:.1f} {}s/s, {:.0f} s left".format(
          desc, done * scale, total * scale, unit, 100.0 * done / total, rate, unit,
          (total - done) * scale / rate), flush=True)
