"""Device and precision plumbing: CPU bf16 and XLA against fp32, the GPU's
loss scaling, and the NPU without npu_bridge (the NPU with Ascend's real
adapter: test_ascend.py)."""

import re

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

from tprnn.util import devices
from tprnn.training import graph
import tprnn_train_human
from conftest import H36M_DIR, human_flags, need, run_script


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


def train_steps(argv, steps=4):
  """Losses and predictions of a few training steps on fixed random feeds."""
  flags = human_flags(["--rnn_size", "16", "--seq_length_in", "6", "--seq_length_out", "5"] + argv)
  net = graph.build_model(flags, 54, 6, seed=1)
  rng = np.random.RandomState(0)
  feeds = [rng.normal(size=(8, n, 54)).astype(np.float32) for n in (5, 5, 5)]
  with tf.Session(graph=net.graph, config=devices.session_config(flags.placement)) as sess:
    sess.run(tf.global_variables_initializer())
    feed = graph.feed_dict(net.model, *feeds)
    losses = [sess.run(net.step[:2], feed)[1] for _ in range(steps)]
    return np.array(losses), sess.run(net.model.outputs, feed)


@pytest.mark.slow
def test_xla_gives_fp32_numbers():
  losses, outputs = train_steps([])
  xla_losses, xla_outputs = train_steps(["--xla"])
  np.testing.assert_allclose(xla_losses, losses, atol=1e-4)
  np.testing.assert_allclose(xla_outputs, outputs, atol=1e-4)


TRAIN = ["--action", "walking", "--rnn_size", "64", "--iterations", "20", "--test_every", "20",
         "--save_every", "20", "--seed", "2", "--seq_length_in", "20"]


@pytest.mark.slow
def test_cpu_bf16_training_close_to_fp32_and_checkpoint_restores_in_fp32(tmp_path):
  need(H36M_DIR)
  if not devices.cpu_supports_bf16():
    pytest.skip("this CPU or TensorFlow has no bf16 support")
  base = ["--data_dir", H36M_DIR, "--train_dir"]
  code, fp32, err = run_script(tprnn_train_human, base + [str(tmp_path / "a")] + TRAIN)
  assert code == 0, err
  code, bf16, err = run_script(tprnn_train_human, base + [str(tmp_path / "b")] + TRAIN +
                               ["--mixed_precision"])
  assert code == 0, err
  assert "precision: bf16" in bf16
  loss = lambda out: np.array([float(x) for x in re.findall(r"step_loss: ([0-9.]+)", out)])
  np.testing.assert_allclose(loss(bf16), loss(fp32), rtol=0.05)
  row = lambda out: np.array([float(x) for x in re.findall(r"walking +\|(.*)\|", out)[-1]
                              .replace("n/a", "nan").split("|")])
  np.testing.assert_allclose(row(bf16), row(fp32), atol=0.02)
  code, restored, err = run_script(tprnn_train_human, base + [str(tmp_path / "b")] + TRAIN +
                                   ["--sample", "--load", "20", "--samples_file",
                                    str(tmp_path / "s.h5")])
  assert code == 0, err
  assert "precision: fp32" in restored and "checkpoint-20" in restored


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
