#!/usr/bin/env bash
# Sets up dependencies, builds, creates a default store if there is none and
# mounts it in the foreground. Ctrl-C (or `umount MOUNTPOINT` from another
# shell) unmounts cleanly.
#
#   STORE       store directory   (default: ./reclaimfs-data/store)
#   MOUNTPOINT  where to mount    (default: ./reclaimfs-data/mnt)
#   SIZE        size of a new store's data file (default: 4G)
#   OPTIONS     extra -o options, e.g. cache_budget=64M
set -euo pipefail
cd "$(dirname "$0")/.."

STORE=${STORE:-$PWD/reclaimfs-data/store}
MOUNTPOINT=${MOUNTPOINT:-$PWD/reclaimfs-data/mnt}
SIZE=${SIZE:-4G}
OPTIONS=${OPTIONS:-}

bash tools/setup.sh
[[ -f build-release/build.ninja ]] || meson setup build-release --buildtype=release -Dtests=false >/dev/null
ninja -C build-release
# Install the programs (into /usr/local) so `mount -t fuse.reclaimfs` and
# fstab entries find them: mount(8) runs helpers with a fixed PATH.
meson install -C build-release --quiet --no-rebuild

if [[ ! -d $STORE/meta ]]; then
  mkfs.reclaimfs "$STORE" --size "$SIZE"
fi
mkdir -p "$MOUNTPOINT"
echo "mounting $STORE at $MOUNTPOINT (Ctrl-C to unmount)"
exec reclaimfs "$STORE" "$MOUNTPOINT" -f ${OPTIONS:+-o "$OPTIONS"}
