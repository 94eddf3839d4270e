"""This project's NPU path on Ascend's real adapter (npu_bridge r1.2.0 and r1.6.0 from ../shared,
loaded by test/ascend_adapter.py), in one process: the session the adapter wants, XLA refused, overflows
that skip updates and move the loss scale, and one-rank training in every precision mode that
evaluates, saves, restores and loads on the CPU."""

import ast
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
import tensorflow.core.protobuf.config_pb2 as config_pb2
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

import ascend_adapter
from tprnn.training import checkpoints
from tprnn.training import graph
from tprnn.util import devices
import tprnn_train_human
from conftest import TINY, argv_of, checkpoint_dirs, human_flags, need, run_script, weights
from test_devices import assert_samples_of

MODELS = {"basic": {"--model": "basic"},
          "generic": {"--model": "generic", "--fix_generic_contexts": None, "--learning_rate": "0.01"}}
# Short sequences, two evaluations and saves; the gradient norm of these losses is far above 0.05
# (clipping active).
RUN = {"--seq_length_in": "4", "--seq_length_out": "4", "--iterations": "4", "--test_every": "2",
       "--save_every": "2", "--max_gradient_norm": "0.05"}
LOSS_SCALE_STATE = ("loss_scale", "good_steps", "bad_steps")
# One run per precision mode (the three fp16 modes build the same graph here; only the session's
# precision_mode differs): each model with loss scaling, the generic one also without.
MODE_MODELS = [("force_fp16", "basic"), ("allow_fp32_to_fp16", "basic"),
               ("allow_mix_precision", "generic"), ("must_keep_origin_dtype", "generic")]
# The adapter's ExponentialUpdateLossScaleManager as devices.NPU_LOSS_SCALE sets it, but raising after 3
# good steps instead of 1000, over 7 steps whose float status overflows at steps 1 and 3: after each
# step, (update applied, loss_scale, good_steps, bad_steps). An overflow skips the update, counts a bad
# step and restarts the good ones; the 2nd bad step, consecutive or not, halves the scale; the 3rd good
# step in a row doubles it; a change of scale resets both counts.
OVERFLOWS = "1,3"
SCALE_STEPS = [(True, 2.0 ** 32, 1, 0), (False, 2.0 ** 32, 0, 1), (True, 2.0 ** 32, 1, 1),
               (False, 2.0 ** 31, 0, 0), (True, 2.0 ** 31, 1, 0), (True, 2.0 ** 31, 2, 0),
               (True, 2.0 ** 32, 0, 0)]


def adapter_function(tag, module, name):
  """Function `name` of the adapter's npu_bridge/`module`, compiled on its own (its module imports
  what TF 2.x lacks)."""
  path = os.path.join(ascend_adapter.adapter_path(tag), "npu_bridge", module)
  with open(need(path), encoding="utf-8") as f:
    tree = ast.parse(f.read())
  (node,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
  namespace = {"config_pb2": config_pb2, "RewriterConfig": RewriterConfig}
  exec(compile(ast.Module(body=[node], type_ignores=[]), path, "exec"), namespace)
  return namespace[name]


@pytest.mark.parametrize("mode", devices.NPU_PRECISION_MODES)
def test_npu_session_is_the_one_the_adapter_asks_for(mode):
  """The adapter's own npu_config_proto (r1.6.0; r1.2.0 has none) finds nothing to change in our
  session config."""
  config = devices.session_config(devices.Placement("npu", mode, False, None))
  (npu,) = config.graph_options.rewrite_options.custom_optimizers
  assert npu.name == "NpuOptimizer" and npu.parameter_map["precision_mode"].s == mode.encode()
  assert npu.parameter_map["use_off_line"].b is True
  adapted = config_pb2.ConfigProto()
  adapted.CopyFrom(config)
  adapter_function("r1.6.0", "npu_init.py", "npu_config_proto")(adapted)
  assert adapted == config


def test_auto_picks_the_npu_in_force_fp16(adapter):
  placement = human_flags().placement
  assert (placement.device, placement.precision) == ("npu", "force_fp16")
  assert devices.describe(placement) == "Device: npu, precision: precision_mode force_fp16"


@pytest.mark.parametrize("device", ["npu", "auto"])
def test_xla_on_the_npu_is_refused_in_one_line(adapter, device):
  code, _, err = run_script(tprnn_train_human, ["--device", device, "--xla", "--data_dir", "nowhere"])
  assert code == 1 and err.count("\n") == 1
  assert "--xla does not apply on the NPU" in err


def test_overflow_skips_the_update_and_moves_the_loss_scale_by_the_adapters_rules(adapter, monkeypatch):
  assert devices.NPU_LOSS_SCALE["incr_every_n_steps"] == 1000  # docs/DEVICES.md's; 3 below
  monkeypatch.setitem(devices.NPU_LOSS_SCALE, "incr_every_n_steps", 3)
  monkeypatch.setenv(ascend_adapter.OVERFLOW_STEPS_ENV, OVERFLOWS)
  flags = human_flags(["--device", "npu", "--seq_length_in", "5", "--seq_length_out", "4"])
  net = graph.build_model(flags, 54, 5, seed=0)
  feeds = [np.random.RandomState(1).normal(size=(4, n, 54)).astype(np.float32) for n in (4, 4, 4)]
  with net.graph.as_default():
    trainable = tf.trainable_variables()
    state = {v.op.name: v for v in tf.global_variables() if v.op.name in LOSS_SCALE_STATE}
  with graph.open_session(flags.placement, net.graph) as sess:
    graph.initialize_or_restore(sess, net)
    before, updates = sess.run(trainable), 0
    for step, (applied, scale, good, bad) in enumerate(SCALE_STEPS):
      sess.run(net.step[0], graph.feed_dict(net.model, *feeds))
      after, at = sess.run(trainable), "after step {}".format(step)
      updates += applied
      assert any(not np.array_equal(a, b) for a, b in zip(after, before)) == applied, at
      assert sess.run(state) == {"loss_scale": scale, "good_steps": good, "bad_steps": bad}, at
      assert sess.run(net.model.global_step) == updates, at
      before = after


@pytest.fixture(scope="module")
def cpu_runs(h36m, tmp_path_factory):
  """{model: (weights after 4 steps, after 6 steps)} of CPU fp32 runs: 4 steps, then --load 4
  --more 2. Loss scaling by 2^32 is exact in fp32, and the stub float status reports no overflow
  unless asked, so the NPU runs must end with these weights."""
  found = {}

  def run(model):
    if model not in found:
      train_dir = str(tmp_path_factory.mktemp("cpu_" + model))
      flags = dict(TINY, **MODELS[model], **RUN, **{"--data_dir": h36m, "--train_dir": train_dir,
                                                     "--device": "cpu"})
      for more in ({}, {"--load": "4", "--more": "2"}):
        code, _, err = run_script(tprnn_train_human, argv_of(dict(flags, **more)))
        assert code == 0, err
      (directory,) = checkpoint_dirs(train_dir)
      found[model] = weights(directory, 4), weights(directory, 6)
    return found[model]
  return run


def assert_same_model(npu, cpu):
  """Equal to float rounding (multi-threaded sums; Adam magnifies last bits of its tiniest updates)."""
  for name in cpu:
    np.testing.assert_allclose(npu[name], cpu[name], rtol=1e-4, atol=1e-6, err_msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("mode,model", MODE_MODELS)
def test_one_rank_trains_evaluates_saves_restores_and_loads_on_the_cpu(
    adapter, h36m, tmp_path, cpu_runs, model, mode):
  flags = dict(TINY, **MODELS[model], **RUN, **{
      "--data_dir": h36m, "--train_dir": str(tmp_path), "--device": "npu", "--precision_mode": mode})
  code, out, err = run_script(tprnn_train_human, argv_of(flags))
  assert code == 0, err
  assert "precision: precision_mode {}".format(mode) in out and out.count("Global step:") == 2
  (directory,) = checkpoint_dirs(str(tmp_path))
  assert checkpoints.steps(directory) == [2, 4]
  scaled = mode in devices.NPU_FP16_MODES
  after4 = weights(directory, 4)
  assert (set(LOSS_SCALE_STATE) <= set(after4)) == scaled
  if scaled:
    assert (after4["loss_scale"], after4["good_steps"], after4["bad_steps"]) == (2.0 ** 32, 4, 0)
  cpu4, cpu6 = cpu_runs(model)
  assert_same_model(after4, cpu4)

  code, out, err = run_script(tprnn_train_human, argv_of(dict(flags, **{"--load": "4", "--more": "2"})))
  assert code == 0, err
  after6 = weights(directory, 6)
  assert after6["Variable_1"] == 6 and (not scaled or after6["good_steps"] == 6)
  assert_same_model(after6, cpu6)

  if mode == "force_fp16":  # the model card's mode, the basic model
    samples = str(tmp_path / "samples.h5")
    code, out, err = run_script(tprnn_train_human, argv_of(dict(flags, **{
        "--device": "cpu", "--sample": None, "--load": "6", "--samples_file": samples})))
    assert code == 0, err
    assert "Device: cpu" in out
    assert_samples_of(samples, h36m, after6, int(RUN["--seq_length_out"]), int(TINY["--rnn_size"]))
