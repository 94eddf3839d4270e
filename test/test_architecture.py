"""The package's shape (one-way imports, module and function sizes, dataset
knowledge only in tprnn/datasets), its read-only config, the one gradient
pipeline, and what a run keeps: its normalisation, only models that predict
finite values, and progress with the steps left."""

import ast
import glob
import os
import re
import shutil

import h5py
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from tprnn import datasets
from tprnn import gradients
from tprnn.evaluation.report import Best, Criterion
from tprnn.training import run
from tprnn.util import devices
import export
import tprnn_train_human
from conftest import H36M_DIR, ROOT, SHARED, TINY, argv_of, need, run_script
from test_data_utils import PUBLISHED_OFFSET, published_positions
from test_human_script import assert_row, euler_error, table_row

# The rooms, lowest first: a module imports lower rooms, or its own package.
LAYERS = [("tprnn/util/", "tprnn/__init__.py"),
          ("tprnn/lstm.py",),
          ("tprnn/prism.py", "tprnn/gradients.py", "data_utils.py"),
          ("tprnn_basic_model.py", "tprnn_generic_model.py", "load.py"),
          ("tprnn/parallel/", "tprnn/evaluation/",
           "tprnn/downloads/"),
          ("tprnn/config.py",),
          ("tprnn/datasets/", "tprnn/training/"),
          ("tprnn_train_human.py", "tprnn_train_penn.py", "tprnn_train_cmu.py", "export.py",
           "forecast.py", "visualize.py")]


def code_files():
  return sorted(glob.glob(os.path.join(ROOT, "*.py")) + glob.glob(
      os.path.join(ROOT, "tprnn", "**", "*.py"), recursive=True))


def room(path):
  """(layer, package) of a project file relative to ROOT."""
  for layer, prefixes in enumerate(LAYERS):
    for prefix in prefixes:
      if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
        return layer, prefix
  raise AssertionError("{} is in no room of LAYERS".format(path))


def module_path(name):
  """The project file of an imported module name, or None (not ours)."""
  for candidate in (name.replace(".", "/") + ".py", name.replace(".", "/") + "/__init__.py"):
    if os.path.exists(os.path.join(ROOT, candidate)):
      return candidate
  return None


def imported(tree):
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      yield node.module
      yield from (node.module + "." + alias.name for alias in node.names)


def test_imports_go_one_way():
  wrong = []
  for path in code_files():
    relative = os.path.relpath(path, ROOT)
    layer, package = room(relative)
    with open(path) as f:
      names = set(imported(ast.parse(f.read())))
    for target in filter(None, map(module_path, names)):
      if target.endswith("__init__.py") and target != "tprnn/datasets/__init__.py":
        continue  # a package's empty __init__
      target_layer, target_package = room(target)
      if target_layer > layer or (target_layer == layer and target_package != package):
        wrong.append("{} imports {}".format(relative, target))
  assert not wrong


def test_no_module_over_400_lines_and_no_function_over_50():
  long = []
  for path in code_files() + glob.glob(os.path.join(ROOT, "benchmarks", "*.py")):
    with open(path) as f:
      text = f.read()
    if text.count("\n") > 400:
      long.append("{}: {} lines".format(path, text.count("\n")))
    for node in ast.walk(ast.parse(text)):
      if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno >= 50:
        long.append("{}: {} has {} lines".format(path, node.name, node.end_lineno - node.lineno + 1))
  assert not long


def test_only_the_datasets_test_which_dataset_it_is():
  """No comparison with a dataset's name (or a key only one dataset's files have)."""
  names = set(datasets.DATASETS)
  found = []
  for path in code_files():
    if os.path.relpath(path, ROOT).startswith("tprnn/datasets/"):
      continue
    with open(path) as f:
      tree = ast.parse(f.read())
    for node in ast.walk(tree):
      if isinstance(node, ast.Compare):
        parts = [node.left] + node.comparators
        if any(isinstance(p, ast.Constant) and p.value in names | {"pck"} for p in parts):
          found.append("{}:{}".format(os.path.relpath(path, ROOT), node.lineno))
  assert not found


def test_config_is_read_only_and_parsing_probes_nothing():
  flags = tprnn_train_human.parse_flags(["--device", "gpu", "--rnn_size", "8"])
  with pytest.raises(AttributeError, match="read-only"):
    flags.rnn_size = 16
  assert flags.replace(rnn_size=16).rnn_size == 16 and flags.rnn_size == 8
  assert not hasattr(flags, "placement")  # no GPU here: resolving it is the error, parsing is not
  with pytest.raises(devices.DeviceError, match="--device gpu"):
    run.with_runtime(flags)


def test_averaging_comes_before_clipping():
  """With a 'mean' that triples every gradient and a clip norm below it, the
  update is the clipped triple: the stages run in the pipeline's order."""
  class Model(object):
    def __init__(self):
      self.w = tf.Variable([3.0, 4.0])
      self.loss = 0.5 * tf.reduce_sum(tf.square(self.w))  # gradient = w, norm 5
      self.global_step = tf.Variable(0, trainable=False)
      self.config = type("C", (), {"max_gradient_norm": 1.0})

    def make_optimizer(self):
      return tf.train.GradientDescentOptimizer(1.0)

    def gradients(self, loss, params):
      return tf.gradients(loss, params)

  class Tripling(object):
    def averaged(self, optimizer):
      return gradients.Averaged(optimizer, lambda ts: [3.0 * t for t in ts])

  graph = tf.Graph()
  with graph.as_default():
    model = Model()
    update = gradients.training_op(model, Tripling(), lambda opt: opt)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(update)
      w = sess.run(model.w)
  np.testing.assert_allclose(w, [3.0 - 0.6, 4.0 - 0.8], rtol=1e-6)  # the unit direction, norm 1


def test_best_model_rule_reads_each_criterion_direction():
  def pck(last, mean):
    return [Criterion("last", last, True), Criterion("mean", mean, True)]

  best = Best()
  assert best.update(pck(0.5, 0.6), 10)
  assert not best.update(pck(0.4, 0.5), 20)  # both worse
  assert best.update(pck(0.55, 0.1), 30) and best.step == 30  # either better is enough
  error = Best()
  assert error.update([Criterion("e", 1.0, False)] * 2, 1)
  assert not error.update([Criterion("e", 2.0, False)] * 2, 2)


# ----------------------------------------------------------------------------
# What a run keeps


def train_tiny(h36m, train_dir, **changes):
  flags = dict(TINY, **{"--data_dir": h36m, "--train_dir": str(train_dir), "--iterations": "20",
                        "--test_every": "10", "--save_every": "10"})
  flags.update({"--" + k: v for k, v in changes.items()})
  return run_script(tprnn_train_human, argv_of(flags))


def only_directory(train_dir):
  (found,) = {os.path.dirname(p) for p in glob.glob(str(train_dir) + "/**/flags.json",
                                                    recursive=True)}
  return found


def independent_normalisation(h36m):
  """Mean, std (1 where dropped) and kept dimensions of the training subjects'
  50 Hz walking frames, from the text files."""
  frames = np.concatenate([np.loadtxt(os.path.join(h36m, "S{}".format(s), "walking_{}.txt".format(a)),
                                      delimiter=",") for s in (1, 6, 7, 8, 9, 11) for a in (1, 2)])
  mean, std = frames.mean(axis=0), frames.std(axis=0)
  kept = np.flatnonzero(std >= 1e-4)
  return mean, np.where(std >= 1e-4, std, 1.0), kept


def sample(directory, data_dir, samples_file):
  code, out, err = run_script(tprnn_train_human, [
      "--experiment_dir", directory, "--load", "20", "--sample", "--data_dir", data_dir,
      "--samples_file", samples_file])
  assert code == 0, err
  with h5py.File(samples_file, "r") as f:
    return out, f["expmap/preds/walking_3"][()]


@pytest.mark.slow
def test_normalisation_is_stored_and_serves_sample_and_export(h36m, tmp_path):
  code, _, err = train_tiny(h36m, tmp_path / "runs")
  assert code == 0, err
  directory = only_directory(tmp_path / "runs")
  with np.load(os.path.join(directory, "normalisation.npz")) as stored:
    mean, std, kept = independent_normalisation(h36m)
    np.testing.assert_allclose(stored["mean"], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stored["std"], std, rtol=1e-5)
    np.testing.assert_array_equal(stored["dim_to_use"], kept)
  # --sample needs only the test subject now, and predicts what the full data gives
  s5_only = tmp_path / "s5_only"
  shutil.copytree(os.path.join(h36m, "S5"), str(s5_only / "S5"))
  out, from_s5 = sample(directory, str(s5_only), str(tmp_path / "s5.h5"))
  assert "Read 0 training and 2 test sequences" in out
  _, from_all = sample(directory, h36m, str(tmp_path / "all.h5"))
  np.testing.assert_allclose(from_s5, from_all, rtol=1e-6)
  # a run without the file (older runs, the authors') recomputes it: the same predictions
  os.remove(os.path.join(directory, "normalisation.npz"))
  out, recomputed = sample(directory, h36m, str(tmp_path / "old.h5"))
  assert "Read 12 training" in out
  np.testing.assert_allclose(recomputed, from_all, rtol=1e-6)


@pytest.mark.slow
def test_export_reads_no_data_when_the_run_stored_its_normalisation(h36m, tmp_path):
  assert train_tiny(h36m, tmp_path / "runs")[0] == 0
  directory = only_directory(tmp_path / "runs")
  code, _, err = run_script(export, ["--experiment_dir", directory, "--load", "20",
                                     "--data_dir", str(tmp_path / "no_such_data")])
  assert code == 0, err
  assert os.path.exists(os.path.join(directory, "export-20", "saved_model", "saved_model.pb"))


@pytest.mark.slow
def test_a_model_that_predicts_nan_is_never_saved(h36m, tmp_path):
  """One step at a huge learning rate leaves finite weights (~1e5) whose
  every prediction is NaN: the final save refuses it and the run fails."""
  code, _, err = train_tiny(h36m, tmp_path / "runs", iterations="1", learning_rate="1e6")
  assert code == 1
  assert "the model predicts non-finite values after step 1; not saved" in err
  assert "(last good checkpoint: none)" in err
  assert not glob.glob(str(tmp_path / "runs") + "/**/checkpoint-*", recursive=True)


@pytest.mark.slow
def test_progress_says_how_far_and_how_long(h36m, tmp_path):
  code, out, err = train_tiny(h36m, tmp_path / "runs")
  assert code == 0, err
  lines = re.findall(r"^step (\d{4}); step_loss: [0-9.]+  \([0-9.]+ ms/step, (\d+)/(\d+) done, "
                     r"(?:\d+h \d\dm|\d+m \d\ds|\d+s) left\)$", out, re.M)
  assert [(int(a), int(b), int(c)) for a, b, c in lines] == [(0, 1, 20), (10, 11, 20)]
  code, out, err = train_tiny(h36m, tmp_path / "runs", load="20", more="10")
  assert code == 0, err
  assert re.search(r"^step 0020; step_loss: [0-9.]+  \([0-9.]+ ms/step, 21/30 done, ", out, re.M)


# What this project's sampling of ../shared/runs/h36m_walking_basic printed when the run was recorded
# there (its spec, section 11), at the table's horizons: Euler error, then mm.
RECORDED = {"error": [0.268, 0.439, 0.587, 0.630, 0.717, 0.792],
            "position_error": [21.3, 33.9, 47.5, 50.0, 54.0, 64.2],
            "mpjpe": [21.4, 34.5, 48.3, 50.5, 53.9, 64.2],
            "mpjpe22": [24.4, 38.7, 53.4, 56.0, 61.4, 73.6]}
HORIZONS = [1, 3, 7, 9, 13, 24]
# docs/PROTOCOL.md section 8: the 22 joints the field's models predict
FIELD_22 = [2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 14, 15, 17, 18, 19, 21, 22, 25, 26, 27, 29, 30]


@pytest.mark.slow
def test_a_run_written_before_the_layout_samples_its_recorded_numbers(tmp_path):
  """../shared/runs/h36m_walking_basic was trained by this project before tprnn/ existed (commit
  44ef3be, no normalisation.npz): it restores and samples. The errors recomputed here from its
  samples file's ground truth and predictions (scipy's rotations, the published skeleton) are the
  printed table, the file's mean_walking_* arrays and the figures recorded with the run."""
  run_dir = need(os.path.join(SHARED, "runs", "h36m_walking_basic"))
  directory = str(tmp_path / "run")
  shutil.copytree(run_dir, directory)
  os.chmod(directory, 0o755)
  samples_file = str(tmp_path / "samples.h5")
  code, out, err = run_script(tprnn_train_human, [
      "--experiment_dir", directory, "--load", "7000", "--sample", "--device", "cpu",
      "--data_dir", need(H36M_DIR), "--samples_file", samples_file])
  assert code == 0, err
  with h5py.File(samples_file, "r") as f:
    gt, preds = (np.stack([f["expmap/{}/walking_{}".format(kind, i)][()] for i in range(8)])
                 for kind in ("gt", "preds"))
    stored = {key: f["mean_walking_" + key][()] for key in RECORDED}
  distance = np.linalg.norm(published_positions(preds) - published_positions(gt), axis=-1).mean(0)
  moving = np.linalg.norm(np.reshape(PUBLISHED_OFFSET, (32, 3)), axis=1) > 1  # section 7's 26
  recomputed = {"error": euler_error(preds, gt, "pred"),  # --sample's dimension rule
                "position_error": distance[:, moving].mean(-1), "mpjpe": distance.mean(-1),
                "mpjpe22": distance[:, FIELD_22].mean(-1)}
  assert_row(table_row(out, "walking"), recomputed["error"])
  for key, errors in recomputed.items():
    np.testing.assert_allclose(stored[key], errors, rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(errors[HORIZONS], RECORDED[key], rtol=0,
                               atol=0.5 * (0.001 if key == "error" else 0.1) + 1e-6, err_msg=key)
