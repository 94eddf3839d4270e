#!/usr/bin/env bash
# The Penn Action label files into data/Penn_Action/labels/, file by file from a pinned
# public copy (or --mirror URL, $TPRNN_PENN_MIRROR), or from a local Penn_Action.tar.gz or
# Penn_Action_Pose.tar.gz; every file is checked against data/manifests/penn.txt.
#   bash data/download_penn.sh [--mirror URL] [path/to/Penn_Action.tar.gz]
root="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python3}" -m tprnn.downloads penn "$@"
