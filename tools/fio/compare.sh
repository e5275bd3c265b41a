#!/usr/bin/env bash
# Runs the fio jobs of this directory on a fresh reclaimfs mount and on the
# directory that backs its store, and prints one table of both: sequential
# MiB/s and random 4 KiB IOPS. It measures; it asserts nothing.
#   tools/fio/compare.sh [BUILD_DIR] [mount options]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
options=${2:-}
work=$(mktemp -d /tmp/reclaimfs-fio-XXXXXX)
mnt=$work/mnt backing=$work/backing
mkdir -p "$mnt" "$backing"
cleanup() {
  fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$build/tools/mkfs.reclaimfs" "$work/store" --size 2G >/dev/null
"$build/fs/reclaimfs" "$work/store" "$mnt" ${options:+-o "$options"}

run() {  # dir job; from the work directory, where fio leaves its verify state
  (cd "$work" && fio --directory="$1" --output-format=json "$here/$2" 2>/dev/null)
}
summarise() {  # label json...
  python3 - "$@" <<'PY'
import json, sys
label = sys.argv[1]
for path in sys.argv[2:]:
    for job in json.load(open(path))["jobs"]:
        name = job["jobname"]
        io = job["write"] if "write" in name else job["read"]
        mibs = io["bw_bytes"] / 2**20
        print(f"{label:10} {name:12} {mibs:9.1f} MiB/s {io['iops']:10.0f} IOPS  errors {job['error']}")
PY
}
for target in mount backing; do
  dir=$mnt; [[ $target == backing ]] && dir=$backing
  run "$dir" seq.fio > "$work/$target-seq.json"
  run "$dir" rand.fio > "$work/$target-rand.json"
  summarise "$target" "$work/$target-seq.json" "$work/$target-rand.json"
done
