"""The HCCL rank table of an Ascend run ($RANK_TABLE_FILE): which NPU each rank drives. HCCL's
world group is every rank the table lists, so a run has exactly that many ranks. Reads both
layouts CANN accepts: version 1.0 (`server_list[].device[]` with `rank_id`) and the older
`group_list[].instance_list[].devices[]` (ranks in listed order). It imports no TensorFlow, so the launch
script can ask it before any TensorFlow starts (from the repository root):

  python3 -m tprnn.parallel.rank_table TABLE RANK_SIZE     # prints the device id of ranks 0..RANK_SIZE-1
"""

import ipaddress
import json
import re
import sys

from tprnn.util import errors

# RFC 5737 documentation addresses: the shipped example table holds these, never a real server.
PLACEHOLDER_NETWORK = ipaddress.ip_network("192.0.2.0/24")


class RankTableError(errors.Error):
  """A rank table that cannot drive the run; one line naming the file."""


def read(path):
  """The table's JSON object."""
  try:
    with open(path, encoding="utf-8") as f:
      table = json.load(f)
  except OSError as e:
    raise RankTableError("RANK_TABLE_FILE {}: {}".format(path, e.strerror))
  except ValueError as e:
    raise RankTableError("RANK_TABLE_FILE {} is not JSON: {}".format(path, e))
  if not isinstance(table, dict):
    raise RankTableError("RANK_TABLE_FILE {} is not a rank table (a JSON object)".format(path))
  return table


def devices(table, path):
  """[(rank, device id, device ip)] of every device the table lists, by rank."""
  try:
    if "server_list" in table:
      found = [(int(d["rank_id"]), str(d["device_id"]), d.get("device_ip", ""))
               for server in table["server_list"] for d in server["device"]]
    elif "group_list" in table:
      listed = [d for group in table["group_list"] for instance in group["instance_list"]
                for d in instance["devices"]]
      found = [(rank, str(d["device_id"]), d.get("device_ip", "")) for rank, d in enumerate(listed)]
    else:
      raise KeyError("server_list")
  except (KeyError, TypeError, ValueError) as e:
    raise RankTableError("RANK_TABLE_FILE {}: no {} in the layout CANN expects (server_list[].device[] "
                         "with device_id and rank_id)".format(path, e))
  bad = [device for _, device, _ in found if not re.match(r"^[0-9]+$", device)]
  if bad:
    raise RankTableError("RANK_TABLE_FILE {}: device_id {!r} is not a device number".format(
        path, bad[0]))
  return sorted(found)


def device_ids(path, rank_size):
  """The device id of ranks 0..rank_size-1, the ranks the table must list."""
  listed = devices(read(path), path)
  ranks = sorted(rank for rank, _, _ in listed)
  if ranks != list(range(rank_size)):
    raise RankTableError("RANK_SIZE={} but RANK_TABLE_FILE {} lists ranks {}: HCCL's world is every "
                         "rank of the table, so this run needs a table of ranks 0..{}".format(
                             rank_size, path, _ranges(ranks), rank_size - 1))
  return [device for _, device, _ in listed]


def _ranges(numbers):
  """'0-7' or '0, 2, 5' of sorted numbers."""
  if numbers and numbers == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 2:
    return "{}-{}".format(numbers[0], numbers[-1])
  return ", ".join(map(str, numbers)) or "none"


def is_placeholder(path):
  """Whether the table names documentation addresses (192.0.2.x), as the shipped example does."""
  table = read(path)
  addresses = [ip for _, _, ip in devices(table, path)]
  addresses += [s.get("server_id", "") for s in table.get("server_list", [])]
  for text in addresses:
    try:
      if ipaddress.ip_address(text) in PLACEHOLDER_NETWORK:
        return True
    except ValueError:
      continue
  return False


def main(argv):
  if len(argv) != 2 or not argv[1].isdigit():
    raise RankTableError("usage: python3 -m tprnn.parallel.rank_table TABLE RANK_SIZE")
  print(" ".join(device_ids(argv[0], int(argv[1]))))
  if is_placeholder(argv[0]):
    print("warning: {} is the example table (documentation addresses 192.0.2.x), not this server's: "
          "HCCL cannot connect with it; write your server's server_id and device_ip "
          "(from /etc/hccn.conf) and set RANK_TABLE_FILE".format(argv[0]), file=sys.stderr)


if __name__ == "__main__":
  raise SystemExit(errors.run_main(main))
