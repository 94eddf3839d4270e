#!/usr/bin/env bash
# The H3.6M exponential-map release into data/h3.6m/dataset/, file by file from a pinned
# public copy (or --mirror URL, $TPRNN_H36M_MIRROR), or from a local h3.6m.zip; every file
# is checked against data/manifests/h36m.txt and only verified files are kept.
#   bash data/download_h36m.sh [--mirror URL] [path/to/h3.6m.zip]
root="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python3}" -m tprnn.downloads h36m "$@"
