"""Training-step and evaluation timings of the basic TP-RNN, against the
authors' own Penn training graph run in the same process on identical inputs.

  python benchmarks/step_time.py            # full run
  python benchmarks/step_time.py --quick    # fewer steps, evaluation on a subset

Prints, per configuration: median ms/step, sequences/s, achieved GFLOP/s
(analytic count, forward + backward = 3x forward) and the ratio to the authors'
fp32 step.
"""

import argparse
import os
import sys
import time

import numpy as np
import tensorflow.compat.v1 as tf
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data_utils  # noqa: E402
import load  # noqa: E402
from tprnn import gradients  # noqa: E402
from tprnn import prism  # noqa: E402
from tprnn.evaluation import pck  # noqa: E402
from tprnn.evaluation import srnn  # noqa: E402
from tprnn.parallel import cluster  # noqa: E402
from tprnn.parallel.base import OneProcess  # noqa: E402
from tprnn.training.graph import feed_dict, predictor  # noqa: E402
from tprnn.util import devices  # noqa: E402
import tprnn_basic_model  # noqa: E402

SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared")
AUTHORS_META = os.path.join(SHARED, "reference", "published_checkpoints", "penn",
                            "checkpoint-63000.meta")
CONFIGS = {"penn": (26, 2, 16), "h36m": (54, 50, 10)}  # input size, seq in, seq out
PRECISIONS = {"fp32": dict(mixed_precision=False, xla=False),
              "mixed_precision": dict(mixed_precision=True, xla=False),
              "xla": dict(mixed_precision=False, xla=True)}


def forward_flops(input_size, source_len, target_len, rnn, batch):
  """Multiply-adds x2 of one forward pass: lstm_0 and one phase of lstm_1 on
  every call, the generator on every decoder call."""
  calls = source_len - 1 + target_len
  lstm = 2 * batch * ((input_size + rnn) + 2 * rnn) * 4 * rnn
  generator = 2 * batch * ((input_size + 2 * rnn) * 256 + 256 * 128 + 128 * input_size)
  return calls * lstm + target_len * generator


def step_flops(input_size, source_len, target_len, rnn, batch):
  return 3 * forward_flops(input_size, source_len, target_len, rnn, batch)


def random_feeds(input_size, source_len, target_len, batch, seed=0):
  rng = np.random.RandomState(seed)
  return [rng.normal(0, 0.5, (batch, n, input_size)).astype(np.float32)
          for n in (source_len - 1, target_len, target_len)]


def median_ms(run, steps, warmup):
  for _ in range(warmup):
    run()
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
  return 1000 * float(np.median(times))


def basic_model(name, rnn, placement):
  """A graph holding the basic model of configuration `name` with the model
  card's hyperparameters. Returns (graph, model, its update op)."""
  input_size, source_len, target_len = CONFIGS[name]
  config = prism.ModelConfig(input_size, source_len, target_len, rnn, 5.0, 0.005, 0.95,
                                   2, 2, 1.0, False)
  graph = tf.Graph()
  with graph.as_default():
    tf.set_random_seed(0)
    model = tprnn_basic_model.TPRNNBasicModel(config)
    update = gradients.training_op(model, OneProcess(cluster.ONE_PROCESS),
                                   devices.loss_scaling(placement))
  return graph, model, update


def time_ours(name, precision, rnn, batch, steps, warmup):
  placement = devices.resolve("cpu", PRECISIONS[precision]["mixed_precision"], "force_fp16",
                              PRECISIONS[precision]["xla"])
  graph, model, update = basic_model(name, rnn, placement)
  feed = feed_dict(model, *random_feeds(*CONFIGS[name], batch=batch))
  with tf.Session(graph=graph, config=devices.session_config(placement)) as sess:
    sess.run(tf.global_variables_initializer())
    return median_ms(lambda: sess.run(update, feed), steps, warmup), placement.precision


def time_authors(rnn, batch, steps, warmup, bf16=False):
  """The authors' Penn training graph (TF 1.4.1 meta graph), one SGD step."""
  input_size, source_len, target_len = CONFIGS["penn"]
  enc, dec_in, dec_out = random_feeds(input_size, source_len, target_len, batch)
  config = tf.ConfigProto()  # TensorFlow's defaults: the graph as its authors ran it
  if bf16:
    setattr(config.graph_options.rewrite_options, devices.CPU_BF16_REWRITE, RewriterConfig.ON)
  graph = tf.Graph()
  with graph.as_default():
    tf.train.import_meta_graph(AUTHORS_META)
    train_op = tf.get_collection("train_op")[0]
    zeros = np.zeros((batch, rnn), np.float32)
    feed = {"inputs/enc_in:0": enc, "inputs/dec_in:0": dec_in, "inputs/dec_out:0": dec_out,
            "inputs/act_labels:0": np.zeros((batch, 1), np.float32),
            "Placeholder:0": zeros, "Placeholder_1:0": zeros}
    with tf.Session(config=config) as sess:
      sess.run(tf.global_variables_initializer())
      return median_ms(lambda: sess.run(train_op, feed), steps, warmup)


def time_evaluation(rnn, quick):
  """The H3.6M SRNN table for the actions present and the Penn validation
  pass (a subset of it with --quick), with the data loading behind them."""
  h36m_dir = os.path.join(SHARED, "data", "h3.6m", "dataset")
  penn_dir = os.path.join(SHARED, "data", "Penn_Action", "labels")
  actions = [a for a in data_utils.ACTIONS
             if os.path.exists(data_utils.sequence_path(h36m_dir, 5, a, 1))]
  results = []
  start = time.perf_counter()
  data = data_utils.read_all_data(actions, h36m_dir)
  results.append(("load H3.6M ({})".format(", ".join(actions)), time.perf_counter() - start, None))
  start = time.perf_counter()
  val = load.load_sequences(penn_dir, train=False, init_velocity=False)
  load.load_sequences(penn_dir, train=True, init_velocity=False)
  results.append(("load Penn Action (train + validation)", time.perf_counter() - start, None))

  fp32 = devices.Placement("cpu", "fp32", False, None)
  for name in ("h36m", "penn"):
    graph, model, _ = basic_model(name, rnn, fp32)
    with tf.Session(graph=graph, config=devices.session_config(fp32)) as sess:
      sess.run(tf.global_variables_initializer())
      predict = predictor(sess, model)
      if name == "h36m":
        test = srnn.SrnnTest(data, actions, *CONFIGS[name][1:])
        test.evaluate(predict, "gt")  # warm-up
        start = time.perf_counter()
        test.evaluate(predict, "gt")
        results.append(("H3.6M SRNN table ({} actions x 8 seeds)".format(len(actions)),
                        time.perf_counter() - start, 8 * len(actions)))
      else:
        count = 4096 if quick else len(val.poses)
        part = pck.validation_set(
            load.Sequences(*(field[:count] for field in val)), encoder_length=1)
        predict(*(feed[:64] for feed in part.feeds))  # warm-up
        start = time.perf_counter()
        predictions, _ = predict(*part.feeds)
        pck.pck_metrics(predictions, part.feeds[2], part.visibilities)
        results.append(("Penn validation pass ({} of {} sequences)".format(count, len(val.poses)),
                        time.perf_counter() - start, count))
  return results


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="fewer steps, evaluation subset")
  parser.add_argument("--rnn_size", type=int, default=1024)
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--configs", default="penn,h36m")
  parser.add_argument("--precisions", default=",".join(PRECISIONS))
  parser.add_argument("--no_eval", action="store_true", help="skip the evaluation timings")
  args = parser.parse_args()
  steps, warmup = (5, 2) if args.quick else (20, 3)
  rnn, batch = args.rnn_size, args.batch_size
  print("TensorFlow {}, {} CPU cores, rnn_size {}, batch {}, median of {} steps".format(
      tf.version.VERSION, os.cpu_count(), rnn, batch, steps))

  authors = None
  if os.path.exists(AUTHORS_META) and rnn == 1024:
    authors = time_authors(rnn, batch, steps, warmup)
  header = "{:<6} {:<16} {:<6} {:>10} {:>8} {:>9} {:>10}".format(
      "config", "run", "prec", "ms/step", "seq/s", "GFLOP/s", "vs authors")
  print(header)
  print("-" * len(header))

  def row(config, run, precision, ms):
    flops = step_flops(*CONFIGS[config], rnn=rnn, batch=batch)
    ratio = "{:.2f}x".format(ms / authors) if authors and config == "penn" else "-"
    print("{:<6} {:<16} {:<6} {:>10.1f} {:>8.1f} {:>9.1f} {:>10}".format(
        config, run, precision, ms, batch / ms * 1000, flops / ms / 1e6, ratio))

  if authors:
    row("penn", "authors' graph", "fp32", authors)
    if "mixed_precision" in args.precisions and devices.cpu_supports_bf16():
      row("penn", "authors' graph", "bf16", time_authors(rnn, batch, steps, warmup, bf16=True))
  for config in args.configs.split(","):
    for precision in args.precisions.split(","):
      ms, actual = time_ours(config, precision, rnn, batch, steps, warmup)
      row(config, "this port " + precision.replace("mixed_precision", "mixed"), actual, ms)
  if not args.no_eval:
    print()
    for name, seconds, count in time_evaluation(rnn, args.quick):
      rate = " ({:.0f} sequences/s)".format(count / seconds) if count else ""
      print("{:<52} {:8.2f} s{}".format(name, seconds, rate))


if __name__ == "__main__":
  main()
