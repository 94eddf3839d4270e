"""Export a trained model for inference: a SavedModel with one serving
signature and a frozen GraphDef, both taking the dataset's raw poses.

  python export.py --experiment_dir DIR --load N [--out DIR/export-N] [--batch_size B]

The run's flags come from DIR/flags.json. The exported graph holds the model,
the normalisation and the roll-out, nothing of training, and only float32/int32
tensors; the SavedModel keeps the weights in variables (one copy, restored when
it loads), the frozen graph as constants:

  H3.6M  observed [N, T, 99] exp-map frames at 25 fps, T = 50 (as --sample)
         -> forecast [N, out, 99]; the normalisation (the run's
         normalisation.npz, or recomputed from the data for runs without it) is
         inside the graph.
  CMU    observed [N, T, 117] exp-map frames, T = the run's --seq_length_in
         -> forecast [N, out, 117], the normalisation inside as on H3.6M.
  Penn   observed [N, T, 13, 2] pixel (x, y), T = 1 (2 with --init_velocity),
         box_centre [N, 2] and box_size [N] (the side L of each sequence's
         square box, docs/PROTOCOL.md §6) -> forecast [N, 16, 13, 2] pixels.

forecast.py runs the SavedModel on a file of poses; the frozen graph is what
Ascend's offline model converter (ATC) takes (see README, Inference). Why
variables: every step of the roll-out reads each weight, and the static shape
inference of TensorFlow's graph optimiser (grappler) keeps a copy of a constant's
value for each op that reads it; for the frozen graph at rnn_size 1024 in plain
TensorFlow that is ~40 s and ~7 GB before the first forecast, unless the session
config sets graph_options.rewrite_options.disable_meta_optimizer.
"""

from tprnn.util import quiet_tensorflow  # noqa: F401  (first: TensorFlow loads without its banner)

import json
import os
import shutil
import sys

import tensorflow.compat.v1 as tf

from tprnn import datasets
from tprnn.training import checkpoints
from tprnn.training import rundir
from tprnn.training import run
from tprnn.training.graph import build_model, initialize_or_restore
from tprnn.util import devices
from tprnn.util import errors
from tprnn.util import version

MANIFEST = "forecast.json"
SAVED_MODEL, FROZEN_GRAPH = "saved_model", "frozen_graph.pb"
OUTPUT = "forecast"
CPU_FP32 = devices.Placement("cpu", "fp32", False, None)


class ExportError(errors.Error):
  """A bad export request; one line for the user."""


def parse_args(argv):
  p = errors.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--experiment_dir", required=True, help="the run's directory (with flags.json)")
  p.add_argument("--load", type=int, required=True, help="the checkpoint to export")
  p.add_argument("--out", default="", help="where to write (default: DIR/export-N); must not exist")
  p.add_argument("--batch_size", type=int, default=0,
                 help="fix the batch dimension (0: any), e.g. for the offline converter")
  p.add_argument("--data_dir", default="",
                 help="H3.6M or CMU runs without a stored normalisation: the data it is recomputed "
                      "from (default: the run's)")
  args = p.parse_args(argv)
  if args.batch_size < 0:
    raise ExportError("--batch_size must be 0 (any) or more, got {}".format(args.batch_size))
  args.out = args.out or os.path.join(args.experiment_dir, "export-{}".format(args.load))
  if os.path.exists(args.out):
    raise ExportError("--out {} exists; choose another or delete it".format(args.out))
  return args


def model_flags(args):
  """(the dataset module, the run's flags from flags.json, on the CPU in fp32)."""
  recorded = rundir.read_flags(args.experiment_dir)
  if recorded is None or recorded.get("dataset") not in datasets.DATASETS:
    raise ExportError("{} holds no {} naming the run's dataset ({})".format(
        args.experiment_dir, rundir.FLAGS_NAME, ", ".join(sorted(datasets.DATASETS))))
  dataset = datasets.get(recorded["dataset"])
  argv = ["--experiment_dir", args.experiment_dir, "--load", str(args.load)]
  if args.data_dir:
    argv += ["--data_dir", args.data_dir]
  flags = run.parse(dataset, recorded.get("prog", "export"), argv)
  return dataset, flags.replace(placement=CPU_FP32, dropout_keep=1.0)


def frozen_model(flags, input_size, source_len, checkpoint):
  """The model's forward pass with `checkpoint` folded into constants:
  (GraphDef, name of its output [N, out, P], names of its constants that were variables)."""
  net = build_model(flags, input_size, source_len, seed=0, training=False)
  with tf.Session(graph=net.graph, config=tf.ConfigProto(device_count={"GPU": 0})) as sess:
    initialize_or_restore(sess, net, checkpoint, flags.load)
    output = net.model.outputs.op.name
    frozen = tf.graph_util.convert_variables_to_constants(sess, net.graph.as_graph_def(), [output])
  variables = {v.op.name for v in net.graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)}
  return frozen, output + ":0", [node.name for node in frozen.node if node.name in variables]


def weights_as_inputs(frozen, names):
  """(a copy of the GraphDef `frozen` with the constants `names` turned into placeholders of
  their dtype and shape, {name: the constant's value})."""
  model, weights = tf.GraphDef(), {}
  model.CopyFrom(frozen)
  for node in model.node:
    if node.name in names:
      weights[node.name] = tf.make_ndarray(node.attr["value"].tensor)
      dtype = node.attr["dtype"].type
      node.op = "Placeholder"
      node.ClearField("attr")
      node.attr["dtype"].type = dtype
      node.attr["shape"].shape.CopyFrom(tf.TensorShape(weights[node.name].shape).as_proto())
  return model, weights


def weight_variables(weights):
  """{name: variable} for `weights` {name: array}, named as in the checkpoint, holding zeros
  until each is loaded with its array."""
  return {name: tf.Variable(tf.zeros(value.shape, value.dtype), trainable=False, name=name)
          for name, value in sorted(weights.items())}


def model_runner(model, output, target_len, variables):
  """run_model(encoder [N, in-1, P], first decoder input [N, 1, P]) -> [N, out, P]:
  the GraphDef `model` imported, its weight placeholders reading `variables`
  (the other decoder inputs are never read)."""
  def run_model(encoder, first_decoder):
    decoder = tf.tile(first_decoder, [1, target_len, 1])  # [N, out, P]
    feeds = {"inputs/enc_in:0": encoder, "inputs/dec_in:0": decoder}
    for name, variable in variables.items():
      with tf.name_scope(variable.op.name + "/"):
        feeds[name + ":0"] = variable.value()  # one read that every step uses
    (prediction,) = tf.import_graph_def(model, input_map=feeds, return_elements=[output],
                                        name="model")
    return prediction
  return run_model


def inference_graph(dataset, flags, args):
  """The export graph, the model's weights in variables (as constants, which every step of
  the roll-out reads, TensorFlow's graph optimiser would copy them once for each reading op).
  Returns (graph, {name: input placeholder}, forecast, [(variable, its value)])."""
  directory = rundir.experiment_dir(flags, [])
  checkpoint = checkpoints.find(directory, args.load)
  normalisation = dataset.normalisation_of_run(flags, rundir.read_normalisation(directory))
  input_size, source_len = dataset.inference_shape(flags, normalisation)
  frozen, output, names = frozen_model(flags, input_size, source_len, checkpoint)
  model, weights = weights_as_inputs(frozen, names)
  graph = tf.Graph()
  with graph.as_default():
    variables = weight_variables(weights)
    inputs, forecast = dataset.inference_graph(
        flags, model_runner(model, output, flags.seq_length_out, variables), normalisation,
        args.batch_size or None)
    forecast = tf.identity(forecast, name=OUTPUT)
  return graph, inputs, forecast, [(variables[n], value) for n, value in sorted(weights.items())]


def manifest(dataset, flags, args, inputs, forecast):
  """What forecast.py and a reader need: dataset, shapes and node names."""
  def describe(t):
    return {"node": t.op.name, "shape": t.shape.as_list(), "dtype": t.dtype.name}

  return {"dataset": flags.dataset, "checkpoint": checkpoints.path(args.experiment_dir, args.load),
          "code_version": version.code_version(), "model": flags.model,
          "inputs": {k: describe(v) for k, v in inputs.items()}, "output": describe(forecast),
          "observed_frames": inputs["observed"].shape.as_list()[1],
          "forecast_frames": forecast.shape.as_list()[1],
          "frames_per_second": dataset.FRAMES_PER_SECOND}


def write_saved_model(sess, inputs, forecast, path):
  """The session's graph and variables as a SavedModel with one serving signature."""
  builder = tf.saved_model.builder.SavedModelBuilder(path)
  signature = tf.saved_model.signature_def_utils.predict_signature_def(
      inputs=inputs, outputs={OUTPUT: forecast})
  builder.add_meta_graph_and_variables(
      sess, [tf.saved_model.tag_constants.SERVING], signature_def_map={
          tf.saved_model.signature_constants.DEFAULT_SERVING_SIGNATURE_DEF_KEY: signature})
  builder.save()


def write(graph, inputs, forecast, weights, info, out):
  """SavedModel (weights in variables), frozen graph (weights as constants, only what the
  forecast needs) and manifest into a new directory `out`, built beside it and renamed when
  complete. `weights`: [(variable, value)]."""
  tmp = "{}.tmp{}".format(out.rstrip("/"), os.getpid())
  try:
    with tf.Session(graph=graph) as sess:
      for variable, value in weights:
        variable.load(value, sess)
      write_saved_model(sess, inputs, forecast, os.path.join(tmp, SAVED_MODEL))
      frozen = tf.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), [OUTPUT])
    with open(os.path.join(tmp, FROZEN_GRAPH), "wb") as f:
      f.write(frozen.SerializeToString())
    with open(os.path.join(tmp, MANIFEST), "w") as f:
      json.dump(info, f, indent=1, sort_keys=True)
    os.rename(tmp, out)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def main(argv):
  args = parse_args(argv)
  dataset, flags = model_flags(args)
  graph, inputs, forecast, weights = inference_graph(dataset, flags, args)
  info = manifest(dataset, flags, args, inputs, forecast)
  write(graph, inputs, forecast, weights, info, args.out)
  print("Wrote {} ({}, {})".format(args.out, SAVED_MODEL, FROZEN_GRAPH))
  for name, tensor in sorted(info["inputs"].items()) + [(OUTPUT, info["output"])]:
    print("  {:<10} node {:<12} {} {}".format(name, tensor["node"], tensor["dtype"],
                                               tensor["shape"]))
  return 0


if __name__ == "__main__":
  sys.exit(errors.run_main(main))
