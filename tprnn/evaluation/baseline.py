"""The zero-velocity baseline, scored by every protocol like a model."""

import numpy as np


def zero_velocity_predict(enc, dec_in, dec_out):
  """Repeats the last observed frame (decoder input 0) over the horizon.
  Returns (predictions [N, out, P], mean squared error)."""
  preds = np.repeat(dec_in[:, :1], dec_out.shape[1], axis=1)
  return preds, float(np.mean((dec_out - preds) ** 2))
