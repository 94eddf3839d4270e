"""The prism graphs against an independent numpy implementation, the
authors' Penn training graph, and the published checkpoint names."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import tprnn_basic_model
import tprnn_generic_model
from tprnn import gradients
from tprnn import prism
from tprnn.parallel import cluster
from tprnn.parallel.base import OneProcess
from conftest import HUMAN_INDEX, PENN_CHECKPOINT, need
from numpy_reference import basic_forward, generic_forward

UNUSED_PUBLISHED = ("Variable_2", "setup_context_lstm/activity_mt_output_layer/dense/bias",
                    "setup_context_lstm/activity_mt_output_layer/dense/kernel")


def config(input_size=26, source=2, target=16, rnn=16, scale=2, layers=2, keep=1.0, fix=False):
  return prism.ModelConfig(input_size, source, target, rnn, 5.0, 0.01, 0.95,
                                 scale, layers, keep, fix)


def build(cls, cfg, seed=0):
  graph = tf.Graph()
  with graph.as_default():
    tf.set_random_seed(seed)
    model = cls(cfg)
  return graph, model


def random_weights(variables, rng, scale=0.1):
  """Small random values for every float variable except the fixed filters."""
  values = {}
  for v in variables:
    name = v.op.name
    if "filter" in name:
      values[name] = np.array([[-1.0], [1.0]], np.float32)
    elif v.dtype.base_dtype == tf.float32 and name != "Variable":
      values[name] = (rng.uniform(-scale, scale, v.shape.as_list())).astype(np.float32)
  return values


def feeds(rng, n, cfg):
  enc = rng.normal(size=(n, cfg.source_seq_len - 1, cfg.input_size)).astype(np.float32)
  dec_in = rng.normal(size=(n, cfg.target_seq_len, cfg.input_size)).astype(np.float32)
  dec_out = rng.normal(size=(n, cfg.target_seq_len, cfg.input_size)).astype(np.float32)
  return enc, dec_in, dec_out


def load_values(sess, graph, values):
  """Assigns `values` by variable name; initialises the other variables."""
  for v in graph.get_collection("variables"):
    if v.op.name in values:
      v.load(values[v.op.name], sess)
    else:
      sess.run(v.initializer)


def run_forward(graph, model, values, enc, dec_in, dec_out):
  with tf.Session(graph=graph) as sess:
    load_values(sess, graph, values)
    return sess.run([model.outputs, model.loss], {
        model.encoder_inputs: enc, model.decoder_inputs: dec_in, model.decoder_outputs: dec_out})


def run_authors_graph(rng, enc, dec_in, dec_out, fetches):
  """Runs fetches(graph) in the authors' Penn training graph with small random
  weights. Returns (the weights by name, the fetched values)."""
  authors = tf.Graph()
  with authors.as_default():
    tf.train.import_meta_graph(need(PENN_CHECKPOINT + ".meta"))
    values = random_weights(authors.get_collection("variables"), rng, scale=0.05)
    fetched = fetches(authors)
    with tf.Session(graph=authors) as sess:
      load_values(sess, authors, values)
      zeros = np.zeros((len(enc), 1024), np.float32)
      return values, sess.run(fetched, {
          "inputs/enc_in:0": enc, "inputs/dec_in:0": dec_in, "inputs/dec_out:0": dec_out,
          "inputs/act_labels:0": np.zeros((len(enc), 1), np.float32),
          "Placeholder:0": zeros, "Placeholder_1:0": zeros})


@pytest.mark.parametrize("source,target", [(2, 16), (7, 5), (6, 4), (30, 3)])
def test_basic_forward_equals_numpy_reference(source, target):
  cfg = config(input_size=9, source=source, target=target, rnn=12)
  graph, model = build(tprnn_basic_model.TPRNNBasicModel, cfg)
  rng = np.random.RandomState(source)
  values = random_weights(graph.get_collection("variables"), rng, scale=0.1)
  enc, dec_in, dec_out = feeds(rng, 5, cfg)
  outputs, loss = run_forward(graph, model, values, enc, dec_in, dec_out)
  expected = basic_forward(values, enc, dec_in, target, 12)
  np.testing.assert_allclose(outputs, expected, atol=1e-5)
  assert loss == pytest.approx(np.mean((dec_out - expected) ** 2), rel=1e-5)


def test_basic_forward_equals_authors_penn_graph():
  """Imports the authors' TF 1.4 training graph, gives it and our model the
  same random weights, and compares all 16 predicted frames."""
  rng = np.random.RandomState(7)
  cfg = config(input_size=26, source=2, target=16, rnn=1024)
  enc, dec_in, dec_out = feeds(rng, 4, cfg)
  values, expected = run_authors_graph(rng, enc, dec_in, dec_out,
                                       lambda g: g.get_tensor_by_name("loss_angles/Sub/y:0"))
  graph, model = build(tprnn_basic_model.TPRNNBasicModel, cfg)
  outputs, _ = run_forward(graph, model, values, enc, dec_in, dec_out)
  assert expected.shape == (16, 4, 26)
  np.testing.assert_allclose(outputs, np.transpose(expected, (1, 0, 2)), atol=1e-5)


@pytest.mark.slow
def test_gathered_gradients_equal_authors_graph_autodiff():
  """The weight gradients the optimizer applies (one gathered product per
  weight) equal TensorFlow's autodiff of the authors' graph on its pose loss."""
  rng = np.random.RandomState(8)
  cfg = config(input_size=26, source=2, target=16, rnn=1024)
  enc, dec_in, dec_out = feeds(rng, 4, cfg)

  def pose_loss_gradients(g):
    trainable = [v for v in g.get_collection("trainable_variables") if "activity_mt" not in v.op.name]
    grads = tf.gradients(g.get_tensor_by_name("loss_angles/Mean:0"), trainable)
    return dict(zip([v.op.name for v in trainable], grads))

  values, expected = run_authors_graph(rng, enc, dec_in, dec_out, pose_loss_gradients)
  graph, model = build(tprnn_basic_model.TPRNNBasicModel, cfg)
  with graph.as_default():
    params = tf.trainable_variables()
    grads = model.gradients(model.loss, params)
    with tf.Session() as sess:
      load_values(sess, graph, values)
      ours = dict(zip([v.op.name for v in params], sess.run(grads, {
          model.encoder_inputs: enc, model.decoder_inputs: dec_in, model.decoder_outputs: dec_out})))
  assert sorted(ours) == sorted(expected)
  for name, grad in expected.items():
    scale = np.abs(grad).max()
    assert scale > 0
    np.testing.assert_allclose(ours[name], grad, atol=1e-5 * scale, err_msg=name)


@pytest.mark.parametrize("input_size,index", [(54, HUMAN_INDEX), (26, PENN_CHECKPOINT)])
def test_basic_variables_match_published_checkpoint(input_size, index):
  need(index + ".index")
  published = {n: s for n, s in tf.train.list_variables(index) if n not in UNUSED_PUBLISHED}
  assert len(published) == 15
  graph, _ = build(tprnn_basic_model.TPRNNBasicModel,
                   config(input_size=input_size, source=50, target=10, rnn=1024))
  ours = {v.op.name: v.shape.as_list() for v in graph.get_collection("variables")}
  assert ours == published


def test_basic_rejects_other_prism_shapes():
  with pytest.raises(ValueError, match="--model basic needs --tprnn_scale 2 --tprnn_layers 2"):
    build(tprnn_basic_model.TPRNNBasicModel, config(scale=3))


def level_gradients(fix, scale=2, layers=2):
  cfg = config(input_size=6, source=6, target=6, rnn=8, scale=scale, layers=layers, fix=fix)
  graph, model = build(tprnn_generic_model.TPRNNGenericModel, cfg, seed=3)
  with graph.as_default():
    kernels = [v for v in tf.trainable_variables() if v.op.name.endswith("basic_lstm_cell/kernel")]
    grads = model.gradients(model.loss, kernels)  # what the optimizer applies
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      enc, dec_in, dec_out = feeds(np.random.RandomState(0), 3, cfg)
      values = sess.run([g for g in grads if g is not None], {
          model.encoder_inputs: enc, model.decoder_inputs: dec_in, model.decoder_outputs: dec_out})
  values = iter(values)
  return {k.op.name.split("/")[1]: 0.0 if g is None else np.abs(next(values)).max()
          for k, g in zip(kernels, grads)}


@pytest.mark.parametrize("layers", [2, 3])
def test_generic_published_indexing_starves_upper_levels(layers):
  grads = level_gradients(fix=False, layers=layers)
  assert grads["lstm_0"] > 0
  for level in range(1, layers):
    assert grads["lstm_{}".format(level)] == 0.0


@pytest.mark.parametrize("layers", [2, 3])
def test_generic_fixed_indexing_trains_every_level(layers):
  grads = level_gradients(fix=True, layers=layers)
  for level in range(layers):
    assert grads["lstm_{}".format(level)] > 0


def test_generic_fixed_k2_m2_equals_basic_prism():
  """With --fix_generic_contexts, M=2 K=2 and no dropout the generic prism is
  the basic one; only the generator's LeakyReLU slope and names differ."""
  cfg = config(input_size=5, source=5, target=6, rnn=7, fix=True)
  rng = np.random.RandomState(11)
  enc, dec_in, dec_out = feeds(rng, 3, cfg)
  graph, model = build(tprnn_generic_model.TPRNNGenericModel, cfg)
  values = random_weights(graph.get_collection("variables"), rng, scale=0.1)
  outputs, _ = run_forward(graph, model, values, enc, dec_in, dec_out)
  renamed = dict(values)
  for i, name in enumerate(("generator1", "generator2", "generator_output"), 1):
    renamed["dense_{}_W".format(i)] = values["setup_context_lstm/generator/{}/kernel".format(name)]
    renamed["dense_{}_b".format(i)] = values["setup_context_lstm/generator/{}/bias".format(name)]
  expected = basic_forward(renamed, enc, dec_in, 6, 7, alpha=0.2)  # docs/PROTOCOL.md §5
  np.testing.assert_allclose(outputs, expected, atol=1e-5)


@pytest.mark.parametrize("scale,layers,fix,source,target", [
    (3, 2, True, 8, 4), (2, 3, True, 7, 3), (3, 3, False, 3, 5), (2, 3, True, 2, 4),
    (2, 2, False, 9, 2), (3, 3, True, 20, 3), (3, 2, False, 27, 2)])
def test_generic_forward_equals_numpy_reference(scale, layers, fix, source, target):
  """Encoders longer and shorter than a level's period K^l and than an
  encoder segment (prism.ENCODER_SEGMENT_CALLS), both context rules."""
  cfg = config(input_size=5, source=source, target=target, rnn=6, scale=scale, layers=layers,
               fix=fix)
  graph, model = build(tprnn_generic_model.TPRNNGenericModel, cfg)
  rng = np.random.RandomState(10 * scale + layers)
  # larger weights make float32 and float64 part ways, smaller ones hide the prism
  values = random_weights(graph.get_collection("variables"), rng, scale=0.2)
  enc, dec_in, dec_out = feeds(rng, 3, cfg)
  outputs, _ = run_forward(graph, model, values, enc, dec_in, dec_out)
  expected = generic_forward(values, enc, dec_in, target, 6, scale, layers, fix)
  np.testing.assert_allclose(outputs, expected, atol=1e-5)


@pytest.mark.parametrize("model,scale,layers", [("basic", 2, 2), ("generic", 2, 3),
                                                ("generic", 3, 2)])
def test_gathered_gradients_equal_finite_differences(model, scale, layers):
  """The gradients the optimizer applies, with an encoder of 26 calls (the
  chains of every level run side by side there, in three segments), against
  central differences of the numpy reference in float64, one random
  direction per variable."""
  cfg = config(input_size=4, source=27, target=3, rnn=5, scale=scale, layers=layers, fix=True)
  cls = {"basic": tprnn_basic_model.TPRNNBasicModel,
         "generic": tprnn_generic_model.TPRNNGenericModel}[model]
  graph, net = build(cls, cfg)
  rng = np.random.RandomState(5)
  values = random_weights(graph.get_collection("variables"), rng, scale=0.5)
  enc, dec_in, dec_out = feeds(rng, 3, cfg)
  with graph.as_default():
    params = tf.trainable_variables()
    grads = net.gradients(net.loss, params)
    with tf.Session() as sess:
      load_values(sess, graph, values)
      grads = sess.run(grads, {net.encoder_inputs: enc, net.decoder_inputs: dec_in,
                               net.decoder_outputs: dec_out})

  def loss(weights):
    if model == "basic":
      predictions = basic_forward(weights, enc.astype(np.float64), dec_in, 3, 5)
    else:
      predictions = generic_forward(weights, enc.astype(np.float64), dec_in, 3, 5, scale, layers,
                                    True)
    return np.mean((dec_out - predictions) ** 2)
  weights = {name: value.astype(np.float64) for name, value in values.items()}
  for v, grad in zip(params, grads):
    direction = rng.normal(size=grad.shape)
    shifted = [dict(weights, **{v.op.name: weights[v.op.name] + sign * 1e-6 * direction})
               for sign in (1, -1)]
    numeric = (loss(shifted[0]) - loss(shifted[1])) / 2e-6
    assert np.sum(grad * direction) == pytest.approx(numeric, rel=1e-3, abs=1e-6), v.op.name


def test_generic_dropout_only_in_training():
  cfg = config(input_size=4, source=3, target=3, rnn=6, keep=0.5)
  graph, model = build(tprnn_generic_model.TPRNNGenericModel, cfg)
  enc, dec_in, dec_out = feeds(np.random.RandomState(1), 2, cfg)
  feed = {model.encoder_inputs: enc, model.decoder_inputs: dec_in, model.decoder_outputs: dec_out}
  with tf.Session(graph=graph) as sess:
    sess.run(tf.global_variables_initializer())
    a, b = sess.run(model.outputs, feed), sess.run(model.outputs, feed)
    feed[model.keep_prob] = 0.5
    c = sess.run(model.outputs, feed)
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)


def test_training_step_updates_learning_rate_and_global_step():
  graph, model = build(tprnn_basic_model.TPRNNBasicModel,
                       config(input_size=4, source=3, target=3, rnn=6))
  with graph.as_default():
    update = gradients.training_op(model, OneProcess(cluster.ONE_PROCESS), lambda opt: opt)
  enc, dec_in, dec_out = feeds(np.random.RandomState(2), 2, model.config)
  with tf.Session(graph=graph) as sess:
    sess.run(tf.global_variables_initializer())
    feed = {model.encoder_inputs: enc, model.decoder_inputs: dec_in, model.decoder_outputs: dec_out}
    before = sess.run(model.loss, feed)
    for _ in range(3):
      sess.run(update, feed)
    sess.run(model.learning_rate_decay_op)
    assert sess.run(model.global_step) == 3
    assert sess.run(model.learning_rate) == pytest.approx(0.01 * 0.95)
    assert sess.run(model.loss, feed) < before
