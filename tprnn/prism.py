"""Graph pieces shared by the basic and generic TP-RNN models: the LSTM cell,
the roll-out over encoder frames and own predictions, and the gradients of
its weights (the update op is built by tprnn.gradients).

Layers are built from `get_variable` + `matmul` (not `tf.nn.rnn_cell` or
`tf.layers`, which Keras 3 removed) under the variable scopes of the original,
so checkpoints keep their names on TF 1.15 and 2.x alike.
"""

import collections

import numpy as np
import tensorflow.compat.v1 as tf

ModelConfig = collections.namedtuple("ModelConfig", [
    "input_size",        # P: 54 for H3.6M, 26 for Penn Action
    "source_seq_len",    # encoder gets source_seq_len - 1 frames
    "target_seq_len",    # frames predicted
    "rnn_size",
    "max_gradient_norm",
    "learning_rate",
    "learning_rate_decay_factor",
    "tprnn_scale",       # K
    "tprnn_layers",      # M
    "dropout_keep",
    "fix_generic_contexts",
])

# The published checkpoints name the learning rate and global step this way.
LEARNING_RATE_NAME = "Variable"
GLOBAL_STEP_NAME = "Variable_1"
VELOCITY_FILTER = np.array([[-1.0], [1.0]], dtype=np.float32)


class Projection(object):
  """A weight `kernel` [I, O] + `bias` [O] applied at many time steps to
  feature-major activations x [I, N] (one column per sequence).

  The input gradient is the plain product kernel dz (a custom gradient):
  autodiff of the row-major x kernel would give dz kernel^T, a transpose_b
  product 4-5x slower on CPU, and in bf16 plain products are the fastest
  form. The weight gradient is one product of the stacked step inputs
  [I, T*N] and pre-activation gradients [O, T*N] instead of T small ones
  and their sum (see PrismModel.gradients).
  """

  def __init__(self, kernel, bias):
    self.kernel, self.bias = kernel, bias
    weights = tf.stop_gradient(kernel)  # [I, O]
    self.bias_column = tf.reshape(tf.stop_gradient(bias), [-1, 1])  # [O, 1]
    self.inputs, self.outputs = [], []

    @tf.custom_gradient
    def project(x):
      """kernel^T x, with input gradient kernel dz as a plain product."""
      return tf.matmul(weights, x, transpose_a=True), lambda dz: tf.matmul(weights, dz)
    self._project = project

  def __call__(self, x):
    """x [I, N] -> kernel^T x + bias [O, N]."""
    z = self._project(x) + self.bias_column
    self.inputs.append(x)
    self.outputs.append(z)
    return z

  def weight_gradients(self, output_gradients):
    """d kernel [I, O], d bias [O] from the gradients [O, N] of every use
    (None where a use does not reach the loss); (None, None) if none does."""
    if all(g is None for g in output_gradients):
      return None, None
    grads = tf.concat([tf.zeros_like(z) if g is None else g
                       for z, g in zip(self.outputs, output_gradients)], axis=1)  # [O, T*N]
    inputs = tf.concat(self.inputs, axis=1)  # [I, T*N]
    return tf.matmul(inputs, grads, transpose_b=True), tf.reduce_sum(grads, axis=1)


def lstm_cell(project, inputs, state, num_units):
  """BasicLSTMCell (state_is_tuple=False, forget bias 1.0) on feature-major
  activations, its gate pre-activations from `project` (a PrismModel.dense in
  the scope holding `basic_lstm_cell/kernel`). inputs [I, N], state [2U, N] =
  concat[c, h]. Returns (h [U, N], new state [2U, N])."""
  c, h = tf.split(state, 2, axis=0)
  with tf.variable_scope("basic_lstm_cell"):
    gates = project(tf.concat([inputs, h], axis=0), 4 * num_units)  # [4U, N]
  i, j, f, o = tf.split(gates, 4, axis=0)
  new_c = c * tf.sigmoid(f + 1.0) + tf.sigmoid(i) * tf.tanh(j)
  new_h = tf.tanh(new_c) * tf.sigmoid(o)
  return new_h, tf.concat([new_c, new_h], axis=0)


def channel_offset(level, scale):
  """First channel index of `level`: sum_{i < level} K^i."""
  return sum(scale ** i for i in range(level))


def prism_channels(scale, layers):
  """(level, phase) of every channel, in channel order."""
  return [(level, phase) for level in range(layers) for phase in range(scale ** level)]


def channel_updates(level, phase, call, scale):
  """Whether channel (level, phase) runs its LSTM on call `call` (0-based)."""
  return (call - 1) % scale ** level == phase


class PrismModel(object):
  """M-level / K-scale LSTM prism predicting pose velocities (docs/PROTOCOL.md §4-5).

  Subclasses define the generator, which contexts it reads, the LSTM input
  dropout and the optimiser. Placeholders: encoder_inputs [N, in-1, P],
  decoder_inputs [N, out, P], decoder_outputs [N, out, P]; the output
  `outputs` is [N, out, P] and `loss` the mean squared error; make_optimizer
  and gradients serve tprnn.gradients. Inside the
  roll-out, poses, contexts and states are feature-major, [features, N].
  """

  def __init__(self, config):
    self.config = config
    self.scale, self.layers = config.tprnn_scale, config.tprnn_layers
    self.channels = prism_channels(self.scale, self.layers)
    self.learning_rate = tf.Variable(float(config.learning_rate), trainable=False,
                                     dtype=tf.float32, name=LEARNING_RATE_NAME)
    self.learning_rate_decay_op = self.learning_rate.assign(
        self.learning_rate * config.learning_rate_decay_factor)
    self.global_step = tf.Variable(0, trainable=False, name=GLOBAL_STEP_NAME)
    self.keep_prob = tf.placeholder_with_default(1.0, [], name="dropout_keep")
    self.projections = {}  # kernel name -> Projection
    self._build_inputs()
    self.outputs = self._rollout()
    with tf.name_scope("loss_angles"):
      self.loss = tf.reduce_mean(tf.square(self.decoder_outputs - self.outputs))

  def _build_inputs(self):
    c = self.config
    with tf.name_scope("inputs"):
      self.encoder_inputs = tf.placeholder(
          tf.float32, [None, c.source_seq_len - 1, c.input_size], name="enc_in")
      self.decoder_inputs = tf.placeholder(
          tf.float32, [None, c.target_seq_len, c.input_size], name="dec_in")
      self.decoder_outputs = tf.placeholder(
          tf.float32, [None, c.target_seq_len, c.input_size], name="dec_out")

  def _filters(self):
    """The three fixed [[-1], [1]] velocity filters of the original; all give
    the same velocity, filter0 is the one applied."""
    with tf.variable_scope("setup_context_lstm_filter"):
      return [tf.get_variable("filter{}".format(i), initializer=VELOCITY_FILTER,
                              trainable=False) for i in range(3)]

  def _rollout(self):
    """Feeds encoder frames, then dec_in[0], then the model's own predictions.
    Returns the stacked predictions [N, out, P]."""
    c = self.config
    f = self._filters()[0]
    enc = tf.unstack(tf.transpose(self.encoder_inputs, [1, 2, 0]))  # in-1 x [P, N]
    first_decoder_pose = tf.transpose(self.decoder_inputs[:, 0])  # [P, N]
    zeros = tf.zeros([c.rnn_size, tf.shape(self.encoder_inputs)[0]])  # [U, N]
    contexts = [zeros] * len(self.channels)
    previous_contexts = contexts
    states = [tf.concat([zeros, zeros], axis=0)] * len(self.channels)

    predictions = []
    previous_pose = enc[0]
    num_calls = len(enc) + c.target_seq_len
    with tf.variable_scope("setup_context_lstm"):
      for call in range(num_calls):
        if call < len(enc):
          pose = enc[call]
        elif call == len(enc):
          pose = first_decoder_pose
        else:
          pose = predictions[-1]
        velocity = f[0, 0] * previous_pose + f[1, 0] * pose
        new_contexts, states = self._prism_step(call, velocity, contexts,
                                                previous_contexts, states)
        if call >= len(enc):  # encoder-stage predictions are never used
          predictions.append(pose + self.generator(
              velocity, self.generator_contexts(call, contexts)))
        previous_pose = pose
        previous_contexts, contexts = contexts, new_contexts
    return tf.transpose(tf.stack(predictions), [2, 0, 1])  # [out, P, N] -> [N, out, P]

  def _prism_step(self, call, velocity, contexts, previous_contexts, states):
    """One call of every channel: an updating channel runs its level's LSTM on
    the new output of the channel below (level 0: on the velocity); the
    others keep their state and output the context of two calls ago."""
    new_contexts, new_states = [], []
    for channel, (level, phase) in enumerate(self.channels):
      with tf.variable_scope("lstm_{}".format(level), reuse=tf.AUTO_REUSE):
        if channel_updates(level, phase, call, self.scale):
          if level == 0:
            lstm_input = velocity
          else:
            below = channel_offset(level - 1, self.scale) + phase % self.scale ** (level - 1)
            lstm_input = new_contexts[below]
          h, state = lstm_cell(self.dense, self.lstm_input_dropout(lstm_input),
                               states[channel], self.config.rnn_size)
        else:
          h, state = previous_contexts[channel], states[channel]
      new_contexts.append(h)
      new_states.append(state)
    return new_contexts, new_states

  def dense(self, inputs, units, kernel_name="kernel", bias_name="bias"):
    """Feature-major inputs [I, N] -> kernel^T inputs + bias [units, N], with
    Glorot-uniform kernel [I, units] and zero bias named in the current
    variable scope (which must reuse), through the kernel's Projection."""
    kernel = tf.get_variable(kernel_name, [int(inputs.shape[0]), units],
                             initializer=tf.glorot_uniform_initializer())
    bias = tf.get_variable(bias_name, [units], initializer=tf.zeros_initializer())
    if kernel.op.name not in self.projections:
      self.projections[kernel.op.name] = Projection(kernel, bias)
    return self.projections[kernel.op.name](inputs)

  def updated_channel(self, level, call):
    """The channel of `level` whose phase updated on the call before `call`."""
    return channel_offset(level, self.scale) + (call - 2) % self.scale ** level

  def lstm_input_dropout(self, x):
    return x

  def generator(self, velocity, contexts):
    raise NotImplementedError

  def generator_contexts(self, call, contexts):
    raise NotImplementedError

  def make_optimizer(self):
    raise NotImplementedError

  def gradients(self, loss, params):
    """d loss / d params, each weight's gradient gathered by its Projection.
    None for a parameter the loss does not reach."""
    projections = list(self.projections.values())
    outputs = [z for p in projections for z in p.outputs]
    output_grads = iter(tf.gradients(loss, outputs))
    grads = {}  # by variable name
    for p in projections:
      grads[p.kernel.op.name], grads[p.bias.op.name] = p.weight_gradients(
          [next(output_grads) for _ in p.outputs])
    return [grads[v.op.name] for v in params]
