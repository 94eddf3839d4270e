"""What the exp-map datasets (H3.6M, CMU-Mocap) share once their windows are
cut: the evaluation while training, --sample's millimetre tables and samples
file, and the inference graph and file format of export.py and forecast.py,
for D numbers a frame."""

import h5py
import numpy as np
import tensorflow.compat.v1 as tf

from tprnn.evaluation import srnn
from tprnn.evaluation.report import Criterion, Report, average_rows
from tprnn.util import atomic_file

SAMPLED_WINDOWS = 8  # samples.h5 keeps the poses of each action's first 8 windows, as the original
EULER = "Euler angle error (rad)"


def training_evaluation(test, validation_batch, protocol, mask_from="gt"):
  """evaluate(predict, status) -> Report of the training loop on the windows
  of `test` (a srnn.WindowTest) by the Euler error's `mask_from` rule, with
  the loss of validation_batch(rng) -> (encoder input, decoder input,
  target); prints the original's table and status."""
  last_horizon = srnn.horizons(test.target_len)[-1][1]

  def evaluate(predict, status):
    _, val_loss = predict(*validation_batch(status.rng))
    mean_errors, _, srnn_loss = test.evaluate(predict, mask_from)
    srnn.print_table(mean_errors, test.target_len,
                     title=test.title(EULER, "the model at step {}".format(status.step)))
    print_status(status, val_loss, srnn_loss)
    average = average_rows(mean_errors.items())[-1][1]
    summaries = dict(srnn.error_summaries(mean_errors, test.target_len, protocol),
                     **{"loss/loss": val_loss})
    return Report([Criterion("average error at the last horizon", average[last_horizon], False),
                   Criterion("average error summed", np.sum(average), False)], summaries)

  return evaluate


def print_status(status, val_loss, srnn_loss):
  """The original's status block; the two losses say what they average."""
  print()
  print("============================\n"
        "Global step:         {}\n"
        "Learning rate:       {:.4f}\n"
        "Step-time (ms):     {:.4f}\n"
        "Train loss avg:      {:.4f}\n"
        "--------------------------\n"
        "Val loss:            {:.4f}  (one random batch of the test sequences)\n"
        "srnn loss:           {:.4f}  (the table's windows)\n"
        "============================".format(
            status.global_step, status.learning_rate, status.step_time_ms,
            status.train_loss, val_loss, srnn_loss))


def position_tables(tables, test, predictions):
  """{samples key: {action: mean error [out]}} of de-normalised predictions
  {action: [N, out, D]}; `tables` is ((key, title, errors of [..., T, D]
  twice -> [..., T]), ...)."""
  return {key: {action: error(predictions[action], test.gt_expmap[action]).mean(axis=0)
                for action in test.actions}
          for key, _, error in tables}


def print_position_tables(tables, test, predictions, model):
  """Prints the millimetre tables of `model`; returns their values (position_tables)."""
  values = position_tables(tables, test, predictions)
  for key, title, _ in tables:
    srnn.print_table(values[key], test.target_len, cell=" {0:5.1f} |",
                     title=test.title(title, model))
  return values


def report_samples(path, tables, test, mean_errors, predictions, attributes):
  """Prints --sample's millimetre tables and writes the samples file."""
  values = print_position_tables(tables, test, predictions, attributes["model"])
  write_samples(path, test, mean_errors, values, predictions, attributes)


def write_samples(path, test, mean_errors, tables, predictions, attributes):
  """samples.h5: expmap/gt/{action}_{i}, expmap/preds/{action}_{i} (i = 0..7,
  the first eight windows of the protocol, de-normalised [out, D]) and
  mean_{action}_error [out] (over all of them), as the original; besides,
  expmap/observed/{action}_{i} [in, D] (the frames the model saw), the
  millimetre curves mean_{action}_{key} [out] of `tables`, and the root
  `attributes` (base.samples_attributes; `dataset` where not H3.6M) with the
  protocol and its windows."""
  with atomic_file.atomic_output(path) as tmp:
    with h5py.File(tmp, "w") as f:
      f.attrs.update(dict(attributes, protocol=test.protocol, windows=test.describe()))
      for action, errors in mean_errors.items():
        observed = test.observed(action)
        for i in range(min(SAMPLED_WINDOWS, len(observed))):
          f.create_dataset("expmap/gt/{}_{}".format(action, i), data=test.gt_expmap[action][i])
          f.create_dataset("expmap/preds/{}_{}".format(action, i), data=predictions[action][i])
          f.create_dataset("expmap/observed/{}_{}".format(action, i), data=observed[i])
        f.create_dataset("mean_{}_error".format(action), data=errors)
        for key in tables:
          f.create_dataset("mean_{}_{}".format(action, key), data=tables[key][action])
  print("Wrote {}".format(path))


def stats_of(data):
  """The normalisation a run stores (normalisation.npz) of a data_utils.Dataset."""
  return {"mean": data.mean, "std": data.std, "dim_to_use": data.dim_to_use}


def inference_graph(run_model, normalisation, batch, source_len, target_len, pose_dim):
  """observed [N, source_len, D] raw exp-map frames -> forecast [N, out, D],
  the run's normalisation inside. Returns ({name: placeholder}, forecast)."""
  mean, std = (normalisation[k].astype(np.float32) for k in ("mean", "std"))
  dims = normalisation["dim_to_use"].astype(np.int32)
  observed = tf.placeholder(tf.float32, [batch, source_len, pose_dim], name="observed")
  normalised = tf.gather((observed - mean) / std, dims, axis=2)  # [N, T, P]
  prediction = run_model(normalised[:, :source_len - 1], normalised[:, source_len - 1:])
  scatter = np.eye(pose_dim, dtype=np.float32)[dims]  # [P, D]: dropped dims stay 0
  full = tf.reshape(tf.matmul(tf.reshape(prediction, [-1, len(dims)]), scatter),
                    [-1, target_len, pose_dim])  # [N, out, D]
  return {"observed": observed}, full * std + mean


def forecast_frames(poses, pose_dim):
  """[T, D] exp-map frames of a [T, D] input, else None."""
  return poses if poses.ndim == 2 and poses.shape[1] == pose_dim else None


def forecast_feeds(observed):
  return {"observed": observed[None].astype(np.float32)}
