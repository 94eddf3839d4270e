"""Export a trained model for inference: a SavedModel with one serving
signature and a frozen GraphDef, both taking the dataset's raw poses.

  python export.py --experiment_dir DIR --load N [--out DIR/export-N] [--batch_size B]

The run's flags come from DIR/flags.json. The exported graph holds the model
with its weights as constants, the normalisation and the roll-out, nothing of
training, and only float32/int32 tensors:

  H3.6M  observed [N, T, 99] exp-map frames at 25 fps, T = 50 (as --sample)
         -> forecast [N, out, 99]; the normalisation (the training data's mean,
         std and used dimensions) is inside the graph.
  Penn   observed [N, T, 13, 2] pixel (x, y), T = 1 (2 with --init_velocity),
         box_centre [N, 2] and box_size [N] (the side L of each sequence's
         square box, docs/PROTOCOL.md §6) -> forecast [N, 16, 13, 2] pixels.

forecast.py runs the SavedModel on a file of poses; the frozen graph is what
Ascend's offline model converter (ATC) takes (see README, Inference).
"""

from tprnn.util import quiet_tensorflow  # noqa: F401  (first: TensorFlow loads without its banner)

import argparse
import json
import os
import shutil
import sys

import numpy as np
import tensorflow.compat.v1 as tf

from tprnn.training import checkpoints
import data_utils
from tprnn.util import errors
from tprnn.training import experiment
import load
import tprnn_train_human
import tprnn_train_penn
from tprnn.training import rundir

SCRIPTS = {"human": tprnn_train_human, "penn": tprnn_train_penn}
MANIFEST = "forecast.json"
SAVED_MODEL, FROZEN_GRAPH = "saved_model", "frozen_graph.pb"
OUTPUT = "forecast"


class ExportError(errors.Error):
  """A bad export request; one line for the user."""


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--experiment_dir", required=True, help="the run's directory (with flags.json)")
  p.add_argument("--load", type=int, required=True, help="the checkpoint to export")
  p.add_argument("--out", default="", help="where to write (default: DIR/export-N); must not exist")
  p.add_argument("--batch_size", type=int, default=0,
                 help="fix the batch dimension (0: any), e.g. for the offline converter")
  p.add_argument("--data_dir", default="",
                 help="H3.6M: the data the normalisation is computed from (default: the run's)")
  args = p.parse_args(argv)
  if args.batch_size < 0:
    raise ExportError("--batch_size must be 0 (any) or more, got {}".format(args.batch_size))
  args.out = args.out or os.path.join(args.experiment_dir, "export-{}".format(args.load))
  if os.path.exists(args.out):
    raise ExportError("--out {} exists; choose another or delete it".format(args.out))
  return args


def model_flags(args):
  """The run's flags (from flags.json), on the CPU."""
  recorded = rundir.read_flags(args.experiment_dir)
  if recorded is None or recorded.get("dataset") not in SCRIPTS:
    raise ExportError("{} holds no {} naming the run's dataset (human or penn)".format(
        args.experiment_dir, rundir.FLAGS_NAME))
  argv = ["--experiment_dir", args.experiment_dir, "--device", "cpu", "--load", str(args.load)]
  if args.data_dir:
    argv += ["--data_dir", args.data_dir]
  return SCRIPTS[recorded["dataset"]].parse_flags(argv)


def frozen_model(flags, input_size, source_len, directory, step):
  """The model's forward pass with checkpoint-`step` folded into constants
  and no dropout: (GraphDef, name of its output [N, out, P])."""
  inference = argparse.Namespace(**dict(vars(flags), dropout_keep=1.0))
  net = experiment.build_model(inference, input_size, source_len, seed=0)
  with tf.Session(graph=net.graph, config=tf.ConfigProto(device_count={"GPU": 0})) as sess:
    experiment.initialize_or_restore(sess, net, directory, step)
    output = net.model.outputs.op.name
    return tf.graph_util.convert_variables_to_constants(
        sess, net.graph.as_graph_def(), [output]), output + ":0"


def run_model(frozen, output, encoder, first_decoder, target_len):
  """Imports the frozen model fed with encoder [N, in-1, P] and the first
  decoder input [N, 1, P] (the others are never read). Returns [N, out, P]."""
  decoder = tf.tile(first_decoder, [1, target_len, 1])  # [N, out, P]
  (prediction,) = tf.import_graph_def(
      frozen, input_map={"inputs/enc_in:0": encoder, "inputs/dec_in:0": decoder},
      return_elements=[output], name="model")
  return prediction


def human_graph(flags, frozen, output, data, batch):
  """Raw exp-map frames in, raw exp-map frames out. Returns (inputs, forecast)."""
  source_len, target_len = tprnn_train_human.SAMPLE_SOURCE_LEN, flags.seq_length_out
  mean, std = data.mean.astype(np.float32), data.std.astype(np.float32)
  dims = data.dim_to_use.astype(np.int32)
  observed = tf.placeholder(tf.float32, [batch, source_len, data_utils.POSE_DIM], name="observed")
  normalised = tf.gather((observed - mean) / std, dims, axis=2)  # [N, T, P]
  prediction = run_model(frozen, output, normalised[:, :source_len - 1],
                         normalised[:, source_len - 1:], target_len)  # [N, out, P]
  scatter = np.eye(data_utils.POSE_DIM, dtype=np.float32)[dims]  # [P, 99]: dropped dims stay 0
  full = tf.reshape(tf.matmul(tf.reshape(prediction, [-1, len(dims)]), scatter),
                    [-1, target_len, data_utils.POSE_DIM])  # [N, out, 99]
  return {"observed": observed}, tf.identity(full * std + mean, name=OUTPUT)


def penn_graph(flags, frozen, output, batch):
  """Pixel poses and their box in, pixel poses out (load.to_pixels' inverse
  and back). Returns (inputs, forecast)."""
  observed = tf.placeholder(tf.float32, [batch, flags.encoder_length, load.NUM_JOINTS, 2],
                            name="observed")
  centre = tf.placeholder(tf.float32, [batch, 2], name="box_centre")
  size = tf.placeholder(tf.float32, [batch], name="box_size")
  half = tf.reshape(size / 2.0, [-1, 1, 1, 1])
  offset = tf.reshape(centre, [-1, 1, 1, 2])
  xy = (observed - offset) / half  # [N, T, 13, 2]
  poses = tf.concat([xy[..., 0], xy[..., 1]], axis=2)  # [N, T, 26]: x0..x12, y0..y12
  padded = tf.concat([poses[:, :1], poses], axis=1)  # the first frame repeated in front
  prediction = run_model(frozen, output, padded[:, :flags.encoder_length],
                         padded[:, flags.encoder_length:], flags.seq_length_out)  # [N, 16, 26]
  pixels = tf.stack([prediction[..., :load.NUM_JOINTS], prediction[..., load.NUM_JOINTS:]],
                    axis=3) * half + offset  # [N, 16, 13, 2]
  return ({"observed": observed, "box_centre": centre, "box_size": size},
          tf.identity(pixels, name=OUTPUT))


def inference_graph(flags, args):
  """The export graph. Returns (graph, {name: input placeholder}, forecast)."""
  directory = experiment.experiment_dir(flags, [])
  checkpoints.find(directory, args.load)
  if flags.dataset == "human":
    data = data_utils.read_all_data(flags.actions, flags.data_dir)
    frozen, output = frozen_model(flags, len(data.dim_to_use), tprnn_train_human.SAMPLE_SOURCE_LEN,
                                  directory, args.load)
  else:
    frozen, output = frozen_model(flags, load.POSE_SIZE, flags.seq_length_in, directory, args.load)
  graph = tf.Graph()
  with graph.as_default():
    if flags.dataset == "human":
      inputs, forecast = human_graph(flags, frozen, output, data, args.batch_size or None)
    else:
      inputs, forecast = penn_graph(flags, frozen, output, args.batch_size or None)
  return graph, inputs, forecast


def manifest(flags, args, inputs, forecast):
  """What forecast.py and a reader need: dataset, shapes and node names."""
  describe = lambda t: {"node": t.op.name, "shape": t.shape.as_list(), "dtype": t.dtype.name}
  return {"dataset": flags.dataset, "checkpoint": checkpoints.path(args.experiment_dir, args.load),
          "code_version": experiment.code_version(), "model": flags.model,
          "inputs": {k: describe(v) for k, v in inputs.items()}, "output": describe(forecast),
          "observed_frames": inputs["observed"].shape.as_list()[1],
          "forecast_frames": forecast.shape.as_list()[1],
          "frames_per_second": 25 if flags.dataset == "human" else None}


def write(graph, inputs, forecast, info, out):
  """SavedModel, frozen graph and manifest into a new directory `out`,
  built beside it and renamed when complete."""
  tmp = "{}.tmp{}".format(out.rstrip("/"), os.getpid())
  try:
    with tf.Session(graph=graph) as sess:
      builder = tf.saved_model.builder.SavedModelBuilder(os.path.join(tmp, SAVED_MODEL))
      signature = tf.saved_model.signature_def_utils.predict_signature_def(
          inputs=inputs, outputs={OUTPUT: forecast})
      builder.add_meta_graph_and_variables(
          sess, [tf.saved_model.tag_constants.SERVING], signature_def_map={
              tf.saved_model.signature_constants.DEFAULT_SERVING_SIGNATURE_DEF_KEY: signature})
      builder.save()
    with open(os.path.join(tmp, FROZEN_GRAPH), "wb") as f:
      f.write(graph.as_graph_def().SerializeToString())
    with open(os.path.join(tmp, MANIFEST), "w") as f:
      json.dump(info, f, indent=1, sort_keys=True)
    os.rename(tmp, out)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def main(argv):
  args = parse_args(argv)
  flags = model_flags(args)
  graph, inputs, forecast = inference_graph(flags, args)
  info = manifest(flags, args, inputs, forecast)
  write(graph, inputs, forecast, info, args.out)
  print("Wrote {} ({}, {})".format(args.out, SAVED_MODEL, FROZEN_GRAPH))
  for name, tensor in sorted(info["inputs"].items()) + [(OUTPUT, info["output"])]:
    print("  {:<10} node {:<12} {} {}".format(name, tensor["node"], tensor["dtype"],
                                               tensor["shape"]))
  return 0


if __name__ == "__main__":
  sys.exit(errors.run_main(main))
