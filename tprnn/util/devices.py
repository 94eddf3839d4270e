"""Where and in what precision a graph runs: session configs for the CPU, an
NVIDIA GPU or an Ascend NPU, and the loss-scaling optimizer wrapper each
precision needs. `npu_bridge` is imported only when the NPU is asked for."""

import collections
import importlib

import tensorflow.compat.v1 as tf
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

from tprnn.util import errors

DEVICES = ("auto", "cpu", "gpu", "npu")
NPU_PRECISION_MODES = ("force_fp16", "allow_mix_precision", "allow_fp32_to_fp16",
                       "must_keep_origin_dtype")
NPU_FP16_MODES = NPU_PRECISION_MODES[:3]
CPU_BF16_REWRITE = "auto_mixed_precision_onednn_bfloat16"  # TF >= 2.9 only
# Ascend's documented dynamic loss scale: start at 2^32, halve after 2
# overflows, double after 1000 good steps.
NPU_LOSS_SCALE = dict(init_loss_scale=2 ** 32, incr_every_n_steps=1000,
                      decr_every_n_nan_or_inf=2, decr_ratio=0.5)

Placement = collections.namedtuple("Placement", [
    "device",     # cpu, gpu or npu
    "precision",  # fp32, bf16 (CPU), fp16 (GPU) or an NPU precision_mode
    "xla",
    "npu",        # the npu_bridge.npu_init module, or None
])


class DeviceError(errors.Error):
  """The asked-for device or precision cannot be had; one line for the user."""


def import_npu_bridge():
  """npu_bridge.npu_init, or None where Ascend's adapter is not installed."""
  try:
    return importlib.import_module("npu_bridge.npu_init")
  except ImportError:
    return None


def gpu_available():
  return bool(tf.config.experimental.list_physical_devices("GPU"))


def cpu_supports_bf16():
  """Whether this CPU has bf16 instructions and TensorFlow the oneDNN bf16
  rewrite that uses them."""
  if CPU_BF16_REWRITE not in RewriterConfig.DESCRIPTOR.fields_by_name:
    return False
  try:
    with open("/proc/cpuinfo") as f:
      flags = f.read()
  except OSError:
    return False
  return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_supports_xla():
  """Whether a session can ask TensorFlow to compile CPU ops with XLA (TF 1.15 cannot: there
  only the process-wide TF_XLA_FLAGS, read before TensorFlow starts, can)."""
  return "cpu_global_jit" in tf.OptimizerOptions.DESCRIPTOR.fields_by_name


def resolve(device, mixed_precision, precision_mode, xla):
  """The Placement for the flags; `auto` picks npu, then gpu, then cpu."""
  if device not in DEVICES:
    raise DeviceError("unknown --device '{}': expected one of {}".format(device, ", ".join(DEVICES)))
  if precision_mode not in NPU_PRECISION_MODES:
    raise DeviceError("unknown --precision_mode '{}': expected one of {}".format(
        precision_mode, ", ".join(NPU_PRECISION_MODES)))
  npu = import_npu_bridge() if device in ("auto", "npu") else None
  if device == "npu" and npu is None:
    raise DeviceError("--device npu needs Ascend's TensorFlow adapter (npu_bridge), which is "
                      "not importable here: install the CANN toolkit and its tensorflow/npu_bridge "
                      "wheel, and source the Ascend environment (see docs/DEVICES.md)")
  if device == "gpu" and not gpu_available():
    raise DeviceError("--device gpu: TensorFlow sees no GPU here (install tensorflow[and-cuda], "
                      "check nvidia-smi and CUDA_VISIBLE_DEVICES), or use --device cpu")
  if device == "auto":
    device = "npu" if npu else "gpu" if gpu_available() else "cpu"
  if device == "npu" and xla:
    raise DeviceError("--xla does not apply on the NPU: CANN compiles the whole graph itself and "
                      "Ascend's adapter turns TensorFlow's XLA JIT off; drop --xla")
  if device == "npu":
    return Placement("npu", precision_mode, False, npu)
  if device == "cpu" and xla and not cpu_supports_xla():
    print("--xla: this TensorFlow cannot compile CPU graphs with XLA from a session; running "
          "without XLA.")
    xla = False
  if not mixed_precision:
    return Placement(device, "fp32", xla, None)
  if device == "gpu":
    return Placement("gpu", "fp16", xla, None)
  if cpu_supports_bf16():
    return Placement("cpu", "bf16", xla, None)
  print("--mixed_precision: this CPU or TensorFlow has no bf16 support; running fp32.")
  return Placement("cpu", "fp32", xla, None)


def describe(placement):
  mixed = {"bf16": "bf16 mixed precision (oneDNN auto-mixed-precision rewrite)",
           "fp16": "fp16 mixed precision (auto-mixed-precision rewrite, dynamic loss scale)"}
  precision = mixed.get(placement.precision, placement.precision)
  if placement.device == "npu":
    precision = "precision_mode {}".format(placement.precision)
  return "Device: {}, precision: {}{}".format(placement.device, precision,
                                              ", XLA JIT" if placement.xla else "")


def session_config(placement):
  """The ConfigProto for a placement."""
  config = tf.ConfigProto(allow_soft_placement=True)
  rewrites = config.graph_options.rewrite_options
  if placement.device == "cpu":
    config.device_count["GPU"] = 0
  if placement.precision == "bf16":
    setattr(rewrites, CPU_BF16_REWRITE, RewriterConfig.ON)
  if placement.precision == "fp16":
    rewrites.auto_mixed_precision = RewriterConfig.ON
  if placement.xla:
    config.graph_options.optimizer_options.global_jit_level = tf.OptimizerOptions.ON_1
  if placement.xla and placement.device == "cpu":
    # global_jit_level alone clusters nothing on a CPU
    config.graph_options.optimizer_options.cpu_global_jit = True
  if placement.device == "npu":
    npu_optimizer = rewrites.custom_optimizers.add()
    npu_optimizer.name = "NpuOptimizer"
    npu_optimizer.parameter_map["use_off_line"].b = True
    npu_optimizer.parameter_map["precision_mode"].s = tf.compat.as_bytes(placement.precision)
    # What Ascend's adapter requires (its npu_config_proto): TensorFlow's own
    # remapping and memory rewrites off, and no XLA JIT.
    rewrites.remapping = RewriterConfig.OFF
    rewrites.memory_optimization = RewriterConfig.OFF
    config.graph_options.optimizer_options.global_jit_level = tf.OptimizerOptions.OFF
  return config


def loss_scaling(placement, distributed=False):
  """A function wrapping an optimizer with the loss scaling the precision
  needs (identity for fp32, bf16 and must_keep_origin_dtype). `distributed`:
  the NPU wrapper then agrees on overflows across devices."""
  if placement.device == "npu" and placement.precision in NPU_FP16_MODES:
    npu = placement.npu
    return lambda opt: npu.NPULossScaleOptimizer(
        opt, npu.ExponentialUpdateLossScaleManager(**NPU_LOSS_SCALE), is_distributed=distributed)
  if placement.precision == "fp16":
    return lambda opt: tf.train.experimental.MixedPrecisionLossScaleOptimizer(opt, "dynamic")
  return lambda opt: opt
