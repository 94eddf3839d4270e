"""Graph pieces shared by the basic and generic TP-RNN models: the prism's
channels, the roll-out over encoder frames and own predictions, and the
gradients of its weights (the update op is built by tprnn.gradients).

Layers are built from `get_variable` + `matmul` (not `tf.nn.rnn_cell` or
`tf.layers`, which Keras 3 removed) under the variable scopes of the original,
so checkpoints keep their names on TF 1.15 and 2.x alike.
"""

import collections

import numpy as np
import tensorflow.compat.v1 as tf

from tprnn import lstm

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
# The encoder runs in segments of about this many calls (a multiple of the top
# level's period), so that a level's chains overlap the level below's.
ENCODER_SEGMENT_CALLS = 12


def velocity(velocity_filter, previous, current):
  """The original's filter [[-1], [1]] applied to two poses of any shape."""
  return velocity_filter[0, 0] * previous + velocity_filter[1, 0] * current


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
  and gradients serve tprnn.gradients. Inside the roll-out, poses,
  contexts and LSTM states (c, h) are feature-major, [features, N].
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
    """Feeds the encoder frames (all calls at once, see _encode), then
    dec_in[0], then the model's own predictions. Returns the stacked
    predictions [N, out, P]."""
    c = self.config
    f = self._filters()[0]
    calls = c.source_seq_len - 1
    poses = tf.transpose(self.encoder_inputs, [1, 2, 0])  # [calls, P, N]
    previous = tf.concat([poses[:1], poses[:-1]], axis=0)  # call 0 sees a zero velocity
    velocities = velocity(f, previous, poses)  # [calls, P, N]
    predictions = []
    previous_pose, pose = poses[-1], tf.transpose(self.decoder_inputs[:, 0])  # [P, N]
    with tf.variable_scope("setup_context_lstm"):
      contexts, previous_contexts, states = self._encode(velocities, calls)
      for call in range(calls, calls + c.target_seq_len):
        if predictions:
          pose = predictions[-1]
        step_velocity = velocity(f, previous_pose, pose)
        new_contexts, states = self._prism_step(call, step_velocity, contexts,
                                                previous_contexts, states)
        predictions.append(pose + self.generator(
            step_velocity, self.generator_contexts(call, contexts)))
        previous_pose = pose
        previous_contexts, contexts = contexts, new_contexts
    return tf.transpose(tf.stack(predictions), [2, 0, 1])  # [out, P, N] -> [N, out, P]

  def _encode(self, velocities, calls):
    """Every channel on the encoder's `calls` calls, a level at a time within
    each of a few segments of calls: nothing flows down there (the encoder's
    predictions are never used), so a level's inputs on a segment's calls
    are the outputs of the level below, and its phases are chains that run
    side by side (lstm.run_chains); a level's chains on one segment run
    beside the level below's on the next. velocities [calls, P, N]. Returns
    (contexts after the last call, after the one before, states), as the
    decoder's first call takes them."""
    u = self.config.rnn_size
    zeros = tf.zeros([u, tf.shape(self.encoder_inputs)[0]])  # [U, N]
    period = self.scale ** (self.layers - 1)
    length = period * max(1, int(round(ENCODER_SEGMENT_CALLS / period)))
    outputs, cells = [{} for _ in range(self.layers)], [{} for _ in range(self.layers)]
    for start in range(0, calls, length):
      segment = velocities[start:start + length]  # [s, P, N]
      inputs = tf.reshape(tf.transpose(segment, [1, 0, 2]), [int(segment.shape[1]), -1])  # [P, s*N]
      for level in range(self.layers):
        phases = self.scale ** level
        rounds = [[(call, (call - 1) % phases) for call in range(first, min(first + phases, calls))]
                  for first in range(start, min(start + length, calls), phases)]
        with tf.variable_scope("lstm_{}/basic_lstm_cell".format(level), reuse=tf.AUTO_REUSE):
          inputs = self.lstm_input_dropout(inputs)
          projection = self.projection([int(inputs.shape[0]), u], 4 * u)
          inputs, level_outputs, cells[level] = lstm.run_chains(projection, inputs, rounds,
                                                                cells[level])
        outputs[level].update(level_outputs)
    states = [cells[level].get(phase, (zeros, zeros)) for level, phase in self.channels]

    def context(level, phase, call):
      """What channel (level, phase) outputs on `call`: its h if it updates,
      else its output two calls before (zeros before call 0)."""
      for earlier in range(call, -1, -2):
        if channel_updates(level, phase, earlier, self.scale):
          return outputs[level][earlier]
      return zeros
    return ([context(level, phase, calls - 1) for level, phase in self.channels],
            [context(level, phase, calls - 2) for level, phase in self.channels], states)

  def _prism_step(self, call, velocity, contexts, previous_contexts, states):
    """One call of every channel: an updating channel runs its level's LSTM on
    the new output of the channel below (level 0: on the velocity); the
    others keep their state and output the context of two calls ago."""
    u = self.config.rnn_size
    new_contexts, new_states = [], []
    for channel, (level, phase) in enumerate(self.channels):
      if channel_updates(level, phase, call, self.scale):
        if level == 0:
          lstm_input = velocity
        else:
          below = channel_offset(level - 1, self.scale) + phase % self.scale ** (level - 1)
          lstm_input = new_contexts[below]
        with tf.variable_scope("lstm_{}/basic_lstm_cell".format(level), reuse=tf.AUTO_REUSE):
          lstm_input = self.lstm_input_dropout(lstm_input)
          state = lstm.lstm_cell(self.projection([int(lstm_input.shape[0]), u], 4 * u),
                                 lstm_input, states[channel])
        h = state[1]
      else:
        h, state = previous_contexts[channel], states[channel]
      new_contexts.append(h)
      new_states.append(state)
    return new_contexts, new_states

  def projection(self, rows, units, kernel_name="kernel", bias_name="bias"):
    """The Projection of the Glorot-uniform kernel [sum(rows), units] (in
    parts of `rows` rows) and zero bias [units] named in the current
    variable scope (which must reuse)."""
    kernel = tf.get_variable(kernel_name, [sum(rows), units],
                             initializer=tf.glorot_uniform_initializer())
    bias = tf.get_variable(bias_name, [units], initializer=tf.zeros_initializer())
    if kernel.op.name not in self.projections:
      self.projections[kernel.op.name] = lstm.Projection(kernel, bias, rows)
    return self.projections[kernel.op.name]

  def dense(self, inputs, units, kernel_name="kernel", bias_name="bias"):
    """Feature-major inputs [I, N] -> kernel^T inputs + bias [units, N]
    through the Projection of the kernel [I, units]."""
    return self.projection([int(inputs.shape[0])], units, kernel_name, bias_name)(inputs)

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
