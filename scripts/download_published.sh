#!/usr/bin/env bash
# The authors' published checkpoint (human: checkpoint-92000, H3.6M; penn: checkpoint-63000,
# Penn Action) from their repository's pinned commit (or --mirror URL, $TPRNN_PUBLISHED_MIRROR),
# checked against data/manifests/published.txt and laid out with its flags.json in the
# original's experiment directory, so the command it prints evaluates it.
#   bash scripts/download_published.sh human|penn [--mirror URL]
root="$(cd "$(dirname "$0")/.." && pwd)"
case "${1:-}" in
  human|penn) model="$1"; shift ;;
  *) echo "error: expected human or penn first: bash scripts/download_published.sh human|penn [--mirror URL]" >&2
     exit 1 ;;
esac
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python3}" -m tprnn.downloads "published-$model" "$@"
