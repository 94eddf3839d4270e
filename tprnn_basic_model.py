"""The basic TP-RNN (M=2 levels, K=2 scales) of the published checkpoints.

Generator and names follow the authors' Keras-1 code: Dense layers
`dense_{1,2,3}_W/_b` at the top level, LeakyReLU alpha 0.3, plain SGD.
"""

import tensorflow.compat.v1 as tf

from tprnn import prism

LEAKY_ALPHA = 0.3
PRISM = (2, 2, 1.0)  # the only (tprnn_scale, tprnn_layers, dropout_keep) it has


def unsupported_prism(scale, layers, dropout_keep):
  """The message for prism settings the basic model lacks, or None."""
  if (scale, layers, dropout_keep) == PRISM:
    return None
  return ("--model basic needs --tprnn_scale 2 --tprnn_layers 2 --dropout_keep 1.0 "
          "(got {} {} {}); use --model generic".format(scale, layers, dropout_keep))


class TPRNNBasicModel(prism.PrismModel):
  """docs/PROTOCOL.md §4. Channel 0 = level-1 LSTM `lstm_0`; channels 1 and 2 are the
  odd- and even-call phases of the level-2 LSTM `lstm_1`."""

  def __init__(self, config):
    message = unsupported_prism(config.tprnn_scale, config.tprnn_layers, config.dropout_keep)
    if message:
      raise ValueError(message)
    super(TPRNNBasicModel, self).__init__(config)

  def generator_contexts(self, call, contexts):
    """[level-1 context, the level-2 phase that updated on the last call]."""
    return [contexts[0], contexts[self.updated_channel(1, call)]]

  def generator(self, velocity, contexts):
    """concat[velocity, contexts] -> 256 -> 128 -> P, LeakyReLU(0.3).
    Variables live at the graph's top level, as Keras 1 named them."""
    with tf.variable_scope(tf.VariableScope(tf.AUTO_REUSE, name="")):
      h = tf.concat([velocity] + contexts, axis=0)  # [P + levels*U, N]
      h = tf.nn.leaky_relu(self.dense(h, 256, "dense_1_W", "dense_1_b"), LEAKY_ALPHA)
      h = tf.nn.leaky_relu(self.dense(h, 128, "dense_2_W", "dense_2_b"), LEAKY_ALPHA)
      return self.dense(h, self.config.input_size, "dense_3_W", "dense_3_b")

  def make_optimizer(self):
    return tf.train.GradientDescentOptimizer(self.learning_rate)
