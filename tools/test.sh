#!/usr/bin/env bash
# Sets up dependencies, builds, and runs every test: all unit and integration
# tests in the normal build, the unit tests again under AddressSanitizer +
# UBSan, and the concurrent reclaim, page-cache and POSIX-layer tests under
# ThreadSanitizer (RocksDB, built without it, is suppressed: tests/tsan.supp).
# The last line is "N passed, N failed" counted over GoogleTest cases.
set -uo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

JOBS=${JOBS:-$(nproc)}
UNIT_TESTS=(reclaim_tests storage_tests fs_data_tests fs_core_tests fs_namespace_locking_tests fs_config_tests fs_live_config_tests fs_prometheus_text_tests layering_tests)
TSAN_TESTS=(reclaim_tests fs_data_tests fs_core_tests fs_namespace_locking_tests)

configure() {  # dir, extra meson args...
  local dir=$1; shift
  if [[ ! -f $dir/build.ninja ]]; then
    meson setup "$dir" "$@" >/dev/null || return 1
  fi
}

build_failed=0
configure build || build_failed=1
configure build-asan -Db_sanitize=address,undefined || build_failed=1
configure build-tsan -Db_sanitize=thread || build_failed=1

ninja -C build -j"$JOBS" || build_failed=1
ninja -C build-asan -j"$JOBS" $(printf 'tests/unit/%s ' reclaim/reclaim_tests storage/storage_tests fs/cache/fs_data_tests fs/posix/fs_core_tests fs/posix/fs_namespace_locking_tests fs/daemon/fs_config_tests fs/daemon/fs_live_config_tests fs/daemon/fs_prometheus_text_tests layering_tests) || build_failed=1
ninja -C build-tsan -j"$JOBS" $(printf 'tests/unit/%s ' reclaim/reclaim_tests fs/cache/fs_data_tests fs/posix/fs_core_tests fs/posix/fs_namespace_locking_tests) || build_failed=1

# Leftover mounts from an interrupted run would make integration tests fail.
grep -o ' /tmp/reclaimfs-[^ ]*' /proc/mounts 2>/dev/null | xargs -r -n1 umount -l 2>/dev/null

rm -f build*/meson-logs/testlog.*
meson test -C build --no-rebuild --print-errorlogs --num-processes 1
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  meson test -C build-asan --no-rebuild --print-errorlogs "${UNIT_TESTS[@]}"
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp \
  meson test -C build-tsan --no-rebuild --print-errorlogs "${TSAN_TESTS[@]}"

echo
if ((build_failed)); then
  echo "build failed"
  python3 tools/count_results.py build build-asan build-tsan | sed '$d'
  echo "0 passed, 1 failed"
  exit 1
fi
python3 tools/count_results.py build build-asan build-tsan
