"""Building and running a model's graph: the graph of a run's flags on this
worker's device, its session, fresh or restored variables, and the forward
pass an evaluation calls."""

import collections

import numpy as np
import tensorflow.compat.v1 as tf

from tprnn import config
from tprnn import gradients
from tprnn import prism
from tprnn.parallel import cluster
from tprnn.parallel.base import OneProcess
from tprnn.training import checkpoints
from tprnn.util import devices
from tprnn.util.errors import TrainingError
from tprnn.util.progress import progress
EVAL_CHUNK = 2048  # sequences per forward pass when evaluating
STOP, SAVE = 0, 1  # the requests a worker sends with each step

Network = collections.namedtuple("Network", [
    "graph",
    "model",
    "savers",     # checkpoints.Savers of every variable
    "requests",   # placeholder [2]: this worker asks to stop, to save (1.0); None: no training
    "step",       # fetches of a training step: update, global mean loss,
                  # learning rate, whether any worker asked to stop, to save
    "broadcast",  # op giving every worker rank 0's variables, or None
])


def model_config(flags, input_size, source_seq_len):
  return prism.ModelConfig(
      input_size=input_size, source_seq_len=source_seq_len,
      target_seq_len=flags.seq_length_out, rnn_size=flags.rnn_size,
      max_gradient_norm=flags.max_gradient_norm, learning_rate=flags.learning_rate,
      learning_rate_decay_factor=flags.learning_rate_decay_factor,
      tprnn_scale=flags.tprnn_scale, tprnn_layers=flags.tprnn_layers,
      dropout_keep=flags.dropout_keep, fix_generic_contexts=flags.fix_generic_contexts)


def build_model(flags, input_size, source_seq_len, seed, backend=None, training=True):
  """A fresh graph holding the model and its savers on this worker's device;
  when `training`, also the update (tprnn.gradients, averaged by `backend`,
  one process when None) and the step's fetches."""
  backend = backend or OneProcess(cluster.ONE_PROCESS)
  graph = tf.Graph()
  with graph.as_default(), tf.device(backend.device()):
    tf.set_random_seed(seed)
    model = config.MODELS[flags.model](model_config(flags, input_size, source_seq_len))
    if not training:
      return Network(graph, model, checkpoints.Savers(tf.global_variables()), None, None, None)
    update = gradients.training_op(
        model, backend, devices.loss_scaling(flags.placement, distributed=backend.size > 1))
    requests = tf.placeholder_with_default([0.0, 0.0], [2], name="requests")
    mean_loss, mean_requests = backend.mean([model.loss, requests])
    step = (update, mean_loss, model.learning_rate, mean_requests[STOP] > 0,
            mean_requests[SAVE] > 0)
    broadcast = backend.build_sync(tf.global_variables())
    savers = checkpoints.Savers(tf.global_variables())
  return Network(graph, model, savers, requests, step, broadcast)


def open_session(placement, graph, backend=None):
  """A session for `graph` on this worker, configured for its device."""
  backend = backend or OneProcess(cluster.ONE_PROCESS)
  config = backend.session_config(devices.session_config(placement))
  return tf.Session(backend.target(config), graph=graph, config=config)


def initialize_or_restore(sess, net, checkpoint=None, load=0):
  """Fresh variables (no `checkpoint`), or `checkpoint` (checkpoint-`load` or
  rolling-`load`) with its global step set to `load`: the checkpoint number
  is the number of steps taken (the authors' checkpoints store another)."""
  if checkpoint is None:
    print("Creating model with fresh parameters.")
    sess.run(tf.variables_initializer(net.graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)))
    return
  print("Loading model {}".format(checkpoint))
  checkpoints.restore(sess, checkpoint)
  stored = sess.run(net.model.global_step)
  if stored != load:
    print("{} stores global step {}; counting on from {}".format(checkpoint, stored, load))
    net.model.global_step.load(load, sess)


def feed_dict(model, enc, dec_in, dec_out):
  return {model.encoder_inputs: enc, model.decoder_inputs: dec_in, model.decoder_outputs: dec_out}


def predict(sess, model, enc, dec_in, dec_out, chunk_size=EVAL_CHUNK):
  """Forward pass (no dropout) over [N, ...] feeds in chunks of `chunk_size`
  sequences, so memory stays bounded. Returns (predictions [N, out, P], mean
  squared error over all of them). Non-finite predictions are an error: no
  error measure may turn them into a small number."""
  outputs, total = [], 0.0
  starts = range(0, len(enc), chunk_size)
  if len(starts) > 1:
    starts = progress(starts, len(starts), "Predicting {} sequences".format(len(enc)), "chunk")
  for start in starts:
    chunk = slice(start, start + chunk_size)
    out, loss = sess.run([model.outputs, model.loss],
                         feed_dict(model, enc[chunk], dec_in[chunk], dec_out[chunk]))
    if not np.all(np.isfinite(out)):
      raise TrainingError("the model predicts non-finite values (NaN or inf): its weights have "
                          "diverged, so it has no error to report")
    outputs.append(out)
    total += loss * len(out)
  return np.concatenate(outputs), total / len(enc)


def predictor(sess, model):
  """predict(enc, dec_in, dec_out) for an evaluation: see `predict`."""
  return lambda enc, dec_in, dec_out: predict(sess, model, enc, dec_in, dec_out)
