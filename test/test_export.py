"""export.py and forecast.py: the SavedModel and the frozen graph, loaded in a
fresh process that imports only TensorFlow and numpy, reproduce --sample's
predictions; the frozen graph holds nothing of training; the SavedModel holds
each weight once, in a variable; forecast.py on a real H3.6M file; bad inputs
and arguments."""

import json
import os
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from tprnn.util import devices
import export
import load
import tprnn_train_human
import tprnn_train_penn
from conftest import H36M_DIR, argv_of, need, penn_labels, run_script

# Loads an export with TensorFlow and numpy alone; reports its predictions and graph.
FRESH_PROCESS = '''
import json, sys
import numpy as np
import tensorflow.compat.v1 as tf
tf.disable_eager_execution()
export_dir, feeds_path, out = sys.argv[1:4]
feeds = dict(np.load(feeds_path))
with tf.Session(graph=tf.Graph()) as sess:
  meta = tf.saved_model.loader.load(sess, ["serve"], export_dir + "/saved_model")
  signature = meta.signature_def["serving_default"]
  saved = sess.run(signature.outputs["forecast"].name,
                   {signature.inputs[k].name: v for k, v in feeds.items()})
frozen_def = tf.GraphDef()
with open(export_dir + "/frozen_graph.pb", "rb") as f:
  frozen_def.ParseFromString(f.read())
graph = tf.Graph()
with graph.as_default():
  tf.import_graph_def(frozen_def, name="")
operations = graph.get_operations()
with tf.Session(graph=graph) as sess:
  frozen = sess.run("forecast:0", {k + ":0": v for k, v in feeds.items()})
np.savez(out, saved=saved, frozen=frozen)
with open(out + ".json", "w") as f:
  json.dump({"types": sorted({o.type for o in operations}),
             "dtypes": sorted({t.dtype.name for o in operations for t in o.outputs}),
             "names": [o.name for o in operations],
             "modules": sorted(sys.modules)}, f)
'''
PROJECT_MODULES = {"tprnn", "tprnn_basic_model", "tprnn_generic_model", "data_utils", "load",
                   "export", "forecast"}
# Op types of variables and savers; names of gradient and optimizer scopes. (Frozen
# variables become Const/Identity ops that keep their old names.)
TRAINING_TYPES = re.compile(r"Variable|Assign|Apply|Save|Restore")
TRAINING_NAMES = re.compile(r"(^|/)gradients(_\d+)?/|Adam|GradientDescent|(^|/)save(_\d+)?/")


def fresh_process(tmp_path, export_dir, feeds):
  """(SavedModel output, frozen graph output, report) from a new Python."""
  script = tmp_path / "fresh.py"
  script.write_text(FRESH_PROCESS)
  np.savez(str(tmp_path / "feeds.npz"), **feeds)
  out = str(tmp_path / "result.npz")
  subprocess.run([sys.executable, str(script), export_dir, str(tmp_path / "feeds.npz"), out],
                 check=True, cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=""),
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
  result = np.load(out)
  with open(out + ".json") as f:
    return result["saved"], result["frozen"], json.load(f)


def check_inference_graph(report):
  assert not PROJECT_MODULES & {m.split(".")[0] for m in report["modules"]}
  assert set(report["dtypes"]) <= {"float32", "int32"}, report["dtypes"]
  assert not [t for t in report["types"] if TRAINING_TYPES.search(t)], report["types"]
  assert not [n for n in report["names"] if TRAINING_NAMES.search(n)]
  assert "Placeholder" in report["types"] and "Const" in report["types"]


def check_export_reproduces_samples(tmp_path, export_dir, samples, action):
  """A fresh process running the export on the observed frames of `action`'s 8 windows in an
  exp-map samples file gives their --sample predictions; the graph holds nothing of training.
  Returns (observed [8, in, D], predictions [8, out, D])."""
  with h5py.File(samples, "r") as f:
    observed = np.stack([f["expmap/observed/{}_{}".format(action, i)][()] for i in range(8)])
    preds = np.stack([f["expmap/preds/{}_{}".format(action, i)][()] for i in range(8)])
  saved, frozen, report = fresh_process(tmp_path, export_dir, {"observed": observed})
  # float32 rounding: the inference graph's products may take other kernels (values reach 50)
  np.testing.assert_allclose(saved, preds, rtol=1e-6, atol=1e-5)
  np.testing.assert_allclose(frozen, preds, rtol=1e-6, atol=1e-5)
  check_inference_graph(report)
  return observed, preds


def trained_human(tmp_path, **flags):
  """A tiny run on the shared walking data, its --sample file and its export.
  Returns (samples path, export directory)."""
  need(H36M_DIR)
  base = {"--data_dir": H36M_DIR, "--action": "walking", "--rnn_size": "8",
          "--seq_length_out": "10", "--iterations": "10", "--test_every": "10",
          "--seed": "2", "--train_dir": str(tmp_path / "exp")}
  base.update(flags)
  code, out, err = run_script(tprnn_train_human, argv_of(base))
  assert code == 0, err
  directory = re.search(r"Experiment directory: (\S+)", out).group(1)
  samples = str(tmp_path / "samples.h5")
  code, _, err = run_script(tprnn_train_human, ["--experiment_dir", directory, "--load", "10",
                                                "--sample", "--samples_file", samples])
  assert code == 0, err
  code, out, err = run_script(export, ["--experiment_dir", directory, "--load", "10",
                                       "--out", str(tmp_path / "export")])
  assert code == 0, err
  assert re.search(r"observed +node observed +float32 \[None, 50, 99\]", out)
  assert re.search(r"forecast +node forecast +float32 \[None, 10, 99\]", out)
  return samples, str(tmp_path / "export")


# The basic model in fp32 is exported in test_cmu.py and by human_export below.
MODELS = [{"--model": "generic", "--tprnn_layers": "3", "--dropout_keep": "0.8"},
          {"--model": "basic", "--mixed_precision": None}]


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_h36m_export_reproduces_sample_in_a_fresh_process(tmp_path, model):
  if "--mixed_precision" in model and not devices.cpu_supports_bf16():
    pytest.skip("this CPU or TensorFlow has no bf16 support")
  samples, export_dir = trained_human(tmp_path, **model)
  check_export_reproduces_samples(tmp_path, export_dir, samples, "walking")


@pytest.mark.slow
def test_penn_export_reproduces_sample_in_a_fresh_process(tmp_path):
  labels = penn_labels(tmp_path / "labels", range(1, 25))
  base = {"--data_dir": labels, "--rnn_size": "8", "--iterations": "10", "--test_every": "10",
          "--seed": "2", "--train_dir": str(tmp_path / "exp")}
  code, out, err = run_script(tprnn_train_penn, argv_of(base))
  assert code == 0, err
  directory = re.search(r"Experiment directory: (\S+)", out).group(1)
  samples = str(tmp_path / "samples.h5")
  code, _, err = run_script(tprnn_train_penn, ["--experiment_dir", directory, "--load", "10",
                                               "--sample", "--samples_file", samples])
  assert code == 0, err
  code, _, err = run_script(export, ["--experiment_dir", directory, "--load", "10", "--out",
                                     str(tmp_path / "export"), "--batch_size", "64"])
  assert code == 0, err
  with h5py.File(samples, "r") as f:
    rows = slice(100, 164)
    length, centre = f["bounding_box_length"][rows], f["box_centre"][rows]
    observed = load.to_pixels(f["observed"][rows], length, centre).astype(np.float32)
    preds = f["predictions"][rows]
  saved, frozen, report = fresh_process(tmp_path, str(tmp_path / "export"), {
      "observed": observed, "box_centre": centre.astype(np.float32),
      "box_size": length.astype(np.float32)})
  assert saved.shape == (64, 16, 13, 2)
  for pixels in (saved, frozen):  # back to normalised units to compare with --sample's
    normalised = (pixels - centre[:, None, None]) / (length[:, None, None, None] / 2)
    np.testing.assert_allclose(np.concatenate([normalised[..., 0], normalised[..., 1]], axis=2),
                               preds, atol=1e-5)
  check_inference_graph(report)


@pytest.fixture(scope="module")
def human_export(tmp_path_factory):
  return trained_human(tmp_path_factory.mktemp("export"))


@pytest.mark.slow
def test_forecast_of_a_real_file_equals_the_exported_model(human_export, tmp_path):
  _, export_dir = human_export
  source = os.path.join(H36M_DIR, "S5", "walking_1.txt")
  out = str(tmp_path / "forecast.npy")
  code, stdout, err = run_script(forecast_module(), ["--model", export_dir, "--input", source,
                                                     "--output", out])
  assert code == 0, err
  frames = np.loadtxt(source, delimiter=",")
  window = frames[len(frames) - 1::-2][:50][::-1]  # the last 50 frames at 25 fps, in order
  _, expected, _ = fresh_process(tmp_path, export_dir, {"observed": window.astype(np.float32)[None]})
  np.testing.assert_allclose(np.load(out), expected[0], atol=1e-6)
  as_text = str(tmp_path / "forecast.txt")
  code, _, err = run_script(forecast_module(), ["--model", export_dir, "--input", source,
                                                "--output", as_text])
  assert code == 0, err
  np.testing.assert_allclose(np.loadtxt(as_text, delimiter=",", ndmin=2), expected[0], rtol=1e-6,
                             atol=1e-6)


def forecast_module():
  import forecast
  return forecast


# The basic model's weights in a checkpoint (not its learning rate, step or velocity filters).
WEIGHT_NAME = re.compile(r"(kernel|bias|dense_\d_[Wb])$")


def constant_bytes(graph_def):
  return sum(tf.make_ndarray(n.attr["value"].tensor).nbytes for n in graph_def.node
             if n.op == "Const")


@pytest.mark.slow
def test_export_holds_each_weight_once_as_a_variable(human_export):
  """The SavedModel keeps every weight once, in a variable named as in the checkpoint, and not
  as a constant too (a constant that all steps read costs TensorFlow's graph optimiser a copy
  per step: 40 s and 7 GB at rnn_size 1024); the frozen graph holds one copy of each."""
  _, export_dir = human_export
  with open(os.path.join(export_dir, export.MANIFEST)) as f:
    checkpoint = json.load(f)["checkpoint"]
  weights = {name: shape for name, shape in tf.train.list_variables(checkpoint)
             if WEIGHT_NAME.search(name)}
  weight_bytes = 4 * sum(int(np.prod(shape)) for shape in weights.values())
  with tf.Session(graph=tf.Graph()) as sess:
    tf.saved_model.loader.load(sess, ["serve"], os.path.join(export_dir, export.SAVED_MODEL))
    variables = {v.op.name: v.shape.as_list() for v in tf.global_variables()}
    saved = sess.graph.as_graph_def()
  assert len(weights) == 10 and {name: variables.get(name) for name in weights} == weights
  assert constant_bytes(saved) < weight_bytes / 4
  frozen = tf.GraphDef()
  with open(os.path.join(export_dir, export.FROZEN_GRAPH), "rb") as f:
    frozen.ParseFromString(f.read())
  assert weight_bytes <= constant_bytes(frozen) < 1.25 * weight_bytes


@pytest.mark.slow
@pytest.mark.parametrize("content,message", [
    ("short", "30 frames at stride 2 give 15, the model observes 50"),
    ("narrow", "frames of shape [50], expected 99 exponential-map numbers a line, or a [T, 99] .npy"),
    ("nan", "frame 120 holds a non-finite value"),
    ("words", "not 99 exponential-map numbers a line, or a [T, 99] .npy (could not convert"),
])
def test_forecast_bad_inputs(human_export, tmp_path, content, message):
  _, export_dir = human_export
  frames = np.loadtxt(os.path.join(H36M_DIR, "S5", "walking_1.txt"), delimiter=",")[:200]
  path = tmp_path / "input.txt"
  if content == "short":
    np.savetxt(str(path), frames[:30], delimiter=",")
  elif content == "narrow":
    np.savetxt(str(path), frames[:, :50], delimiter=",")
  elif content == "nan":
    frames[119, 7] = np.nan
    np.savetxt(str(path), frames, delimiter=",")
  else:
    path.write_text("walking,forward\n")
  out = tmp_path / "out.npy"
  code, _, err = run_script(forecast_module(), ["--model", export_dir, "--input", str(path),
                                                "--output", str(out)])
  assert code == 1 and err.count("\n") == 1 and message in err, err
  assert not out.exists() and os.listdir(str(tmp_path)) == ["input.txt"]


@pytest.mark.parametrize("script,argv,message", [
    ("export", ["--load", "5"], "the following arguments are required: --experiment_dir"),
    ("export", ["--experiment_dir", "x", "--load", "five"],
     "argument --load: invalid int value: 'five'"),
    ("forecast", ["--model", "x", "--input", "y.txt"],
     "the following arguments are required: --output"),
    ("forecast", ["--model", "x", "--input", "y.txt", "--output", "z.npy", "--stride", "2.5"],
     "argument --stride: invalid int value: '2.5'"),
])
def test_export_and_forecast_argument_errors_are_one_line(script, argv, message):
  code, out, err = run_script(export if script == "export" else forecast_module(), argv)
  assert (code, out, err) == (1, "", "error: {}\n".format(message))


def test_export_and_forecast_refuse_what_they_cannot_use(tmp_path):
  code, _, err = run_script(export, ["--experiment_dir", str(tmp_path), "--load", "5"])
  assert code == 1 and "holds no flags.json naming the run's dataset" in err
  code, _, err = run_script(forecast_module(), ["--model", str(tmp_path), "--input", "x.txt",
                                                "--output", "y.npy"])
  assert code == 1 and "holds no forecast.json: give a directory written by export.py" in err
