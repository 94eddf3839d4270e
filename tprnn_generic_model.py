"""The generic TP-RNN: M levels, K scales, dropout, Adam (docs/PROTOCOL.md §5)."""

import tensorflow.compat.v1 as tf

from tprnn import prism

LEAKY_ALPHA = 0.2


class TPRNNGenericModel(prism.PrismModel):
  """Channel c <-> (level l, phase p), c = sum_{i<l} K^i + p; LSTM `lstm_l`
  is shared by the phases of level l. Generator `generator/generator{1,2}`,
  `generator/generator_output` (tf.layers names)."""

  def generator_contexts(self, call, contexts):
    """One context per level. The published code indexes the channel list
    with the phase, contexts[call mod K^l], so for K=2 the levels >= 1 only
    ever see level 0 again or a non-updating (zero) channel.
    `fix_generic_contexts` picks the channel of level l whose phase updated
    on the previous call instead."""
    if self.config.fix_generic_contexts:
      return [contexts[self.updated_channel(level, call)] for level in range(self.layers)]
    return [contexts[call % self.scale ** level] for level in range(self.layers)]

  def lstm_input_dropout(self, x):
    return self.dropout(x)

  def dropout(self, x):
    """Dropout at rate 1 - keep_prob; none at all (no random or boolean ops,
    as an exported inference graph needs) when the model has dropout_keep 1."""
    if self.config.dropout_keep >= 1.0:
      return x
    return tf.nn.dropout(x, rate=1.0 - self.keep_prob)

  def generator(self, velocity, contexts):
    """concat[velocity, contexts] -> 256 -> 128 -> P, LeakyReLU(0.2) and
    dropout after each hidden layer."""
    with tf.variable_scope("generator", reuse=tf.AUTO_REUSE):
      h = tf.concat([velocity] + contexts, axis=0)  # [P + levels*U, N]
      for units, name in ((256, "generator1"), (128, "generator2")):
        with tf.variable_scope(name):
          h = tf.nn.leaky_relu(self.dense(h, units), LEAKY_ALPHA)
        h = self.dropout(h)
      with tf.variable_scope("generator_output"):
        return self.dense(h, self.config.input_size)

  def make_optimizer(self):
    return tf.train.AdamOptimizer(self.learning_rate)
