"""The one gradient pipeline of every run:

  compute (the model's own gradients) -> average across workers -> loss-scale
  handling (unscale; skip the update on overflow) -> clip -> apply.

Each stage before the clip is a tf.train.Optimizer around the previous one, so
the loss-scaling optimizers of TensorFlow and Ascend (which call the inner
optimizer's compute_gradients with their scaled loss and own apply_gradients)
plug in unchanged, and so does Ascend's gradient all-reduce."""

import tensorflow.compat.v1 as tf


class _Stage(tf.train.Optimizer):
  """An optimizer whose updates are those of `inner`: a stage only changes
  how gradients are computed."""

  def __init__(self, inner):
    super(_Stage, self).__init__(use_locking=False, name=inner.get_name())
    self.inner = inner

  def apply_gradients(self, grads_and_vars, global_step=None, name=None):
    return self.inner.apply_gradients(grads_and_vars, global_step=global_step, name=name)


class ModelGradients(_Stage):
  """Computes gradients with the model's `gradients(loss, params)`."""

  def __init__(self, inner, gradients):
    super(ModelGradients, self).__init__(inner)
    self.gradients = gradients

  def compute_gradients(self, loss, var_list=None, **unused):
    var_list = list(var_list)
    return list(zip(self.gradients(loss, var_list), var_list))


class Averaged(_Stage):
  """Averages the gradients of `inner` across workers with `mean(tensors)`."""

  def __init__(self, inner, mean):
    super(Averaged, self).__init__(inner)
    self.mean = mean

  def compute_gradients(self, loss, var_list=None, **kwargs):
    pairs = self.inner.compute_gradients(loss, var_list, **kwargs)
    present = [i for i, (g, _) in enumerate(pairs) if g is not None]
    means = dict(zip(present, self.mean([pairs[i][0] for i in present])))
    return [(means.get(i), v) for i, (_, v) in enumerate(pairs)]


def training_op(model, backend, loss_scaling):
  """The update op of `model`'s trainable variables: see the module's
  docstring. backend.averaged and loss_scaling wrap an optimizer."""
  params = tf.trainable_variables()
  optimizer = ModelGradients(model.make_optimizer(), model.gradients)
  optimizer = backend.averaged(optimizer)
  optimizer = loss_scaling(optimizer)
  gradients = [g for g, _ in optimizer.compute_gradients(model.loss, params)]
  clipped, _ = tf.clip_by_global_norm(gradients, model.config.max_gradient_norm)
  # a list: Ascend's NPULossScaleOptimizer iterates it twice
  return optimizer.apply_gradients(list(zip(clipped, params)), global_step=model.global_step)
