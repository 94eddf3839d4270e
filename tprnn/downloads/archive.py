"""A manifest's files taken from a local zip or tar archive (e.g. h3.6m.zip,
Penn_Action.tar.gz): a member is a manifest file when its name ends with the
file's path; each is written as `<name>.part`, checked, then renamed into place,
and a member that differs from the manifest is named, never used."""

import os
import shutil
import tarfile
import zipfile
import zlib

from tprnn.downloads import manifest
from tprnn.downloads.fetch import PART, DownloadError
from tprnn.downloads.progress import Progress

DAMAGED = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error)


def extract(archive, entries, dest, title):
  """Unpacks the `entries` not yet verified under `dest` from `archive`.

  Returns (problems, unpacked): problems maps an entry's path to why it is not
  there (not in the archive, or its member differs from the manifest).
  """
  todo = {e.path: e for e in entries if manifest.mismatch(os.path.join(dest, e.path), e)}
  progress = Progress(title, len(todo))
  problems = {path: "not in {}".format(archive) for path in todo}
  for member, read in _members(archive):
    entry = todo.get(_manifest_path(member, todo))
    if entry is None or problems.get(entry.path) is None:
      continue  # not a manifest file, or already taken from another member
    problems[entry.path] = _unpack(read, member, entry, dest, archive)
    progress.file_done()
  progress.close()
  problems = {path: why for path, why in problems.items() if why}
  return problems, len(todo) - len(problems)


def _manifest_path(member, paths):
  """The manifest path `member` (an archive name) ends with, or None."""
  parts = member.replace("\\", "/").split("/")
  for start in range(len(parts)):
    candidate = "/".join(parts[start:])
    if candidate in paths:
      return candidate
  return None


def _unpack(read, member, entry, dest, archive):
  """None once `entry` is verified in place, else why the member was refused."""
  target = os.path.join(dest, entry.path)
  os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
  try:
    why = _copy_checked(read, target + PART, entry)
    if why is None:
      os.replace(target + PART, target)
      return None
    return "{} in {}: {}".format(member, archive, why)
  finally:
    if os.path.exists(target + PART):
      os.remove(target + PART)


def _copy_checked(read, part, entry):
  """Copies a member to `part`; None when it is the manifest's `entry`, else why not."""
  try:
    with read() as source, open(part, "wb") as out:
      shutil.copyfileobj(source, out, manifest.CHUNK)
  except DAMAGED as e:
    return "damaged ({})".format(e)
  return manifest.mismatch(part, entry)


def _members(archive):
  """Yields (name, open function) for every regular file in a zip or tar archive."""
  if not os.path.isfile(archive):
    raise DownloadError("{} not found: give the path of the archive".format(archive))
  try:
    if zipfile.is_zipfile(archive):
      with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
          if not info.is_dir():
            yield info.filename, lambda info=info: z.open(info)
    elif tarfile.is_tarfile(archive):
      with tarfile.open(archive) as t:
        for info in t:
          if info.isfile():
            yield info.name, lambda info=info: t.extractfile(info)
    else:
      raise DownloadError("{} is neither a zip nor a tar archive".format(archive))
  except DAMAGED as e:
    raise DownloadError("{} is damaged or cut short ({}); the files verified so far are kept".format(
        archive, e))
