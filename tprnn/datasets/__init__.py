"""The datasets, one module each behind one interface, and their registry.

A dataset module defines:
  NAME, DESCRIPTION, DEFAULTS   --dataset value, the script's --help line, the
                                defaults of data_dir, seq_length_in, seq_length_out
  add_flags(parser), derived_flags(flags) -> {name: value}, check_flags(config)
  directory_parts(config)       -> (parts after --train_dir, parts after the model)
  training_task(config), sampling_task(config, normalisation)   see base.py
  zero_velocity(config)         the baseline's evaluation (and --sample file)
  normalisation_of_run(config, directory), inference_shape(config, normalisation),
  inference_graph(config, run_model, normalisation, batch), FRAMES_PER_SECOND   export.py
  FORECAST_STRIDE, FORECAST_INPUT, add_forecast_args(parser), forecast_frames(poses),
  forecast_feeds(observed, args), forecast_rows(forecast)                       forecast.py
and a module beside it draws its samples files for visualize.py (COMMAND,
add_command, run, curves, horizon, MARKER, Y_LABELS), imported without
TensorFlow.
"""

import importlib

from tprnn.util.errors import UsageError

# --dataset name -> (dataset module, figures module)
DATASETS = {"human": ("tprnn.datasets.h36m", "tprnn.datasets.h36m_figures"),
            "penn": ("tprnn.datasets.penn", "tprnn.datasets.penn_figures"),
            "cmu": ("tprnn.datasets.cmu", "tprnn.datasets.cmu_figures")}


def get(name):
  """The dataset module of --dataset `name`."""
  if name not in DATASETS:
    raise UsageError("unknown dataset '{}': expected one of {}".format(
        name, ", ".join(sorted(DATASETS))))
  return importlib.import_module(DATASETS[name][0])


def figures():
  """The figures module of every dataset."""
  return [importlib.import_module(f) for _, f in DATASETS.values()]
