"""Manifests of published files, one line a file: `<git blob SHA-1> <size> <path>`, as
`git ls-tree -r -l` lists a pinned commit's tree (size `-` where the listing gave none:
the blob hash covers the length too), so a download is checked against that commit."""

import collections
import hashlib
import os

from tprnn.util import errors

Entry = collections.namedtuple("Entry", "sha1 size path")  # size None where unknown
CHUNK = 1 << 20


class ManifestError(errors.Error):
  """A manifest that cannot be read."""


def read(path, prefix=""):
  """The entries of manifest `path` whose path starts with `prefix`, in file order."""
  try:
    with open(path, encoding="utf-8") as f:
      lines = f.read().splitlines()
  except OSError as e:
    raise ManifestError("cannot read manifest {}: {}".format(path, e.strerror))
  entries = [_entry(path, number, line) for number, line in enumerate(lines, 1) if line.strip()]
  return [e for e in entries if e.path.startswith(prefix)]


def _entry(path, number, line):
  parts = line.split()
  if len(parts) != 3 or len(parts[0]) != 40 or not (parts[1].isdigit() or parts[1] == "-"):
    raise ManifestError("{}:{}: expected '<40-hex blob sha1> <size or -> <path>', found '{}'".format(
        path, number, line.strip()))
  return Entry(parts[0].lower(), None if parts[1] == "-" else int(parts[1]), parts[2])


def blob_sha1(path):
  """What `git hash-object path` prints: sha1 of b"blob <size>\\0" + the bytes."""
  digest = hashlib.sha1(b"blob %d\0" % os.path.getsize(path))
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(CHUNK), b""):
      digest.update(chunk)
  return digest.hexdigest()


def mismatch(path, entry):
  """None when the file at `path` is the manifest's `entry`, else why not (one phrase)."""
  if not os.path.isfile(path):
    return "missing"
  size = os.path.getsize(path)
  if entry.size is not None and size != entry.size:
    return "{} bytes, expected {}".format(size, entry.size)
  found = blob_sha1(path)
  if found != entry.sha1:
    return "content differs (blob {}, expected {})".format(found[:12], entry.sha1[:12])
  return None
