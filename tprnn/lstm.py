"""The LSTM of the prism on feature-major activations ([features, N], one
column per sequence): its weights' products (Projection), the cell of one
call, and the encoder's chains run side by side over many calls."""

import tensorflow.compat.v1 as tf


def plain_product(weights):
  """x [I, N] -> weights^T x [O, N] for weights [I, O], both ways a plain
  product: forward from weights^T made once a step (20% faster than a
  transpose_a product for 16-32 columns in fp32, 2x in bf16), input
  gradient weights dz (autodiff of the row-major x weights would give
  dz weights^T, a transpose_b product 4-5x slower on CPU)."""
  transposed = transpose(weights)  # [O, I]

  @tf.custom_gradient
  def product(x):
    return tf.matmul(transposed, x), lambda dz: tf.matmul(weights, dz)
  return product


def transpose(weights):
  """weights [I, O] -> weights^T [O, I] as a tensor of its own: grappler folds
  a 2-D transpose that feeds a product back into transpose_a, not this one."""
  rows, columns = weights.shape.as_list()
  cube = tf.transpose(tf.reshape(weights, [1, rows, columns]), [0, 2, 1])  # [1, O, I]
  return tf.reshape(cube, [columns, rows])


class Projection(object):
  """A weight `kernel` [I, O] + `bias` [O] used many times, its rows cut in
  parts (an LSTM kernel: the input's rows, then the recurrent h's), each
  multiplying its own input. Every use adds its inputs (one [rows, n] per
  part) and outputs (pre-activations whose columns, side by side, are the
  inputs' columns), so the weight gradient is one product of all the
  stacked inputs [I, T*N] and output gradients [O, T*N] instead of T small
  ones and their sum (see PrismModel.gradients)."""

  def __init__(self, kernel, bias, rows):
    self.kernel, self.bias = kernel, bias
    weights = tf.stop_gradient(kernel)  # [I, O]; its gradient is weight_gradients
    self.bias_column = tf.reshape(tf.stop_gradient(bias), [-1, 1])  # [O, 1]
    parts = tf.split(weights, rows, axis=0) if len(rows) > 1 else [weights]  # [rows_k, O]
    self.products = [plain_product(w) for w in parts]
    self.inputs, self.outputs = [[] for _ in rows], []

  def __call__(self, *parts):
    """One input [rows_k, N] per part -> kernel^T concat(parts) + bias [O, N]."""
    z = self.products[0](parts[0])
    for product, x in zip(self.products[1:], parts[1:]):
      z = z + product(x)
    z = z + self.bias_column
    self.record(parts, [z])
    return z

  def record(self, parts, outputs):
    """Adds a use: one input [rows_k, n] per part; outputs whose columns
    side by side are the n."""
    for inputs, x in zip(self.inputs, parts):
      inputs.append(x)
    self.outputs.extend(outputs)

  def weight_gradients(self, output_gradients):
    """d kernel [I, O], d bias [O] from the gradients [O, n] of every output
    (None where one does not reach the loss); (None, None) if none does."""
    if all(g is None for g in output_gradients):
      return None, None
    grads = tf.concat([tf.zeros_like(z) if g is None else g
                       for z, g in zip(self.outputs, output_gradients)], axis=1)  # [O, T*N]
    inputs = tf.concat([tf.concat(part, axis=1) for part in self.inputs], axis=0)  # [I, T*N]
    return tf.matmul(inputs, grads, transpose_b=True), tf.reduce_sum(grads, axis=1)


def new_state(gates, c=None):
  """BasicLSTMCell's (new c, new h) [U, N] from gate pre-activations [4U, N]
  (i, j, f, o; forget bias 1.0) and cell c [U, N], None for a zero cell."""
  i, j, f, o = tf.split(gates, 4, axis=0)
  new_c = tf.sigmoid(i) * tf.tanh(j)
  if c is not None:
    new_c = c * tf.sigmoid(f + 1.0) + new_c
  return new_c, tf.tanh(new_c) * tf.sigmoid(o)


def lstm_cell(projection, inputs, state):
  """BasicLSTMCell of one call on inputs [I, N] and state (c, h), each
  [U, N], its gates from `projection` (kernel [I + U, 4U], parts I and U).
  Returns the new state (c, h)."""
  return new_state(projection(inputs, state[1]), state[0])


def side_by_side(blocks, counts=None):
  """Blocks [F, k_j*N] (k_j = counts[j], default 1) -> [F, sum(k_j)*N], in
  order. Joined on a middle axis: the gradient of a join on the last axis
  copies one number at a time (10 ms for 49 blocks [1024, 16])."""
  if len(blocks) == 1:
    return blocks[0]
  features = int(blocks[0].shape[0])
  cubes = [tf.reshape(b, [features, k, -1]) for b, k in zip(blocks, counts or [1] * len(blocks))]
  return tf.reshape(tf.concat(cubes, axis=1), [features, -1])  # [F, sum k_j, N] -> [F, sum k_j * N]


def apart(block, counts):
  """[F, sum(k_j)*N] -> blocks [F, k_j*N] (k_j = counts[j]): the inverse of
  side_by_side."""
  if len(counts) == 1:
    return [block]
  features = int(block.shape[0])
  cubes = tf.split(tf.reshape(block, [features, sum(counts), -1]), counts, axis=1)  # [F, k_j, N]
  return [tf.reshape(cube, [features, -1]) for cube in cubes]


def run_chains(projection, inputs, rounds, cells=None):
  """Runs the LSTM of `projection` (kernel [I + U, 4U]) on every call of
  `rounds`. inputs [I, T*N]: the input of call t in columns t*N ..
  (t+1)*N - 1 (t counted from the first call of `rounds`). rounds: lists of
  (call, chain), calls in order, a chain at most once per round. cells:
  {chain: state (c, h)} the chains carry on from. A round's chains all carry
  on (from cells or an earlier round) or all start from a zero state.

  The input half of every call is one product; each round's recurrent half
  is one product over its chains side by side. Returns (h of every call
  [U, T*N], laid out as inputs, {call: h [U, N]}, {chain: its last state
  (c, h)})."""
  project_inputs, project_recurrent = projection.products
  gates = project_inputs(inputs) + projection.bias_column  # [4U, T*N]
  sizes = [len(r) for r in rounds]
  cells, outputs, recurrent_inputs, round_outputs = dict(cells or {}), {}, [], []
  for members, z in zip(rounds, apart(gates, sizes)):  # z [4U, k*N]
    if members[0][1] in cells:
      h = side_by_side([cells[chain][1] for _, chain in members])  # [U, k*N]
      c = side_by_side([cells[chain][0] for _, chain in members])
      z = z + project_recurrent(h)
    else:  # zero states, whose recurrent half is zero
      h, c = tf.zeros([int(z.shape[0]) // 4, tf.shape(z)[1]]), None
    new_c, new_h = new_state(z, c)
    recurrent_inputs.append(h)
    round_outputs.append(new_h)
    ones = [1] * len(members)
    for (call, chain), c_k, h_k in zip(members, apart(new_c, ones), apart(new_h, ones)):
      cells[chain], outputs[call] = (c_k, h_k), h_k
  # the gradient of `gates` is that of every round's z, side by side
  projection.record([inputs, side_by_side(recurrent_inputs, sizes)], [gates])
  return side_by_side(round_outputs, sizes), outputs, cells
