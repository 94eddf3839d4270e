"""Whether this working tree trains as another revision does: both run the
same training steps from the same initial weights on the same H3.6M batches
(fp32, no dropout), each in its own process with its own code, and the
losses of every step, the first step's gradients and the weights after
the last are compared. The "nudged" columns are the other revision against
itself from the same weights times 1 + 3e-7 noise: how far rounding alone
carries the run (Adam turns the sign of a near-zero gradient into a full
step, so the generic model parts ways within a few steps).

  python benchmarks/same_numbers.py --revision 40a532e    # the real size, 20 steps

Batches are walking windows of data/h3.6m/dataset (--data_dir), or random
normal ones where that folder is absent.
"""

import argparse
import collections
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data_utils  # noqa: E402
import graph_worker  # noqa: E402
import revisions  # noqa: E402

# model, tprnn_scale, tprnn_layers, fix_generic_contexts
MODELS = collections.OrderedDict([("basic", ("basic", 2, 2, False)),
                                  ("generic", ("generic", 2, 2, False)),
                                  ("generic-k3-fixed", ("generic", 3, 2, True))])
NUDGE = 3e-7  # relative change of every weight: about the rounding of one product
Differences = collections.namedtuple("Differences", [
    "gradient",  # largest difference of a first-step gradient, relative to its largest value
    "loss",      # largest relative difference of a step's loss
    "weight",    # largest absolute difference of a weight after the last step
    "losses",    # the first run's loss of every step
])


def write_feeds(path, steps, batch, data_dir=None, config="h36m", seed=0):
  """Writes `steps` batches of enc/dec_in/dec_out [steps, N, ...] in the
  shapes of `config` to the npz `path`: walking windows of data_dir, or
  random normal."""
  input_size, source_len, target_len = graph_worker.CONFIGS[config]
  rng = np.random.RandomState(seed)
  if data_dir:
    train = data_utils.read_all_data(["walking"], data_dir).train
    windows = [data_utils.random_windows(train, rng, batch, source_len + target_len)
               for _ in range(steps)]
    feeds = [data_utils.split_windows(w, source_len) for w in windows]
  else:
    feeds = [graph_worker.random_feeds(input_size, source_len, target_len, batch, seed=step)
             for step in range(steps)]
  np.savez(path, **{name: np.stack([f[i] for f in feeds]).astype(np.float32)
                    for i, name in enumerate(("enc", "dec_in", "dec_out"))})


def train(worker, model, size, feeds, init, out):
  """(losses, npz of `out`) of a graph_worker "train" request; size:
  (config, rnn_size, batch)."""
  name, scale, layers, fix = MODELS[model]
  config, rnn, batch = size
  reply = worker.request(op="train", model=name, config=config, rnn=rnn, batch=batch, scale=scale,
                         layers=layers, fix=fix, feeds=feeds, init=init, out=out)
  return np.array(reply["losses"]), np.load(out)


def nudged(values, path, seed=0):
  """Writes to npz `path` the "initial/" float weights of `values`, each
  times 1 + NUDGE * a standard normal draw."""
  rng = np.random.RandomState(seed)
  out = {}
  for k in values.files:
    if k.startswith("initial/"):
      v = values[k]
      trained = (v.dtype == np.float32 and "filter" not in k and not k.endswith("_power")
                 and k != "initial/Variable")  # weights and Adam's moments, not its beta powers
      out[k] = (v * (1 + NUDGE * rng.normal(size=v.shape))).astype(v.dtype) if trained else v
  np.savez(path, **out)
  return path


def compared(first, second):
  """Differences of two (losses, npz) training runs from the same start."""
  (losses, a), (other_losses, b) = first, second
  names = sorted(k for k in a.files if k.startswith("final/"))
  if names != sorted(k for k in b.files if k.startswith("final/")):
    raise SystemExit("the two revisions name their variables differently")
  gradient = max(float(np.abs(a[k] - b[k]).max() / np.abs(b[k]).max())
                 for k in a.files if k.startswith("gradient/") and np.abs(b[k]).max() > 0)
  return Differences(gradient, float(np.max(np.abs(losses - other_losses) / other_losses)),
                     max(float(np.abs(a[k] - b[k]).max()) for k in names), losses)


def differences(workers, model, size, feeds, tmp):
  """Trains `model` (a MODELS key) at `size` (see train) with each of two
  revisions.Workers from the first one's fresh weights, and the second
  again from those weights nudged. Returns (Differences of the revisions,
  of the nudge)."""
  start = os.path.join(tmp, model + "-0.npz")
  ours = train(workers[0], model, size, feeds, "", start)
  theirs = train(workers[1], model, size, feeds, start, os.path.join(tmp, model + "-1.npz"))
  again = train(workers[1], model, size, feeds,
                nudged(ours[1], os.path.join(tmp, model + "-nudged.npz")),
                os.path.join(tmp, model + "-2.npz"))
  return compared(ours, theirs), compared(again, theirs)


def main(argv):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--revision", required=True, help="the git revision to compare with")
  p.add_argument("--models", default=",".join(MODELS), help="of " + ", ".join(MODELS))
  p.add_argument("--rnn_size", type=int, default=1024)
  p.add_argument("--batch_size", type=int, default=16)
  p.add_argument("--steps", type=int, default=20)
  p.add_argument("--data_dir", default=os.path.join(revisions.ROOT, "data", "h3.6m", "dataset"))
  args = p.parse_args(argv)
  unknown = sorted(set(args.models.split(",")) - set(MODELS))
  if unknown:
    p.error("--models: unknown {} (known: {})".format(", ".join(unknown), ", ".join(MODELS)))
  if args.steps < 1:
    p.error("--steps: {} is not a number of steps (at least 1)".format(args.steps))
  if not revisions.has_revision(args.revision):
    p.error("--revision: git knows no commit {}".format(args.revision))
  data_dir = args.data_dir if os.path.isdir(args.data_dir) else None
  print("{} steps, rnn_size {}, batch {}, {} batches; working tree vs {}".format(
      args.steps, args.rnn_size, args.batch_size,
      "walking" if data_dir else "random normal (no {})".format(args.data_dir),
      revisions.short_hash(args.revision)))
  with tempfile.TemporaryDirectory() as tmp, revisions.worktree(args.revision) as tree, \
      revisions.Worker(revisions.ROOT) as ours, revisions.Worker(tree) as theirs:
    feeds = os.path.join(tmp, "feeds.npz")
    write_feeds(feeds, args.steps, args.batch_size, data_dir)
    print("{:<18} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9}".format(
        "", "gradient", "loss", "weight", "nudged", "nudged", "first", "last"))
    print("{:<18} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9}".format(
        "model", "rel. diff", "rel. diff", "abs. diff", "loss", "weight", "loss", "loss"))
    for model in args.models.split(","):
      d, nudge = differences([ours, theirs], model, ("h36m", args.rnn_size, args.batch_size),
                             feeds, tmp)
      print("{:<18} {:>10.1e} {:>10.1e} {:>10.1e} {:>10.1e} {:>10.1e} {:>9.4f} {:>9.4f}".format(
          model, d.gradient, d.loss, d.weight, nudge.loss, nudge.weight, d.losses[0],
          d.losses[-1]), flush=True)


if __name__ == "__main__":
  main(sys.argv[1:])
