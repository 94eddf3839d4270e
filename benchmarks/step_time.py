"""Training-step and evaluation timings of the basic TP-RNN, against the
authors' own Penn training graph run in the same process on identical inputs
and, with --revision, against another git revision's code.

  python benchmarks/step_time.py                      # full run
  python benchmarks/step_time.py --quick              # fewer steps, evaluation on a subset
  python benchmarks/step_time.py --revision 40a532e --configs h36m --no_eval

Each code version builds and runs its graphs in its own worker process
(benchmarks/graph_worker.py; a revision is checked out as a git worktree),
and the versions take turns --repeats times, so that their times are taken
back to back. Prints, per configuration and version: the ops a training
step and a forecast run (all graph ops, and the matrix products among
them), the median ms/step of each turn, sequences/s, achieved GFLOP/s
(analytic count, forward + backward = 3x forward) and the ratios to the
authors' fp32 step and to the revision, turn by turn.
"""

import argparse
import contextlib
import os
import sys
import time

import numpy as np
import tensorflow.compat.v1 as tf
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data_utils  # noqa: E402
import load  # noqa: E402
from graph_worker import CONFIGS, PRECISIONS, median_ms, model_config, random_feeds  # noqa: E402
import revisions  # noqa: E402
from tprnn import prism  # noqa: E402
from tprnn.evaluation import pck  # noqa: E402
from tprnn.evaluation import srnn  # noqa: E402
from tprnn.training.graph import predictor  # noqa: E402
from tprnn.util import devices  # noqa: E402
import tprnn_basic_model  # noqa: E402

SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared")
AUTHORS_META = os.path.join(SHARED, "reference", "published_checkpoints", "penn",
                            "checkpoint-63000.meta")


def forward_flops(input_size, source_len, target_len, rnn, batch):
  """Multiply-adds x2 of one forward pass: lstm_0 and one phase of lstm_1 on
  every call, the generator on every decoder call."""
  calls = source_len - 1 + target_len
  lstm = 2 * batch * ((input_size + rnn) + 2 * rnn) * 4 * rnn
  generator = 2 * batch * ((input_size + 2 * rnn) * 256 + 256 * 128 + 128 * input_size)
  return calls * lstm + target_len * generator


def step_flops(input_size, source_len, target_len, rnn, batch):
  return 3 * forward_flops(input_size, source_len, target_len, rnn, batch)


def basic_model(name, rnn):
  """A graph holding the basic model of configuration `name` with the model
  card's hyperparameters. Returns (graph, model)."""
  config = model_config(prism, name, rnn)
  graph = tf.Graph()
  with graph.as_default():
    tf.set_random_seed(0)
    model = tprnn_basic_model.TPRNNBasicModel(config)
  return graph, model


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
      for _ in range(warmup):
        sess.run(train_op, feed)
      return median_ms(lambda: sess.run(train_op, feed), steps)


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
    graph, model = basic_model(name, rnn)
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


def parse_args():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--quick", action="store_true", help="fewer steps, evaluation subset")
  p.add_argument("--rnn_size", type=int, default=1024)
  p.add_argument("--batch_size", type=int, default=16)
  p.add_argument("--configs", default="penn,h36m", help="of " + ", ".join(CONFIGS))
  p.add_argument("--precisions", default=",".join(PRECISIONS), help="of " + ", ".join(PRECISIONS))
  p.add_argument("--revision", default="", help="also time this git revision's code (e.g. HEAD~)")
  p.add_argument("--repeats", type=int, default=2, help="turns each code version takes")
  p.add_argument("--no_eval", action="store_true", help="skip the evaluation timings")
  args = p.parse_args()
  if args.repeats < 1:
    p.error("--repeats: {} is not a number of turns (at least 1)".format(args.repeats))
  if args.revision and not revisions.has_revision(args.revision):
    p.error("--revision: git knows no commit {}".format(args.revision))
  for name, chosen, known in (("--configs", args.configs, CONFIGS),
                              ("--precisions", args.precisions, PRECISIONS)):
    unknown = sorted(set(chosen.split(",")) - set(known))
    if unknown:
      p.error("{}: unknown {} (known: {})".format(name, ", ".join(unknown), ", ".join(known)))
  return args


HEADER = "{:<6} {:<16} {:<8} {:>8} {:>8} {:>9} {:>17} {:>8} {:>7} {:>8} {:>8} {:>11}".format(
    "config", "code", "prec", "ops/step", "products", "ops/fcst", "ms/step, by turn", "median",
    "seq/s", "GFLOP/s", "vs auth.", "vs revision")


def row(config, code, precision, times, size, authors=None, baseline=None, ops=None):
  """One line of the table: `times` the median ms/step of each turn,
  `baseline` those of the revision, `ops` graph_worker's op counts."""
  rnn, batch = size
  ms = float(np.median(times))
  flops = step_flops(*CONFIGS[config], rnn=rnn, batch=batch)
  counts = ("{step:>8} {step_products:>8} {forecast:>9}".format(**ops) if ops
            else "{:>8} {:>8} {:>9}".format("-", "-", "-"))
  vs_authors = "{:.2f}x".format(ms / authors) if authors and config == "penn" else "-"
  vs_revision = " ".join("{:.2f}x".format(t / b) for t, b in zip(times, baseline)) \
      if baseline else "-"
  print("{:<6} {:<16} {:<8} {} {:>17} {:>8.1f} {:>7.1f} {:>8.1f} {:>8} {:>11}".format(
      config, code, precision, counts, " ".join("{:.1f}".format(t) for t in times), ms,
      batch / ms * 1000, flops / ms / 1e6, vs_authors, vs_revision), flush=True)


def time_versions(workers, config, precision, args, steps, warmup):
  """{code: (ms of each turn, precision, op counts)}: the versions take
  turns, in alternating order."""
  times, replies = {code: [] for code in workers}, {}
  for turn in range(args.repeats):
    for code, worker in list(workers.items())[::(-1) ** turn]:
      replies[code] = worker.request(op="time", config=config, precision=precision,
                                     rnn=args.rnn_size, batch=args.batch_size, steps=steps,
                                     warmup=warmup)
      times[code].append(replies[code]["ms"])
  return {code: (times[code], replies[code]["precision"], replies[code]["ops"])
          for code in workers}


def main():
  args = parse_args()
  steps, warmup = (5, 2) if args.quick else (20, 3)
  size = (args.rnn_size, args.batch_size)
  print("TensorFlow {}, {} CPU cores, rnn_size {}, batch {}, median of {} steps a turn".format(
      tf.version.VERSION, os.cpu_count(), args.rnn_size, args.batch_size, steps))
  authors = None
  if os.path.exists(AUTHORS_META) and args.rnn_size == 1024:
    authors = time_authors(*size, steps, warmup)
  print(HEADER)
  print("-" * len(HEADER))
  if authors:
    row("penn", "authors' graph", "fp32", [authors], size)
    if "mixed_precision" in args.precisions and devices.cpu_supports_bf16():
      row("penn", "authors' graph", "bf16", [time_authors(*size, steps, warmup, bf16=True)], size)
  with contextlib.ExitStack() as stack:
    workers = {"working tree": stack.enter_context(revisions.Worker(revisions.ROOT))}
    if args.revision:
      code = "commit " + revisions.short_hash(args.revision)
      tree = stack.enter_context(revisions.worktree(args.revision))
      workers[code] = stack.enter_context(revisions.Worker(tree))
    for config in args.configs.split(","):
      for precision in args.precisions.split(","):
        timed = time_versions(workers, config, precision, args, steps, warmup)
        baseline = timed[code][0] if args.revision else None
        for name, (times, actual, ops) in timed.items():
          row(config, name, actual, times, size, authors,
              baseline if name == "working tree" else None, ops)
  if not args.no_eval:
    print()
    for name, seconds, count in time_evaluation(args.rnn_size, args.quick):
      rate = " ({:.0f} sequences/s)".format(count / seconds) if count else ""
      print("{:<52} {:8.2f} s{}".format(name, seconds, rate))


if __name__ == "__main__":
  main()
