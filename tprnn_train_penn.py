"""Train or evaluate a TP-RNN on Penn Action 2D poses (docs/PROTOCOL.md §6).

  python tprnn_train_penn.py                                # train
  python tprnn_train_penn.py --sample --load N              # evaluate the validation set
  python tprnn_train_penn.py --model zero_velocity          # baseline PCK
"""

from tprnn.util import quiet_tensorflow  # noqa: F401  (first: TensorFlow loads without its banner)

import collections

import h5py
import numpy as np

from tprnn.util import atomic_file
from tprnn.training import experiment
from tprnn.util.errors import run_main
from tprnn.parallel import launch
import load

PCK_SUMMARY_STEPS = (1, 6, 11, 16)
EVAL_SUBSET_SEED = 0


def parse_flags(argv):
  parser = experiment.flag_parser(__file__, __doc__.splitlines()[0], "penn",
                                  "./data/Penn_Action/labels", seq_length_in=None,
                                  seq_length_out=load.PREDICTED_STEPS,
                                  seq_length_in_note=" (default: 2, or 3 with --init_velocity)")
  experiment.add_bool(parser, "init_velocity", False,
                      "Observe two frames (a real initial velocity) instead of one "
                      "frame repeated (zero initial velocity).")
  parser.add_argument("--eval_subset", type=int, default=0,
                      help="Evaluate during training on a fixed random subset of this many "
                           "validation sequences (0: all of them, as the original); --sample "
                           "always uses all of them.")
  flags = experiment.parse(parser, argv)
  flags.encoder_length = 2 if flags.init_velocity else 1
  if flags.seq_length_in is None:
    flags.seq_length_in = flags.encoder_length + 1
  if flags.seq_length_in != flags.encoder_length + 1:
    raise experiment.UsageError(
        "--seq_length_in {} does not match the Penn sequences: the encoder sees {} frame(s), "
        "so --seq_length_in must be {}{}".format(
            flags.seq_length_in, flags.encoder_length, flags.encoder_length + 1,
            "" if flags.init_velocity else " (or 3 with --init_velocity)"))
  if flags.eval_subset < 0:
    raise experiment.UsageError("--eval_subset must be 0 (all) or more, got {}".format(
        flags.eval_subset))
  if flags.seq_length_out != load.PREDICTED_STEPS:
    raise experiment.UsageError("--seq_length_out {}: Penn sequences predict {} steps".format(
        flags.seq_length_out, load.PREDICTED_STEPS))
  experiment.check_common_flags(flags, "penn")
  return flags


def experiment_directory(flags):
  """The original's layout, ending in init_velocity or zero_init_velocity."""
  velocity = "init_velocity" if flags.init_velocity else "zero_init_velocity"
  return experiment.experiment_dir(flags, [flags.dataset], [velocity])


ValidationSet = collections.namedtuple("ValidationSet", [
    "feeds",                # (encoder input, decoder input, target), [N, ...]
    "visibilities",         # [N, 16, 13] of the target frames
    "bounding_box_length",  # [N]
    "observed",             # [N, encoder length, 26]: the frames before the targets
    "video",                # [N]
    "frame_index",          # [N, S]: the video frame of each sequence frame
    "box_centre",           # [N, 2]
])


def model_feeds(sequences, encoder_length):
  """Encoder, decoder input and target [N, ...] of sequences whose first
  frame is repeated in front (zero initial velocity)."""
  poses = load.with_repeated_first_frame(sequences.poses)  # [N, S+1, 26]
  return (poses[:, :encoder_length], poses[:, encoder_length:-1],
          poses[:, encoder_length + 1:])


def validation_set(sequences, encoder_length):
  """The model feeds and target-frame visibilities, built once per run."""
  return ValidationSet(model_feeds(sequences, encoder_length),
                       sequences.visibilities[:, encoder_length:],
                       sequences.bounding_box_length, sequences.poses[:, :encoder_length],
                       sequences.video, sequences.frame_index, sequences.box_centre)


def validation_subset(val, size, seed=EVAL_SUBSET_SEED):
  """A fixed random subset of `size` sequences (all of them when size is 0
  or at least their number), the same in every run."""
  count = len(val.bounding_box_length)
  if size == 0 or size >= count:
    return val
  chosen = np.sort(np.random.RandomState(seed).choice(count, size, replace=False))
  return ValidationSet(tuple(f[chosen] for f in val.feeds), *(f[chosen] for f in val[1:]))


def pck_metrics(predictions, targets, visibilities):
  """[16, 4]: l2 norm, euclidean, published PCK and per-joint PCK of each
  predicted step [N, 16, 26], on the visible joints [N, 16, 13] of the target."""
  rows = []
  for step in range(predictions.shape[1]):
    pred, target, visible = predictions[:, step], targets[:, step], visibilities[:, step]
    l2, euclidean, pck = load.distance(pred, target, visible)
    per_joint = load.distance(pred, target, visible, per_joint=True)[2]
    rows.append((l2, euclidean, pck, per_joint))
  return np.array(rows)


def print_metrics(metrics, loss):
  print("Validation loss: {}".format(loss))
  for step, (l2, euclidean, pck, per_joint) in enumerate(metrics, 1):
    print("Predict next %d steps, l2_norm: %f, euclidean: %f, pck: %f, pck_per_joint: %f"
          % (step, l2, euclidean, pck, per_joint))


def evaluate_validation(predict, val):
  """Predicts the whole validation set and prints its metrics.
  Returns (predictions [N, 16, 26], metrics [16, 4], loss)."""
  predictions, loss = predict(*val.feeds)
  metrics = pck_metrics(predictions, val.feeds[2], val.visibilities)
  print_metrics(metrics, loss)
  return predictions, metrics, loss


def write_samples(path, predictions, val, metrics):
  """Predictions, ground truth and visibilities [N, 16, ...] of the predicted
  steps, bounding-box lengths [N] and both PCK curves [16], as the original;
  besides, what maps poses back to the video (load.to_pixels): observed
  [N, encoder length, 26], video [N], frame_index [N, S], box_centre [N, 2]."""
  with atomic_file.atomic_output(path) as tmp:
    with h5py.File(tmp, "w") as f:
      f.create_dataset("predictions", data=predictions)
      f.create_dataset("ground_truth", data=val.feeds[2])
      f.create_dataset("visibilities", data=val.visibilities)
      f.create_dataset("bounding_box_length", data=val.bounding_box_length)
      f.create_dataset("pck", data=metrics[:, 2])
      f.create_dataset("pck_per_joint", data=metrics[:, 3])
      for key in ("observed", "video", "frame_index", "box_centre"):
        f.create_dataset(key, data=getattr(val, key))
  print("Wrote {}".format(path))


def sample(flags, val, directory):
  def evaluate(predict):
    predictions, metrics, _ = evaluate_validation(predict, val)
    write_samples(flags.samples_file, predictions, val, metrics)

  experiment.sample(flags, load.POSE_SIZE, flags.seq_length_in, directory, evaluate)


def train(flags, train_set, val, directory):
  train_feeds = model_feeds(train_set, flags.encoder_length)
  val = validation_subset(val, flags.eval_subset)
  if flags.eval_subset:
    print("Evaluating during training on {} of the validation sequences (--eval_subset)".format(
        len(val.bounding_box_length)))

  def next_batch(rng, batch_size):
    chosen = rng.choice(len(train_feeds[0]), batch_size)
    return [feed[chosen] for feed in train_feeds]

  def evaluate(predict, status, summarize):
    _, metrics, val_loss = evaluate_validation(predict, val)
    values = {"loss/loss": val_loss}
    for s in PCK_SUMMARY_STEPS:
      values["pck/pck_step{}".format(s)] = metrics[s - 1, 2]
      values["pck_per_joint/pck_step{}".format(s)] = metrics[s - 1, 3]
    summarize(values)
    print("Global step: {}, learning rate: {:.4f}, step-time (ms): {:.4f}, "
          "train loss avg: {:.4f}".format(status.global_step, status.learning_rate,
                                          status.step_time_ms, status.train_loss))
    pck = metrics[:, 2]
    return -pck[-1], -np.mean(pck)

  return experiment.train(flags, load.POSE_SIZE, directory, next_batch, evaluate)


def main(argv):
  flags = parse_flags(argv)
  directory = experiment_directory(flags)
  if flags.workers > 1:
    return launch.launch(__file__, argv, flags.workers)
  val = validation_set(
      load.load_sequences(flags.data_dir, train=False, init_velocity=flags.init_velocity),
      flags.encoder_length)
  if flags.model == experiment.ZERO_VELOCITY:
    predictions, metrics, _ = evaluate_validation(experiment.zero_velocity_predict, val)
    if flags.sample:
      write_samples(flags.samples_file, predictions, val, metrics)
    return
  print("Experiment directory: {}".format(directory))
  if flags.sample:
    return sample(flags, val, directory)
  train_set = load.load_sequences(flags.data_dir, train=True, init_velocity=flags.init_velocity)
  print("{} training and {} validation sequences from {}".format(
      len(train_set.poses), len(val.bounding_box_length), flags.data_dir))
  return train(flags, train_set, val, directory)


if __name__ == "__main__":
  raise SystemExit(run_main(main))
