"""Launching on Ascend: the HCCL rank table (rank_table.py) and scripts/train_npu_8p.sh with a
stand-in Python: each rank on its table device, the HCCL timeout, the example table's warning,
failing ranks and one-line environment errors. Real ranks: test_ascend_distributed.py."""

import os
import re
import sys
import time

import pytest

from tprnn.parallel import rank_table
from conftest import ROOT, run_command as run, write_rank_table as write_table

LAUNCH = os.path.join(ROOT, "scripts", "train_npu_8p.sh")
SHIPPED_TABLE = os.path.join(ROOT, "scripts", "rank_table_8p.json")


@pytest.mark.parametrize("layout", ["1.0", "group_list"])
def test_rank_table_gives_each_rank_its_device(tmp_path, layout):
  table = write_table(tmp_path / "t.json", [4, 6, 7], layout)
  assert rank_table.device_ids(table, 3) == ["4", "6", "7"]
  assert not rank_table.is_placeholder(table)
  assert rank_table.is_placeholder(SHIPPED_TABLE)
  assert rank_table.device_ids(SHIPPED_TABLE, 8) == [str(d) for d in range(8)]


@pytest.mark.parametrize("rank_size,devices,message", [
    (2, [4, 6, 7], "RANK_SIZE=2 but RANK_TABLE_FILE {} lists ranks 0-2: HCCL's world is every rank "
                   "of the table, so this run needs a table of ranks 0..1"),
    (4, [4, 6, 7], "RANK_SIZE=4 but RANK_TABLE_FILE {} lists ranks 0-2"),
    (2, ["1", ".."], "RANK_TABLE_FILE {}: device_id '..' is not a device number"),
])
def test_rank_table_must_hold_the_runs_ranks_and_device_numbers(tmp_path, rank_size, devices,
                                                                 message):
  table = write_table(tmp_path / "t.json", devices)
  with pytest.raises(rank_table.RankTableError) as error:
    rank_table.device_ids(table, rank_size)
  assert message.format(table) in str(error.value)


RANK_STAND_IN = """
import os, signal, sys, time
print("rank", os.environ["RANK_ID"], "device", os.environ["ASCEND_DEVICE_ID"], os.environ["DEVICE_ID"],
      "of", os.environ["RANK_SIZE"], "job", os.environ["JOB_ID"], "timeout",
      os.environ["HCCL_EXEC_TIMEOUT"], "argv", *sys.argv[1:])
sys.stdout.flush()
if os.environ["RANK_ID"] == os.environ.get("FAILING_RANK"):
  time.sleep(1)  # the other ranks have started and printed by then
  sys.exit(4)
if os.environ["RANK_ID"] == os.environ.get("STOPPED_RANK"):
  sys.exit(128 + signal.SIGTERM)  # as a rank sent SIGTERM, which stops every rank at one step
if os.environ.get("FAILING_RANK") is not None:
  signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as a rank waiting in HCCL for the dead one
time.sleep(0.5 if os.environ.get("FAILING_RANK") is None else 60)
"""


def stand_in(tmp_path):
  path = tmp_path / "rank_stand_in.py"
  path.write_text(RANK_STAND_IN)
  return str(path)


@pytest.mark.parametrize("failing_rank", [None, pytest.param("1", marks=pytest.mark.slow)])
def test_launch_script_runs_each_rank_on_its_table_device(tmp_path, failing_rank):
  table = write_table(tmp_path / "t.json", [4, 6, 7])
  env = dict(PYTHON=sys.executable, RANK_SIZE="3", RANK_TABLE_FILE=table, LOG_DIR=str(tmp_path / "logs"))
  if failing_rank is not None:
    env["FAILING_RANK"] = failing_rank
  start = time.time()
  code, out, err = run(["bash", LAUNCH, stand_in(tmp_path), "--rnn_size", "8"], env)
  assert code == (0 if failing_rank is None else 1), err
  assert "Started 3 ranks on devices 4 6 7" in out and "warning" not in err
  for rank, device in enumerate([4, 6, 7]):
    with open(str(tmp_path / "logs" / str(device) / "train_{}.log".format(device))) as f:
      assert f.read().startswith("rank {0} device {1} {1} of 3 job 10087 timeout 3672 argv --device "
                                 "npu --dist npu --rnn_size 8".format(rank, device))
  if failing_rank is not None:  # the others ignore SIGTERM: killed once the 15 s grace is over
    assert "error: a rank exited with status 4; stopping all ranks" in err
    assert 15 <= time.time() - start < 40


def test_a_rank_stopped_by_sigterm_is_an_interruption_not_a_failure(tmp_path):
  env = dict(PYTHON=sys.executable, RANK_SIZE="2", STOPPED_RANK="1", LOG_DIR=str(tmp_path / "logs"),
             RANK_TABLE_FILE=write_table(tmp_path / "t.json", [0, 1]))
  code, out, err = run(["bash", LAUNCH, stand_in(tmp_path)], env)
  assert code == 128 + 15 and "error" not in err, err


def test_launch_script_keeps_a_users_timeout_and_warns_of_the_placeholder_table(tmp_path):
  env = dict(PYTHON=sys.executable, RANK_SIZE="8", HCCL_EXEC_TIMEOUT="1000",
             LOG_DIR=str(tmp_path / "logs"))
  code, out, err = run(["bash", LAUNCH, stand_in(tmp_path)], env)
  assert code == 0, err
  assert "warning: HCCL_EXEC_TIMEOUT=1000 is not a multiple of 68: HCCL waits 952 s" in err
  assert re.search(r"warning: \S+rank_table_8p.json is the example table \(documentation "
                   r"addresses 192.0.2.x\), not this server's", err)
  with open(str(tmp_path / "logs" / "1" / "train_1.log")) as f:
    assert "timeout 1000" in f.read()


@pytest.mark.parametrize("env,message", [
    ({"RANK_SIZE": "4"}, "RANK_SIZE=4 but RANK_TABLE_FILE {table} lists ranks 0-2"),
    ({"RANK_SIZE": "2"}, "RANK_SIZE=2 but RANK_TABLE_FILE {table} lists ranks 0-2"),
    ({"RANK_SIZE": "0"}, "RANK_SIZE=0: expected a number of devices, 1 or more"),
    ({"HCCL_EXEC_TIMEOUT": "30"}, "HCCL_EXEC_TIMEOUT=30: expected whole seconds in 68..17340"),
    ({"HCCL_EXEC_TIMEOUT": "1h"}, "HCCL_EXEC_TIMEOUT=1h: expected whole seconds in 68..17340"),
    ({"HCCL_EXEC_TIMEOUT": "0900"}, "HCCL_EXEC_TIMEOUT=0900: expected whole seconds in 68..17340"),
    ({"RANK_TABLE_FILE": "{tmp}/none.json"}, "RANK_TABLE_FILE {tmp}/none.json: No such file"),
])
def test_launch_script_environment_errors_are_one_line(tmp_path, env, message):
  table = write_table(tmp_path / "t.json", [0, 1, 2])

  def fill(text):
    return text.format(table=table, tmp=tmp_path)

  env = dict({"PYTHON": sys.executable, "RANK_SIZE": "3", "RANK_TABLE_FILE": table},
             **{k: fill(v) for k, v in env.items()})
  code, out, err = run(["bash", LAUNCH, stand_in(tmp_path)], env)
  assert (code, out) == (1, "") and err.count("\n") == 1 and err.startswith("error: "), err
  assert fill(message) in err
