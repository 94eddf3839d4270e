"""Device and precision plumbing: CPU bf16 and XLA against fp32, the GPU's
loss scaling, and the NPU without npu_bridge (the NPU with Ascend's real
adapter: test_ascend.py)."""

import re

import h5py
import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

import data_utils
from tprnn.datasets.h36m import SAMPLE_SOURCE_LEN
from tprnn.util import devices
from tprnn.training import graph
import tprnn_train_human
from conftest import checkpoint_dirs, human_flags, run_script, weights
from numpy_reference import basic_forward


def test_npu_without_npu_bridge_is_one_line_error():
  code, _, err = run_script(tprnn_train_human, ["--device", "npu", "--action", "walking"])
  assert code == 1 and err.count("\n") == 1
  assert "error: --device npu needs Ascend's TensorFlow adapter (npu_bridge)" in err


def test_unknown_device_and_precision_mode():
  code, _, err = run_script(tprnn_train_human, ["--device", "tpu"])
  assert code == 1 and "unknown --device 'tpu': expected one of auto, cpu, gpu, npu" in err
  code, _, err = run_script(tprnn_train_human, ["--precision_mode", "fp8"])
  assert code == 1 and "unknown --precision_mode 'fp8'" in err


def test_use_cpu_is_device_cpu():
  flags = human_flags(["--use_cpu"])
  assert flags.placement.device == "cpu"
  assert devices.session_config(flags.placement).device_count["GPU"] == 0


def test_gpu_mixed_precision_config_and_loss_scale():
  placement = devices.Placement("gpu", "fp16", False, None)
  config = devices.session_config(placement)
  assert config.graph_options.rewrite_options.auto_mixed_precision == RewriterConfig.ON
  wrapped = devices.loss_scaling(placement)(tf.train.GradientDescentOptimizer(0.1))
  assert isinstance(wrapped, tf.train.experimental.MixedPrecisionLossScaleOptimizer)


def xla_clusters_run(sess, fetches, feed):
  """(values of `fetches`, how many compiled XLA clusters ran to give them)."""
  metadata = tf.RunMetadata()
  values = sess.run(fetches, feed, options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE),
                    run_metadata=metadata)
  return values, sum(" = _XlaRun(" in node.timeline_label
                     for device in metadata.step_stats.dev_stats for node in device.node_stats)


def train_steps(argv, steps=4):
  """Losses and predictions of a few training steps on fixed random feeds, and the XLA clusters
  each step and the predictions ran."""
  flags = human_flags(["--rnn_size", "16", "--seq_length_in", "6", "--seq_length_out", "5"] + argv)
  net = graph.build_model(flags, 54, 6, seed=1)
  rng = np.random.RandomState(0)
  feeds = [rng.normal(size=(8, n, 54)).astype(np.float32) for n in (5, 5, 5)]
  with tf.Session(graph=net.graph, config=devices.session_config(flags.placement)) as sess:
    sess.run(tf.global_variables_initializer())
    feed = graph.feed_dict(net.model, *feeds)
    losses, clusters = [], []
    for _ in range(steps):
      (_, loss), ran = xla_clusters_run(sess, net.step[:2], feed)
      losses.append(loss)
      clusters.append(ran)
    outputs, ran = xla_clusters_run(sess, net.model.outputs, feed)
    return np.array(losses), np.array(outputs), clusters + [ran]


@pytest.mark.slow
def test_xla_compiles_on_the_cpu_and_gives_fp32_numbers_to_rounding():
  if not devices.cpu_supports_xla():
    pytest.skip("this TensorFlow has no session option to compile CPU graphs with XLA")
  losses, outputs, plain = train_steps([])
  xla_losses, xla_outputs, compiled = train_steps(["--xla"])
  assert sum(plain) == 0 and min(compiled) >= 1, (plain, compiled)
  np.testing.assert_allclose(xla_losses, losses, rtol=1e-4)
  np.testing.assert_allclose(xla_outputs, outputs, atol=1e-4)
  assert not np.array_equal(xla_outputs, outputs)  # XLA's fused kernels round differently


def test_xla_where_no_session_can_compile_cpu_graphs_says_so_and_runs_without(monkeypatch, capsys):
  monkeypatch.setattr(devices, "cpu_supports_xla", lambda: False)  # TF 1.15
  assert not devices.resolve("cpu", False, "force_fp16", True).xla
  assert capsys.readouterr().out == ("--xla: this TensorFlow cannot compile CPU graphs with XLA from a "
                                     "session; running without XLA.\n")


TRAIN = ["--action", "walking", "--rnn_size", "64", "--iterations", "20", "--test_every", "20",
         "--save_every", "20", "--seed", "2", "--seq_length_in", "20"]


def step_losses(out):
  return np.array([float(x) for x in re.findall(r"step_loss: ([0-9.]+)", out)])


def walking_row(out):
  return np.array([float(x) for x in re.findall(r"walking +\|(.*)\|", out)[-1]
                   .replace("n/a", "nan").split("|")])


@pytest.mark.slow
def test_cpu_bf16_training_close_to_fp32_and_checkpoint_restores_in_fp32(h36m, tmp_path):
  if not devices.cpu_supports_bf16():
    pytest.skip("no bf16: the CPU lacks AVX512_BF16/AMX_BF16 or TensorFlow the oneDNN bf16 rewrite")
  base = ["--data_dir", h36m, "--train_dir"]
  code, fp32, err = run_script(tprnn_train_human, base + [str(tmp_path / "a")] + TRAIN)
  assert code == 0, err
  code, bf16, err = run_script(tprnn_train_human, base + [str(tmp_path / "b")] + TRAIN +
                               ["--mixed_precision"])
  assert code == 0, err
  assert "precision: bf16" in bf16
  assert len(step_losses(bf16)) == len(step_losses(fp32)) == 2
  np.testing.assert_allclose(step_losses(bf16), step_losses(fp32), rtol=0.01)
  assert not np.array_equal(step_losses(bf16), step_losses(fp32))  # bf16 products took effect
  np.testing.assert_allclose(walking_row(bf16), walking_row(fp32), atol=0.02)
  samples = str(tmp_path / "s.h5")
  code, restored, err = run_script(tprnn_train_human, base + [str(tmp_path / "b")] + TRAIN +
                                   ["--sample", "--load", "20", "--samples_file", samples])
  assert code == 0, err
  assert "precision: fp32" in restored
  (directory,) = checkpoint_dirs(str(tmp_path / "b"))
  assert_samples_of(samples, h36m, weights(directory, 20), target_len=10, rnn_size=64)


def assert_samples_of(samples, data_dir, values, target_len, rnn_size):
  """The walking forecasts in the samples file are those of the basic model with the weights
  `values`, as the independent numpy forward pass computes them on the file's windows."""
  data = data_utils.read_all_data(["walking"], data_dir)
  windows = data_utils.eval_windows(data.test, "walking", SAMPLE_SOURCE_LEN, target_len)
  enc, dec_in, _ = data_utils.split_windows(windows, SAMPLE_SOURCE_LEN)
  expected = data_utils.unnormalize(basic_forward(values, enc, dec_in, target_len, rnn_size),
                                    data.mean, data.std, data.dim_to_use)
  with h5py.File(samples, "r") as f:
    preds = np.stack([f["expmap/preds/walking_{}".format(i)][()] for i in range(8)])
  np.testing.assert_allclose(preds, expected, atol=1e-4)


def test_fp16_loss_scaling_composes_with_gathered_gradients():
  """The GPU's dynamic loss-scale wrapper calls the model's gradients with a
  scaled loss; the scale is a power of two, so on the CPU (no fp16 rewrite)
  the updated weights equal the unwrapped step's."""
  def one_step(placement):
    flags = human_flags(["--rnn_size", "8", "--seq_length_in", "5", "--seq_length_out", "4"])
    net = graph.build_model(flags.replace(placement=placement), 54, 5, seed=4)
    feeds = [np.random.RandomState(1).normal(size=(3, n, 54)).astype(np.float32) for n in (4, 4, 4)]
    with tf.Session(graph=net.graph) as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(net.step[0], graph.feed_dict(net.model, *feeds))
      with net.graph.as_default():
        return {v.op.name: sess.run(v) for v in tf.trainable_variables()}
  plain = one_step(devices.Placement("cpu", "fp32", False, None))
  scaled = one_step(devices.Placement("gpu", "fp16", False, None))
  assert sorted(plain) == sorted(scaled)
  for name in plain:
    np.testing.assert_allclose(scaled[name], plain[name], atol=1e-7, err_msg=name)
