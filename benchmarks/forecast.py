"""Loading an export and forecasting with forecast.py at the real size (the basic
model, rnn_size 1024), per dataset, for this working tree and optionally the
code of another revision on the same checkpoints.

  python benchmarks/forecast.py                        # this working tree
  python benchmarks/forecast.py --revision c36e891     # and that commit's export.py/forecast.py

For each dataset a 1-step training run of this tree (on the data in --data_root,
default data/ as data/download_*.sh fetch it, in a temporary directory; Penn on a
folder of 40 of its label files) makes the checkpoint; a dataset whose data is
absent is skipped with a line saying so. Each code version's export.py exports
it, and its forecast.py runs in a fresh process on one sequence, timed inside
that process:

  import       python's start to forecast.py imported (TensorFlow's import)
  load         forecast.main's start to its forecast's Session.run (manifest,
               input file, SavedModel with its variables)
  first        that run: the graph's optimisation and one forecast
  forecasts/s  the same run repeated in that session for --seconds: 1 / the
               median time of one
  peak RSS     of the process (resource.getrusage), GB = 10^9 bytes

A revision is checked out with `git worktree add` (benchmarks/revisions.py)
and removed afterwards.
"""

import argparse
import collections
import contextlib
import json
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import load  # noqa: E402
from revisions import call, short_hash, worktree  # noqa: E402

PENN_VIDEOS = 40  # label files the Penn run loads: its training data do not matter here

# folder: under --data_root; input: forecast.py's input file in it (Penn: made from the labels)
Dataset = collections.namedtuple("Dataset", ["script", "folder", "flags", "input"])
DATASETS = collections.OrderedDict([
    ("h36m", Dataset("tprnn_train_human.py", ("h3.6m", "dataset"), ["--action", "walking"],
                     ("S5", "walking_1.txt"))),
    ("cmu", Dataset("tprnn_train_cmu.py", ("cmu_mocap",),
                    ["--action", "basketball,jumping,running,walking"],
                    ("test", "walking", "walking_1.txt"))),
    ("penn", Dataset("tprnn_train_penn.py", ("Penn_Action", "labels"), [], None)),
])
ONE_STEP = ["--model", "basic", "--rnn_size", "1024", "--iterations", "1", "--save_every", "1",
            "--test_every", "1000", "--seed", "1"]

# Runs in a fresh process: forecast.main of the tree argv[1], its forecast's Session.run timed
# and repeated; writes the times to argv[2].
MEASURE = r'''
import json, resource, sys, time
start = time.perf_counter()
tree, result, seconds, argv = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
sys.path.insert(0, tree)
import forecast
import tensorflow.compat.v1 as tf
times = {"import": time.perf_counter() - start}
run = tf.Session.run

def timed_run(sess, fetches, *args, **kwargs):
  if "forecast" not in str(fetches):  # e.g. restoring the variables
    return run(sess, fetches, *args, **kwargs)
  tf.Session.run = run
  begin = time.perf_counter()
  times["load"] = begin - main_start
  output = run(sess, fetches, *args, **kwargs)
  times["first"] = time.perf_counter() - begin
  durations, begin = [], time.perf_counter()
  while len(durations) < 3 or time.perf_counter() - begin < seconds:
    start = time.perf_counter()
    run(sess, fetches, *args, **kwargs)
    durations.append(time.perf_counter() - start)
  times["rate"] = 1 / sorted(durations)[len(durations) // 2]  # the median: others share the CPU
  return output

tf.Session.run = timed_run
main_start = time.perf_counter()
forecast.main(argv)
times["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
with open(result, "w") as f:
  json.dump(times, f)
'''


def penn_labels(labels, tmp):
  """A folder of links to the first PENN_VIDEOS label files of `labels`."""
  folder = os.path.join(tmp, "penn_labels")
  os.makedirs(folder)
  for name in sorted(os.listdir(labels))[:PENN_VIDEOS]:
    os.symlink(os.path.join(labels, name), os.path.join(folder, name))
  return folder


def penn_input(folder, tmp):
  """The poses of the folder's first video as forecast.py reads them: 13 x, 13 y a line."""
  x, y, _, _ = load.read_label(os.path.join(folder, sorted(os.listdir(folder))[0]))
  path = os.path.join(tmp, "penn_poses.txt")
  np.savetxt(path, np.concatenate([x, y], axis=1), delimiter=",")
  return path


def trained_run(dataset, folder, tmp):
  """(experiment directory of a 1-step run of this tree on `folder`, forecast.py's input file)."""
  if dataset.input is None:  # Penn: a few videos, and poses written from the first
    folder = penn_labels(folder, tmp)
    source = penn_input(folder, tmp)
  else:
    source = os.path.join(folder, *dataset.input)
  flags = ["--data_dir", folder] + dataset.flags
  name = os.path.splitext(dataset.script)[0]
  out = call([sys.executable, os.path.join(ROOT, dataset.script)] + flags + ONE_STEP +
             ["--train_dir", os.path.join(tmp, "train-" + name)], ROOT)
  directory = [line.split(": ", 1)[1] for line in out.splitlines()
               if line.startswith("Experiment directory: ")][0]
  return directory, source


def measure(tree, directory, source, out, seconds, tmp):
  """{export, import, load, first, rate, rss} of `tree`'s export.py and forecast.py."""
  start = time.perf_counter()
  call([sys.executable, os.path.join(tree, "export.py"), "--experiment_dir", directory,
        "--load", "1", "--out", out], tree)
  export_seconds = time.perf_counter() - start
  script, result = os.path.join(tmp, "measure.py"), os.path.join(tmp, "times.json")
  with open(script, "w") as f:
    f.write(MEASURE)
  call([sys.executable, script, tree, result, str(seconds), "--model", out, "--input", source,
        "--output", os.path.join(tmp, "forecast.npy")], tree)
  with open(result) as f:
    return dict(json.load(f), export=export_seconds)


HEADER = "{:<14} {:<5} {:>8} {:>8} {:>7} {:>7} {:>12} {:>11} {:>9}".format(
    "code", "data", "export s", "import s", "load s", "first s", "load+first s", "forecasts/s",
    "peak RSS")


def row(code, name, t):
  return "{:<14} {:<5} {:>8.1f} {:>8.1f} {:>7.2f} {:>7.2f} {:>12.2f} {:>11.1f} {:>6.2f} GB".format(
      code, name, t["export"], t["import"], t["load"], t["first"], t["load"] + t["first"],
      t["rate"], t["rss"])


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--revision", default="",
                 help="also measure export.py and forecast.py of this git revision (e.g. HEAD~)")
  p.add_argument("--datasets", default=",".join(DATASETS), help="of " + ", ".join(DATASETS))
  p.add_argument("--seconds", type=float, default=3.0, help="how long to repeat the forecast")
  p.add_argument("--data_root", default=os.path.join(ROOT, "data"),
                 help="the folder holding h3.6m/dataset, cmu_mocap and Penn_Action/labels")
  args = p.parse_args(argv)
  unknown = set(args.datasets.split(",")) - set(DATASETS)
  if unknown:
    p.error("--datasets: unknown {}".format(", ".join(sorted(unknown))))
  return args


def main(argv):
  args = parse_args(argv)
  print("{} CPU cores; the basic model at rnn_size 1024, one sequence a forecast".format(
      os.cpu_count()))
  print(HEADER)
  print("-" * len(HEADER))
  with tempfile.TemporaryDirectory(prefix="forecast-benchmark-") as tmp, \
      contextlib.ExitStack() as stack:
    trees = [("working tree", ROOT)]
    if args.revision:
      trees.append(("commit " + short_hash(args.revision),
                    stack.enter_context(worktree(args.revision))))
    for name in args.datasets.split(","):
      folder = os.path.join(args.data_root, *DATASETS[name].folder)
      if not os.path.isdir(folder):
        print("{:<14} {:<5} skipped: {} not found (see --data_root; data/download_*.sh)".format(
            "", name, folder))
        continue
      directory, source = trained_run(DATASETS[name], folder, tmp)
      for index, (code, tree) in enumerate(trees):
        out = os.path.join(tmp, "export-{}-{}".format(name, index))
        print(row(code, name, measure(tree, directory, source, out, args.seconds, tmp)),
              flush=True)


if __name__ == "__main__":
  main(sys.argv[1:])
