"""Penn Action 2D poses (docs/PROTOCOL.md §6): the dataset behind
tprnn_train_penn.py, evaluated by PCK on every validation sequence."""

import h5py
import numpy as np
import tensorflow.compat.v1 as tf

import load
from tprnn import config
from tprnn.datasets import base
from tprnn.datasets.base import SamplingTask, TrainingTask
from tprnn.evaluation import pck
from tprnn.evaluation.report import Criterion, Report
from tprnn.evaluation.baseline import zero_velocity_predict
from tprnn.util import atomic_file
from tprnn.util.errors import UsageError

NAME = "penn"
DESCRIPTION = "Train or evaluate a TP-RNN on Penn Action 2D poses (docs/PROTOCOL.md §6)."
DEFAULTS = {"data_dir": "./data/Penn_Action/labels", "seq_length_in": None,
            "seq_length_out": load.PREDICTED_STEPS,
            "seq_length_in_note": " (default: 2, or 3 with --init_velocity)"}
PCK_SUMMARY_STEPS = (1, 6, 11, 16)
FRAMES_PER_SECOND = None  # the videos' rates differ
FORECAST_STRIDE = 1


def add_flags(parser):
  config.add_bool(parser, "init_velocity", False,
                  "Observe two frames (a real initial velocity) instead of one "
                  "frame repeated (zero initial velocity).")
  parser.add_argument("--eval_subset", type=int, default=0,
                      help="Evaluate during training on a fixed random subset of this many "
                           "validation sequences (0: all of them, as the original); --sample "
                           "always uses all of them.")


def derived_flags(flags):
  encoder_length = 2 if flags.init_velocity else 1
  return {"encoder_length": encoder_length,
          "seq_length_in": (encoder_length + 1 if flags.seq_length_in is None
                            else flags.seq_length_in)}


def check_flags(flags):
  if flags.seq_length_in != flags.encoder_length + 1:
    raise UsageError(
        "--seq_length_in {} does not match the Penn sequences: the encoder sees {} frame(s), "
        "so --seq_length_in must be {}{}".format(
            flags.seq_length_in, flags.encoder_length, flags.encoder_length + 1,
            "" if flags.init_velocity else " (or 3 with --init_velocity)"))
  if flags.eval_subset < 0:
    raise UsageError("--eval_subset must be 0 (all) or more, got {}".format(flags.eval_subset))
  if flags.seq_length_out != load.PREDICTED_STEPS:
    raise UsageError("--seq_length_out {}: Penn sequences predict {} steps".format(
        flags.seq_length_out, load.PREDICTED_STEPS))


def directory_parts(flags):
  """The original's layout, ending in init_velocity or zero_init_velocity."""
  return [flags.dataset], ["init_velocity" if flags.init_velocity else "zero_init_velocity"]


def read_validation(flags):
  return pck.validation_set(
      load.load_sequences(flags.data_dir, train=False, init_velocity=flags.init_velocity),
      flags.encoder_length)


# ----------------------------------------------------------------------------
# Training, --sample and the baseline


def training_task(flags):
  val = read_validation(flags)
  train_set = load.load_sequences(flags.data_dir, train=True, init_velocity=flags.init_velocity)
  print("{} training and {} validation sequences from {}".format(
      len(train_set.poses), len(val.bounding_box_length), flags.data_dir))
  train_feeds = pck.model_feeds(train_set, flags.encoder_length)
  val = pck.validation_subset(val, flags.eval_subset)
  if flags.eval_subset:
    print("Evaluating during training on {} of the validation sequences (--eval_subset)".format(
        len(val.bounding_box_length)))

  def next_batch(rng, batch_size):
    chosen = rng.choice(len(train_feeds[0]), batch_size)
    return [feed[chosen] for feed in train_feeds]

  def evaluate(predict, status):
    _, metrics, val_loss = pck.evaluate_validation(predict, val, "the model at step {}".format(
        status.step))
    summaries = {"loss/loss": val_loss}
    for s in PCK_SUMMARY_STEPS:
      summaries["pck/pck_step{}".format(s)] = metrics[s - 1, 2]
      summaries["pck_per_joint/pck_step{}".format(s)] = metrics[s - 1, 3]
    print("Global step: {}, learning rate: {:.4f}, step-time (ms): {:.4f}, "
          "train loss avg: {:.4f}".format(status.global_step, status.learning_rate,
                                          status.step_time_ms, status.train_loss))
    return Report([Criterion("PCK at the last step", metrics[-1, 2], True),
                   Criterion("mean PCK", np.mean(metrics[:, 2]), True)], summaries)

  return TrainingTask(load.POSE_SIZE, None, next_batch, evaluate)


def sampling_task(flags, normalisation):
  """The whole validation set; writes the samples file."""
  val = read_validation(flags)

  def evaluate(predict):
    predictions, metrics, _ = pck.evaluate_validation(predict, val, base.model_name(flags))
    write_samples(flags.samples_file, predictions, val, metrics, base.samples_attributes(
        flags, "the validation set"))

  return SamplingTask(load.POSE_SIZE, flags.seq_length_in, evaluate)


def zero_velocity(flags):
  val = read_validation(flags)
  predictions, metrics, _ = pck.evaluate_validation(zero_velocity_predict, val,
                                                    base.model_name(flags))
  if flags.sample:
    write_samples(flags.samples_file, predictions, val, metrics, base.samples_attributes(
        flags, "the validation set"))


def write_samples(path, predictions, val, metrics, attributes):
  """Predictions, ground truth and visibilities [N, 16, ...] of the predicted
  steps, bounding-box lengths [N] and both PCK curves [16], as the original;
  besides, what maps poses back to the video (load.to_pixels): observed
  [N, encoder length, 26], video [N], frame_index [N, S], box_centre [N, 2];
  and the root `attributes` (base.samples_attributes) with the protocol."""
  with atomic_file.atomic_output(path) as tmp:
    with h5py.File(tmp, "w") as f:
      f.attrs.update(dict(attributes, protocol="pck"))
      f.create_dataset("predictions", data=predictions)
      f.create_dataset("ground_truth", data=val.feeds[2])
      f.create_dataset("visibilities", data=val.visibilities)
      f.create_dataset("bounding_box_length", data=val.bounding_box_length)
      f.create_dataset("pck", data=metrics[:, 2])
      f.create_dataset("pck_per_joint", data=metrics[:, 3])
      for key in ("observed", "video", "frame_index", "box_centre"):
        f.create_dataset(key, data=getattr(val, key))
  print("Wrote {}".format(path))


# ----------------------------------------------------------------------------
# Export and forecast: pixel poses and their box in, pixel poses out


def normalisation_of_run(flags, stored):
  """None: each sequence is normalised by its own box."""
  return None


def inference_shape(flags, normalisation):
  return load.POSE_SIZE, flags.seq_length_in


def inference_graph(flags, run_model, normalisation, batch):
  """observed [N, T, 13, 2] pixels, box_centre [N, 2], box_size [N] ->
  forecast [N, 16, 13, 2] pixels (load.to_pixels' inverse and back).
  Returns ({name: placeholder}, forecast)."""
  observed = tf.placeholder(tf.float32, [batch, flags.encoder_length, load.NUM_JOINTS, 2],
                            name="observed")
  centre = tf.placeholder(tf.float32, [batch, 2], name="box_centre")
  size = tf.placeholder(tf.float32, [batch], name="box_size")
  half = tf.reshape(size / 2.0, [-1, 1, 1, 1])
  offset = tf.reshape(centre, [-1, 1, 1, 2])
  xy = (observed - offset) / half  # [N, T, 13, 2]
  poses = tf.concat([xy[..., 0], xy[..., 1]], axis=2)  # [N, T, 26]: x0..x12, y0..y12
  padded = tf.concat([poses[:, :1], poses], axis=1)  # the first frame repeated in front
  prediction = run_model(padded[:, :flags.encoder_length],
                         padded[:, flags.encoder_length:])  # [N, 16, 26]
  pixels = tf.stack([prediction[..., :load.NUM_JOINTS], prediction[..., load.NUM_JOINTS:]],
                    axis=3) * half + offset  # [N, 16, 13, 2]
  return {"observed": observed, "box_centre": centre, "box_size": size}, pixels


def add_forecast_args(parser):
  parser.add_argument("--box", default="",
                      help="Penn: x_min,y_min,x_max,y_max of the person, pixels")


FORECAST_INPUT = "26 numbers a line (13 x, then 13 y, pixels), or a [T, 13, 2] .npy"


def forecast_frames(poses):
  """[T, 13, 2] (x, y) of a [T, 26] (x..., y...) or [T, 13, 2] input, else None."""
  if poses.ndim == 2 and poses.shape[1] == load.POSE_SIZE:
    poses = np.stack([poses[:, :load.NUM_JOINTS], poses[:, load.NUM_JOINTS:]], axis=2)
  return poses if poses.shape[1:] == (load.NUM_JOINTS, 2) else None


def forecast_feeds(observed, args):
  centre, size = box(args.box, observed)
  return {"observed": observed[None].astype(np.float32),
          "box_centre": centre[None].astype(np.float32), "box_size": np.array([size], np.float32)}


def box(text, observed):
  """(centre [2], side L) of the --box, or of the observed joints."""
  if text:
    try:
      x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError:
      raise UsageError("--box {}: expected x_min,y_min,x_max,y_max".format(text))
  else:
    (x0, y0), (x1, y1) = observed.reshape(-1, 2).min(axis=0), observed.reshape(-1, 2).max(axis=0)
  if not (x1 >= x0 and y1 >= y0):
    raise UsageError("--box {}: the maximum is below the minimum".format(text))
  return np.array([(x0 + x1) / 2, (y0 + y1) / 2]), max(x1 - x0, y1 - y0) + 1e-8


def forecast_rows(forecast):
  """[out, 13, 2] -> text rows of x..., y..."""
  return np.concatenate([forecast[..., 0], forecast[..., 1]], axis=1)
