"""Fetches and verifies the data sets and the authors' weights (docs/DATASETS.md):

  python -m tprnn.downloads SOURCE [--mirror URL] [--manifest FILE] [--dest DIR] [ARCHIVE]

SOURCE is h36m, penn, published-human or published-penn; data/download_*.sh and
scripts/download_published.sh call this. Every file is checked against a manifest
of the pinned public copy; only verified files are kept, and a second run fetches
only what is still missing."""

import collections
import os
import re
import shutil
import sys

from tprnn.downloads import archive, fetch, manifest
from tprnn.util import errors, signals

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RAW = "https://raw.githubusercontent.com/"
PUBLISHED = RAW + "eddyhkchiu/pose_forecast_wacv/a502e06b6aba50edd15c2011f3acec3632dd9d6d"
SHOWN = 4  # problems named in the summary line

Source = collections.namedtuple("Source", "title manifest prefix base env dest group flags command")
SOURCES = {
    "h36m": Source(
        "H3.6M", "data/manifests/h36m.txt", "",
        RAW + "limaosen0/DMGNN/67048dd1c59d4d165eade99419aa09c745b9d6ce/data/h3.6m/dataset",
        "TPRNN_H36M_MIRROR", "data/h3.6m/dataset", r"^S\d+/([a-z]+)_\d+\.txt$", None, None),
    "penn": Source(
        "Penn Action", "data/manifests/penn.txt", "",
        RAW + "samaonline/Hierarchical-Model-for-Long-term-Video-Prediction/"
        "675580d4d239f6dd07851b5354ff76ad6ea6dae6/labels",
        "TPRNN_PENN_MIRROR", "data/Penn_Action/labels", None, None, None),
    "published-human": Source(
        "checkpoint-92000 (H3.6M)", "data/manifests/published.txt", "experiments/human/", PUBLISHED,
        "TPRNN_PUBLISHED_MIRROR", ".", None, "docs/published_flags/human_checkpoint-92000.json",
        "python tprnn_train_human.py --sample --load 92000 --learning_rate 0.01 --iterations 100006 "
        "--seq_length_out 25"),
    "published-penn": Source(
        "checkpoint-63000 (Penn Action)", "data/manifests/published.txt", "experiments/penn/", PUBLISHED,
        "TPRNN_PUBLISHED_MIRROR", ".", None, "docs/published_flags/penn_checkpoint-63000.json",
        "python tprnn_train_penn.py --learning_rate 0.01 --iterations 100087 --sample --load 63000"),
}


def parse(argv):
  parser = errors.ArgumentParser(prog="python -m tprnn.downloads", description=__doc__.splitlines()[0])
  parser.add_argument("source", help="one of " + ", ".join(SOURCES))
  parser.add_argument("archive", nargs="?", help="a local zip or tar archive to unpack instead")
  parser.add_argument("--mirror", help="base URL of another copy laid out as the pinned one "
                      "(default: $TPRNN_..._MIRROR, else the pinned copy)")
  parser.add_argument("--manifest", help="manifest to check against (default: the source's)")
  parser.add_argument("--dest", help="where the files go (default: under this repository)")
  args = parser.parse_intermixed_args(argv)
  if args.source not in SOURCES:
    raise errors.UsageError("unknown source '{}': expected one of {}".format(
        args.source, ", ".join(SOURCES)))
  return args


def main(argv):
  args = parse(argv)
  source = SOURCES[args.source]
  entries = manifest.read(args.manifest or os.path.join(ROOT, source.manifest), source.prefix)
  if not entries:
    raise errors.UsageError("{} lists no file under '{}'".format(args.manifest, source.prefix))
  dest = os.path.abspath(args.dest or os.path.join(ROOT, source.dest))
  base = args.mirror or os.environ.get(source.env) or source.base
  created = _first_missing(dest)
  try:
    if args.archive:
      problems, new = archive.extract(args.archive, entries, dest, source.title)
    else:
      problems, new = fetch.fetch(entries, base, dest, source.title)
  except KeyboardInterrupt as e:
    print("\ninterrupted: the files verified so far are kept; run the same command to go on",
          file=sys.stderr)
    return signals.exit_status(e)
  finally:
    if created:
      _remove_if_empty(created)
  origin = args.archive or base
  if problems:
    raise errors.Error(_failure(source, entries, problems, dest, origin))
  print("{}: all {} files verified in {} ({} new from {})".format(
      source.title, len(entries), dest, new, origin))
  if source.flags:
    _lay_out_run(source, entries, dest)


def _failure(source, entries, problems, dest, origin):
  """The one line saying which files are missing or wrong, and what is complete."""
  named = ["{} ({})".format(path, why) for path, why in sorted(problems.items())[:SHOWN]]
  more = len(problems) - SHOWN
  line = "{}: {} of {} files not verified in {}, from {}: {}{}".format(
      source.title, len(problems), len(entries), dest, origin, "; ".join(named),
      "; and {} more".format(more) if more > 0 else "")
  if source.group:
    line += "; complete actions (--action): {}".format(",".join(
        _complete_groups(source.group, entries, problems)) or "none")
  return line


def _complete_groups(pattern, entries, problems):
  """The groups (H3.6M actions) all of whose files are verified."""
  groups = collections.defaultdict(list)
  for entry in entries:
    match = re.match(pattern, entry.path)
    if match:
      groups[match.group(1)].append(entry.path not in problems)
  return sorted(group for group, verified in groups.items() if all(verified))


def _lay_out_run(source, entries, dest):
  """Puts the checkpoint's flags.json beside it, so the printed command finds the run."""
  run_dir = os.path.join(dest, os.path.dirname(entries[0].path))
  shutil.copyfile(os.path.join(ROOT, source.flags), os.path.join(run_dir, "flags.json"))
  print("The run is in {}; from {} evaluate it with:\n  {}".format(run_dir, dest, source.command))


def _first_missing(path):
  """The outermost folder of `path` that does not exist yet, or None."""
  missing = None
  while not os.path.exists(path):
    missing, path = path, os.path.dirname(path)
  return missing


def _remove_if_empty(folder):
  """Removes `folder` (made by this run) if no file was left in it."""
  if os.path.isdir(folder) and not any(files for _, _, files in os.walk(folder)):
    shutil.rmtree(folder)


if __name__ == "__main__":
  raise SystemExit(errors.run_main(main))
