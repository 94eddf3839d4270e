"""Fetching a manifest's files from a base URL (`<base>/<path>`), a few at a time: each
is written beside its place as `<name>.part`, checked against the manifest, and only
then renamed into place; a file that fails is fetched again up to TRIES times."""

import http.client
import os
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from tprnn.downloads import manifest
from tprnn.downloads.progress import Progress
from tprnn.util import errors

JOBS = 4
TRIES = 3
RETRY_SECS = 1.0
TIMEOUT_SECS = 30
PART = ".part"


class DownloadError(errors.Error):
  """A base address that cannot be reached, or a file that cannot be written."""


class Stopped(Exception):
  """Raised in a worker when the download is being interrupted."""


def url_of(base, path):
  return base.rstrip("/") + "/" + urllib.parse.quote(path)


def fetch(entries, base, dest, title):
  """Fetches the `entries` not yet verified under `dest` from `base`.

  Returns (problems, fetched): problems maps an entry's path to why it is not
  there (missing at the mirror, or still wrong after TRIES tries).
  """
  todo = [e for e in entries if manifest.mismatch(os.path.join(dest, e.path), e)]
  progress = Progress(title, len(todo))
  problems = {e.path: "not fetched" for e in todo}  # until its fetch says otherwise
  if todo:
    _record(problems, todo[0], _fetch_one(todo[0], base, dest, progress, threading.Event(),
                                          reachable=True))
    _fetch_in_threads(todo[1:], base, dest, progress, problems)
  progress.close()
  return problems, len(todo) - len(problems)


def _record(problems, entry, why):
  if why is None:
    problems.pop(entry.path)
  else:
    problems[entry.path] = why


def _fetch_in_threads(entries, base, dest, progress, problems):
  """Fetches `entries` with JOBS threads, recording in `problems`; Ctrl-C stops
  them, each removing its part file."""
  work, stop = queue.Queue(), threading.Event()
  for entry in entries:
    work.put(entry)

  def worker(finished):
    try:
      while not stop.is_set():
        entry = work.get_nowait()
        _record(problems, entry, _fetch_one(entry, base, dest, progress, stop))
    except (queue.Empty, Stopped):
      pass
    finally:
      finished.set()

  # Events, not Thread.join: a join that Ctrl-C interrupts may report a live thread as done.
  finished = [threading.Event() for _ in range(min(JOBS, len(entries)))]
  for event in finished:
    threading.Thread(target=worker, args=(event,), daemon=True).start()
  try:
    for event in finished:
      while not event.wait(0.2):  # a timed wait lets Ctrl-C reach this thread
        pass
  except BaseException:
    stop.set()
    for event in finished:
      event.wait()
    raise


def _fetch_one(entry, base, dest, progress, stop, reachable=False):
  """None once `entry` is verified in place, else why not. With `reachable`, an
  address that cannot be reached at all is a DownloadError (nothing else will work)."""
  target = os.path.join(dest, entry.path)
  url = url_of(base, entry.path)
  why = None
  for attempt in range(TRIES):
    if attempt:
      time.sleep(RETRY_SECS * attempt)
    try:
      _download(url, target + PART, progress, stop)
    except urllib.error.HTTPError as e:
      why = "HTTP {}".format(e.code)
      if e.code == 404:
        break  # the mirror does not have it: asking again will not help
      continue
    except urllib.error.URLError as e:
      if isinstance(e.reason, FileNotFoundError):  # a file:// mirror without it
        why = "not there"
        break
      if reachable:
        raise DownloadError("cannot reach {} ({}): check the address or pass another with "
                            "--mirror URL".format(url, e.reason))
      why = str(e.reason)
      continue
    except (OSError, http.client.HTTPException) as e:  # reset, timed out or cut short
      why = getattr(e, "strerror", None) or type(e).__name__
      continue
    why = manifest.mismatch(target + PART, entry)
    if why is None:
      os.replace(target + PART, target)
      break
    os.remove(target + PART)
  progress.file_done()
  return why


def _download(url, part, progress, stop):
  """Writes the bytes at `url` to `part`; removes it if anything goes wrong."""
  os.makedirs(os.path.dirname(part) or ".", exist_ok=True)
  try:
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECS) as response, open(part, "wb") as out:
      for chunk in iter(lambda: response.read(manifest.CHUNK), b""):
        if stop.is_set():
          raise Stopped()
        out.write(chunk)
        progress.received(len(chunk))
  except BaseException:
    if os.path.exists(part):
      os.remove(part)
    raise
