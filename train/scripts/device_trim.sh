#!/usr/bin/env bash
# Make room in what a lent GPU call carries (64 MiB: the working tree plus carried folders). The
# tracked tree alone is larger (the snapshots, golden files, shipped models, results, screenshots),
# and a training call needs none of those folders, only train/'s code and .devdata/ (the deflated
# data pack and the staged checkpoints: sepnet_train.device_stage).
#
#   train/scripts/device_trim.sh hide      # before the run call
#   train/scripts/device_trim.sh restore   # after it (git checkout of the same folders)
#
# hide refuses while any of these folders has uncommitted changes, so restore loses nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
FOLDERS=(train/snapshots tests/golden www/models docs/results docs/screenshots)
case "${1:-}" in
  hide)
    if [[ -n $(git status --porcelain -- "${FOLDERS[@]}") ]]; then
      echo "device_trim.sh: uncommitted changes under ${FOLDERS[*]}; commit them first" >&2
      git status --short -- "${FOLDERS[@]}" >&2
      exit 1
    fi
    rm -rf "${FOLDERS[@]}"
    echo "tracked files left: $(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1) bytes;" \
      ".devdata: $(du -sb .devdata 2>/dev/null | cut -f1) bytes (64 MiB = 67108864)"
    ;;
  restore)
    git checkout -- "${FOLDERS[@]}"
    git status --short -- "${FOLDERS[@]}"
    ;;
  *) echo "usage: $0 hide|restore" >&2; exit 2 ;;
esac
