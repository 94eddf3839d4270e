"""Builds and runs TP-RNN graphs with the code of one tree (a checkout of
some revision), for benchmarks/revisions.Worker in another process:

  python benchmarks/graph_worker.py TREE    # one JSON request a line on stdin

Requests (a reply is one JSON line on stdout; everything else goes to stderr):
  {"op": "time", "config", "precision", "rnn", "batch", "steps", "warmup"}
      -> {"ms": median ms of a training step, "precision", "ops": op counts}
  {"op": "train", "model", "config", "rnn", "batch", "scale", "layers", "fix",
   "feeds": npz of enc/dec_in/dec_out [steps, N, ...], "init": npz or "", "out": npz}
      -> {"losses": the loss of each step}; writes to "out" the variables
         before and after ("initial/<name>", "final/<name>") and the
         gradients of the first step ("gradient/<name>")

Only names that every revision since 40a532e has are used.
"""

import json
import os
import sys
import time

import numpy as np

# input size, seq in, seq out; "short": H3.6M poses, an encoder of 11 calls (tests)
CONFIGS = {"penn": (26, 2, 16), "h36m": (54, 50, 10), "short": (54, 12, 4)}
PRECISIONS = {"fp32": dict(mixed_precision=False, xla=False),
              "mixed_precision": dict(mixed_precision=True, xla=False),
              "xla": dict(mixed_precision=False, xla=True)}
PRODUCTS = ("MatMul", "BatchMatMul", "BatchMatMulV2")


def random_feeds(input_size, source_len, target_len, batch, seed=0):
  """enc [N, in-1, P], dec_in and dec_out [N, out, P]."""
  rng = np.random.RandomState(seed)
  return [rng.normal(0, 0.5, (batch, n, input_size)).astype(np.float32)
          for n in (source_len - 1, target_len, target_len)]


def model_config(prism, config, rnn, scale=2, layers=2, fix=False):
  """prism.ModelConfig of `config` (a CONFIGS key) with the model card's
  hyperparameters; `prism` is the tree's tprnn.prism."""
  return prism.ModelConfig(*CONFIGS[config], rnn, 5.0, 0.005, 0.95, scale, layers, 1.0, fix)


def median_ms(run, steps):
  """The median wall time of `steps` calls of run(), in ms."""
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
  return 1000 * float(np.median(times))


class Graphs(object):
  """The tree's graphs and sessions, built on first request."""

  def __init__(self):
    import tensorflow.compat.v1 as tf
    from tprnn import gradients, prism
    from tprnn.parallel import cluster
    from tprnn.parallel.base import OneProcess
    from tprnn.util import devices
    import tprnn_basic_model
    import tprnn_generic_model
    self.tf, self.gradients, self.prism, self.devices = tf, gradients, prism, devices
    self.one_process = OneProcess(cluster.ONE_PROCESS)
    self.models = {"basic": tprnn_basic_model.TPRNNBasicModel,
                   "generic": tprnn_generic_model.TPRNNGenericModel}
    self.timed = {}

  def build(self, model, config, rnn, placement, scale=2, layers=2, fix=False):
    """(graph, model, update op) with the model card's hyperparameters."""
    tf = self.tf
    cfg = model_config(self.prism, config, rnn, scale, layers, fix)
    graph = tf.Graph()
    with graph.as_default():
      tf.set_random_seed(0)
      net = self.models[model](cfg)
      update = self.gradients.training_op(net, self.one_process,
                                          self.devices.loss_scaling(placement))
    return graph, net, update

  def op_counts(self, graph, net, update):
    """Ops (and matrix products) a training step and a forecast run."""
    graph_def = graph.as_graph_def()
    counts = {}
    for name, fetches in (("step", [update, net.loss]), ("forecast", [net.outputs])):
      names = [t.op.name if hasattr(t, "op") else t.name for t in fetches]
      nodes = self.tf.graph_util.extract_sub_graph(graph_def, names).node
      counts[name] = len(nodes)
      counts[name + "_products"] = sum(n.op in PRODUCTS for n in nodes)
    return counts

  def time(self, config, precision, rnn, batch, steps, warmup):
    """{"ms": median ms of `steps` training steps, "precision": as run (e.g.
    bf16, fp32+xla), "ops": op_counts}; the graph is built and warmed up on
    the first request of its kind."""
    key = (config, precision, rnn, batch)
    if key not in self.timed:
      flags = PRECISIONS[precision]
      placement = self.devices.resolve("cpu", flags["mixed_precision"], "force_fp16",
                                       flags["xla"])
      graph, net, update = self.build("basic", config, rnn, placement)
      sess = self.tf.Session(graph=graph, config=self.devices.session_config(placement))
      with graph.as_default():
        sess.run(self.tf.variables_initializer(graph.get_collection("variables")))
      enc, dec_in, dec_out = random_feeds(*CONFIGS[config], batch=batch)
      feed = {net.encoder_inputs: enc, net.decoder_inputs: dec_in, net.decoder_outputs: dec_out}
      run = lambda: sess.run(update, feed)  # noqa: E731
      for _ in range(warmup):
        run()
      label = placement.precision + ("+xla" if placement.xla else "")
      self.timed[key] = (run, label, self.op_counts(graph, net, update))
    run, actual, counts = self.timed[key]
    return {"ms": median_ms(run, steps), "precision": actual, "ops": counts}

  def train(self, model, config, rnn, batch, scale, layers, fix, feeds, init, out):
    """Trains on every batch of `feeds` from `init` (fresh variables if "")."""
    fp32 = self.devices.Placement("cpu", "fp32", False, None)
    graph, net, update = self.build(model, config, rnn, fp32, scale, layers, fix)
    feeds = np.load(feeds)
    with graph.as_default(), self.tf.Session(graph=graph) as sess:
      variables = self.initialized(sess, graph, init)
      gradients = [(v, g) for v, g in zip(self.tf.trainable_variables(),
                                          net.gradients(net.loss, self.tf.trainable_variables()))
                   if g is not None]  # None: a weight the loss does not reach
      values = {"initial/" + v.op.name: sess.run(v) for v in variables}
      losses = []
      for step in range(len(feeds["enc"])):
        feed = {net.encoder_inputs: feeds["enc"][step], net.decoder_inputs: feeds["dec_in"][step],
                net.decoder_outputs: feeds["dec_out"][step]}
        if step == 0:  # the gradients the first update applies, before clipping
          values.update(("gradient/" + v.op.name, g) for (v, _), g in zip(
              gradients, sess.run([g for _, g in gradients], feed)))
        loss, _ = sess.run([net.loss, update], feed)
        losses.append(float(loss))
      values.update(("final/" + v.op.name, sess.run(v)) for v in variables)
    np.savez(out, **values)
    return {"losses": losses}

  def initialized(self, sess, graph, init):
    """The graph's variables, set from the "initial/" values of npz `init`,
    or initialised afresh when init is ""."""
    variables = graph.get_collection("variables")
    sess.run(self.tf.variables_initializer(variables))
    if init:
      initial = np.load(init)
      for v in variables:
        v.load(initial["initial/" + v.op.name], sess)
    return variables


def main(tree):
  # replies get their own copy of stdout; anything else printed, by Python or
  # by native code, goes to stderr
  replies = os.fdopen(os.dup(1), "w")
  os.dup2(2, 1)
  sys.stdout = sys.stderr
  sys.path.insert(0, tree)
  graphs = Graphs()
  for line in sys.stdin:
    request = json.loads(line)
    op = request.pop("op")
    reply = getattr(graphs, op)(**request)
    replies.write(json.dumps(reply) + "\n")
    replies.flush()


if __name__ == "__main__":
  main(os.path.abspath(sys.argv[1]))
