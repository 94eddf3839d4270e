"""An independent numpy implementation of the basic TP-RNN forward pass,
written from the rules of docs/PROTOCOL.md §4 (not from the project's graph code)."""

import numpy as np


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def lstm(x, c, h, kernel, bias):
  z = np.concatenate([x, h], axis=1) @ kernel + bias
  n = h.shape[1]
  i, j, f, o = z[:, :n], z[:, n:2 * n], z[:, 2 * n:3 * n], z[:, 3 * n:]
  c = c * sigmoid(f + 1.0) + sigmoid(i) * np.tanh(j)
  return np.tanh(c) * sigmoid(o), c


def leaky(x, alpha):
  return np.where(x > 0, x, alpha * x)


def basic_forward(w, enc_in, dec_in, target_len, rnn_size, alpha=0.3):
  """w: {checkpoint name: array}. enc_in [N, in-1, P], dec_in [N, out, P];
  alpha: the generator's LeakyReLU slope. Returns predictions [N, out, P]."""
  n = enc_in.shape[0]
  cell0 = "setup_context_lstm/lstm_0/basic_lstm_cell/"
  cell1 = "setup_context_lstm/lstm_1/basic_lstm_cell/"
  k0, b0 = w[cell0 + "kernel"], w[cell0 + "bias"]
  k1, b1 = w[cell1 + "kernel"], w[cell1 + "bias"]
  zero = np.zeros((n, rnn_size))
  # channel -> (context output, c, h); channel 0 level 1, channels 1/2 level 2
  ctx = [zero, zero, zero]
  ctx_before = [zero, zero, zero]
  cell = [(zero, zero), (zero, zero), (zero, zero)]
  frames = [enc_in[:, t] for t in range(enc_in.shape[1])] + [dec_in[:, 0]]
  prev = frames[0]
  preds = []
  for step in range(enc_in.shape[1] + target_len):
    cur = frames[step] if step < len(frames) else preds[-1]
    vel = cur - prev
    h0, c0 = lstm(vel, cell[0][0], cell[0][1], k0, b0)
    new_ctx, new_cell = [h0, None, None], [(c0, h0), None, None]
    for ch, runs in ((1, step % 2 == 1), (2, step % 2 == 0)):
      if runs:
        h, c = lstm(h0, cell[ch][0], cell[ch][1], k1, b1)
        new_ctx[ch], new_cell[ch] = h, (c, h)
      else:
        new_ctx[ch], new_cell[ch] = ctx_before[ch], cell[ch]
    if step >= enc_in.shape[1]:
      level2 = ctx[2] if (step + 1) % 2 == 0 else ctx[1]
      x = np.concatenate([vel, ctx[0], level2], axis=1)
      x = leaky(x @ w["dense_1_W"] + w["dense_1_b"], alpha)
      x = leaky(x @ w["dense_2_W"] + w["dense_2_b"], alpha)
      preds.append(cur + x @ w["dense_3_W"] + w["dense_3_b"])
    ctx_before, ctx, cell = ctx, new_ctx, new_cell
    prev = cur
  return np.stack(preds, axis=1)


def generic_forward(w, enc_in, dec_in, target_len, rnn_size, scale, layers, fix, alpha=0.2):
  """The generic model of docs/PROTOCOL.md §5 (no dropout), one step at a
  time. w: {checkpoint name: array}; fix: --fix_generic_contexts. Returns
  predictions [N, out, P]."""
  n = enc_in.shape[0]
  channels = [(level, phase) for level in range(layers) for phase in range(scale ** level)]
  index = {channel: i for i, channel in enumerate(channels)}
  zero = np.zeros((n, rnn_size))
  ctx, ctx_before = [zero] * len(channels), [zero] * len(channels)
  cell = [(zero, zero)] * len(channels)  # (c, h)
  frames = [enc_in[:, t] for t in range(enc_in.shape[1])] + [dec_in[:, 0]]
  prev, preds = frames[0], []
  for step in range(enc_in.shape[1] + target_len):
    cur = frames[step] if step < len(frames) else preds[-1]
    vel = cur - prev
    new_ctx, new_cell = list(ctx_before), list(cell)  # a channel that waits: two steps back
    for i, (level, phase) in enumerate(channels):
      if (step - 1) % scale ** level == phase:
        x = vel if level == 0 else new_ctx[index[(level - 1, phase % scale ** (level - 1))]]
        cell_name = "setup_context_lstm/lstm_{}/basic_lstm_cell/".format(level)
        h, c = lstm(x, cell[i][0], cell[i][1], w[cell_name + "kernel"], w[cell_name + "bias"])
        new_ctx[i], new_cell[i] = h, (c, h)
    if step >= enc_in.shape[1]:
      if fix:  # the phase of each level that updated on the previous step
        read = [ctx[index[(level, (step - 2) % scale ** level)]] for level in range(layers)]
      else:  # as published: a phase used as a channel index
        read = [ctx[step % scale ** level] for level in range(layers)]
      x = np.concatenate([vel] + read, axis=1)
      prefix = "setup_context_lstm/generator/"
      for name in ("generator1", "generator2"):
        x = leaky(x @ w[prefix + name + "/kernel"] + w[prefix + name + "/bias"], alpha)
      preds.append(cur + x @ w[prefix + "generator_output/kernel"] +
                   w[prefix + "generator_output/bias"])
    ctx_before, ctx, cell = ctx, new_ctx, new_cell
    prev = cur
  return np.stack(preds, axis=1)
