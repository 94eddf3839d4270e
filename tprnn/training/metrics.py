"""metrics.csv in the experiment directory: the run's TensorBoard scalars as a table, one
row per step that has values, a column per `<train|test>/<tag>`, for pandas or a
spreadsheet. A resumed run keeps the rows up to the step it resumes from."""

import csv
import os

from tprnn.util import atomic_file

NAME = "metrics.csv"


class MetricsTable(object):
  """The scalars of a run {step: {column: value}}, rewritten whole by write()."""

  def __init__(self, directory, first_step):
    self.path = os.path.join(directory, NAME)
    self.rows = {step: row for step, row in read(self.path).items() if step <= first_step}

  def add(self, writer_name, values, step):
    """Scalars {tag: value} written to the `writer_name` (train, test) summaries at `step`."""
    row = self.rows.setdefault(step, {})
    row.update(("{}/{}".format(writer_name, tag), float(v)) for tag, v in values.items())

  def write(self):
    columns = sorted({column for row in self.rows.values() for column in row})
    with atomic_file.atomic_output(self.path) as tmp:
      with open(tmp, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["step"] + columns)
        for step in sorted(self.rows):
          out.writerow([step] + [repr(self.rows[step][c]) if c in self.rows[step] else ""
                                 for c in columns])


def read(path):
  """{step: {column: value}} of a metrics.csv; {} where there is none or it is unreadable
  (a resumed run then starts it afresh)."""
  try:
    with open(path, newline="") as f:
      rows = list(csv.DictReader(f))
    return {int(row.pop("step")): {k: float(v) for k, v in row.items() if v} for row in rows}
  except (OSError, ValueError, KeyError, TypeError):
    return {}
