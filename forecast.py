"""Forecast your own poses with a model exported by export.py.

  python forecast.py --model EXPORT_DIR --input poses.txt --output forecast.npy

H3.6M input: the dataset's own format, one frame of 99 comma-separated
exponential-map numbers a line (.txt, .csv) or a [T, 99] .npy; the dataset's
files are 50 Hz and the model 25 fps, so every --stride-th frame is used
(default 2). CMU-Mocap input: the same with 117 numbers a line (files
down-sampled by 2 as well). Penn Action input: one frame a line of 26 numbers, the 13 joints'
x then their y, in pixels (.txt, .csv), or a [T, 13, 2] .npy (x, y); the box
is --box x_min,y_min,x_max,y_max, by default the box of the observed frames.
The model sees the last frames of the input and forecasts the frames after
them, written as .npy ([out, 99], [out, 117] or [out, 13, 2]) or text (one frame a line).
"""

from tprnn.util import quiet_tensorflow  # noqa: F401  (first: TensorFlow loads without its banner)

import json
import os
import sys

import numpy as np
import tensorflow.compat.v1 as tf

from tprnn import datasets
from tprnn.util import atomic_file
from tprnn.util import errors

MANIFEST = "forecast.json"
SAVED_MODEL = "saved_model"


class ForecastError(errors.Error):
  """Bad input or model; one line for the user."""


def parse_args(argv):
  p = errors.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--model", required=True, help="a directory written by export.py")
  p.add_argument("--input", required=True, help="poses: .txt, .csv or .npy")
  p.add_argument("--output", required=True, help="forecast: .npy, .txt or .csv")
  p.add_argument("--stride", type=int, default=None,
                 help="use every stride-th input frame (default: 2 for the H3.6M and CMU-Mocap "
                      "files, 1 for Penn)")
  for name in sorted(datasets.DATASETS):
    datasets.get(name).add_forecast_args(p)
  return p.parse_args(argv)


def read_manifest(model):
  path = os.path.join(model, MANIFEST)
  if not os.path.isfile(path):
    raise ForecastError("--model {} holds no {}: give a directory written by export.py".format(
        model, MANIFEST))
  with open(path) as f:
    return json.load(f)


def read_poses(path, dataset):
  """The dataset's float64 frames of the input file ([T, 99] H3.6M, [T, 117] CMU, [T, 13, 2] Penn)."""
  if not os.path.exists(path) or os.path.isdir(path):  # a pipe (/dev/stdin) is fine
    raise ForecastError("--input {} not found".format(path))
  try:
    poses = np.load(path).astype(np.float64) if path.endswith(".npy") else np.loadtxt(
        path, delimiter=",", ndmin=2)
  except (ValueError, OSError) as e:
    raise ForecastError("--input {}: not {} ({})".format(
        path, dataset.FORECAST_INPUT, str(e).splitlines()[0]))
  frames = dataset.forecast_frames(poses)
  if frames is None:
    raise ForecastError("--input {}: frames of shape {}, expected {}".format(
        path, list(poses.shape[1:]), dataset.FORECAST_INPUT))
  bad = np.flatnonzero(~np.isfinite(frames.reshape(len(frames), -1)).all(axis=1))
  if len(bad):
    raise ForecastError("--input {}: frame {} holds a non-finite value".format(path, bad[0] + 1))
  return frames


def observed_window(poses, stride, frames, path):
  """The last `frames` frames at `stride`."""
  strided = poses[::-1][::stride][::-1]
  if len(strided) < frames:
    raise ForecastError("--input {}: {} frames at stride {} give {}, the model observes {}".format(
        path, len(poses), stride, len(strided), frames))
  return strided[len(strided) - frames:]


def predict(model, feeds):
  """Runs the SavedModel's serving signature on {input name: array}."""
  with tf.Session(graph=tf.Graph()) as sess:
    meta = tf.saved_model.loader.load(sess, [tf.saved_model.tag_constants.SERVING],
                                      os.path.join(model, SAVED_MODEL))
    signature = meta.signature_def[
        tf.saved_model.signature_constants.DEFAULT_SERVING_SIGNATURE_DEF_KEY]
    return sess.run(signature.outputs["forecast"].name,
                    {signature.inputs[k].name: v for k, v in feeds.items()})


def write_forecast(path, forecast, dataset):
  with atomic_file.atomic_output(path) as tmp:
    if path.endswith(".npy"):
      np.save(tmp, forecast)
    else:
      np.savetxt(tmp, dataset.forecast_rows(forecast), delimiter=",", fmt="%.8g")


def main(argv):
  args = parse_args(argv)
  info = read_manifest(args.model)
  dataset = datasets.get(info["dataset"])
  stride = args.stride or dataset.FORECAST_STRIDE
  if stride < 1:
    raise ForecastError("--stride must be at least 1, got {}".format(stride))
  folder = os.path.dirname(os.path.abspath(args.output))
  if not os.path.isdir(folder):
    raise ForecastError("--output {}: directory {} does not exist".format(args.output, folder))
  observed = observed_window(read_poses(args.input, dataset), stride, info["observed_frames"],
                             args.input)
  forecast = predict(args.model, dataset.forecast_feeds(observed, args))[0]
  write_forecast(args.output, forecast, dataset)
  print("Wrote {}: {} frames forecast after the last of {} observed".format(
      args.output, len(forecast), len(observed)))
  return 0


if __name__ == "__main__":
  sys.exit(errors.run_main(main))
