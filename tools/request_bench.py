#!/usr/bin/env python3
"""request_bench: the request path of a mount against its backing directory.

Runs one set of jobs on a reclaimfs mount, on the directory backing its store
(the filesystem underneath), and optionally on a second FUSE server started
from a command line, and prints one table with the ratios:

  randread-cached  4 KiB random reads, libaio QD16, direct, data read once before
  randrw           4 KiB random reads+writes, 4 psync jobs, direct (IOPS, p99)
  randrw-cold      the same on a fresh mount (nothing cached)
  create           4 KiB files created, written and closed per second
  seqread          1 MiB sequential reads, direct
  seqwrite         1 MiB sequential writes, direct
  stat             statx storm: 4 threads, 1000 files, each call a round trip (stat_storm)

It measures; it asserts nothing. Needs fio, fusermount3, and root or a user
allowed to mount FUSE filesystems.

  tools/request_bench.py [--build DIR] [--size 128M] [--seconds 8]
      [--other 'SERVER --opt {source} {mnt}'] [-o cache_budget=1G]

`--other` is a command that mounts another FUSE server at {mnt} serving
{source} (a directory on the same filesystem as the store) and returns once
it has mounted or goes on running in the foreground; both work.
`--mount MNT --backing DIR` use an existing mount instead of making a store
(the cold job then needs a fresh mount and is skipped).

`--transports` compares reclaimfs with itself on its two FUSE transports
instead: /dev/fuse (fuse_transport=dev) and FUSE over io_uring
(fuse_transport=uring), on the cached random reads, the stat storm and the
creates, with the ratio uring/dev. It turns the kernel's fuse enable_uring
on for the run (root only) and restores it.
"""
import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time

JOBS = ["randread-cached", "randrw", "randrw-cold", "create", "seqread", "seqwrite", "stat"]
TRANSPORT_JOBS = ["randread-cached", "stat", "create"]
ENABLE_URING = "/sys/module/fuse/parameters/enable_uring"


def parse_size(text):
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower()
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def wait_mounted(path, proc=None, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if mounted(path):
            return
        if proc is not None and proc.poll() not in (None, 0):
            raise RuntimeError(f"server exited with {proc.returncode} before mounting {path}")
        time.sleep(0.05)
    raise RuntimeError(f"{path} did not get mounted")


def unmount(path):
    if not mounted(path):
        return
    if subprocess.run(["fusermount3", "-u", path], stderr=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["umount", "-l", path], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while mounted(path) and time.monotonic() < deadline:
        time.sleep(0.05)


def drop_kernel_caches():
    try:
        subprocess.run(["sync"])
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass  # not root: the backing filesystem's cold run is then warmer


class Target:
    """A directory to run jobs in, which can be made cold again."""

    def __init__(self, name, directory):
        self.name = name
        self.dir = directory

    def recycle(self):  # nothing cached afterwards, files kept
        drop_kernel_caches()
        return True

    def close(self):
        pass


class ReclaimfsMount(Target):
    def __init__(self, build, work, options, name="reclaimfs"):
        super().__init__(name, os.path.join(work, name + "-mnt"))
        self.store = os.path.join(work, name + "-store")
        self.binary = os.path.join(build, "fs", "reclaimfs")
        self.options = options
        os.makedirs(self.dir, exist_ok=True)
        subprocess.run([os.path.join(build, "tools", "mkfs.reclaimfs"), self.store, "--size", "4G"],
                       check=True, stdout=subprocess.DEVNULL)
        self.mount()

    def mount(self):
        cmd = [self.binary, self.store, self.dir]
        if self.options:
            cmd += ["-o", self.options]
        subprocess.run(cmd, check=True)
        wait_mounted(self.dir)

    def recycle(self):
        unmount(self.dir)
        drop_kernel_caches()
        self.mount()
        return True

    def close(self):
        unmount(self.dir)


class GivenMount(Target):
    def recycle(self):
        return False


class CommandMount(Target):
    """A second FUSE server started from the user's command line."""

    def __init__(self, command, work):
        super().__init__("other", os.path.join(work, "other-mnt"))
        self.source = os.path.join(work, "other-source")
        os.makedirs(self.dir, exist_ok=True)
        os.makedirs(self.source, exist_ok=True)
        self.argv = [a.replace("{source}", self.source).replace("{mnt}", self.dir)
                     for a in shlex.split(command)]
        self.proc = None
        self.mount()

    def mount(self):
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, start_new_session=True)
        wait_mounted(self.dir, self.proc)

    def recycle(self):
        self.close()
        drop_kernel_caches()
        self.mount()
        return True

    def close(self):
        unmount(self.dir)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait()
            self.proc = None


class JobFailed(Exception):
    pass


def fio(directory, name, args):
    cmd = ["fio", f"--name={name}", f"--directory={directory}", "--output-format=json",
           "--direct=1", "--group_reporting"] + args
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        raise JobFailed(f"fio {name} in {directory}: " + (run.stderr.strip().splitlines() or ["?"])[0])
    out = run.stdout
    # fio may print notes before the JSON document.
    return json.loads(out[out.index("{"):])["jobs"][0]


def p99_ms(io):
    pct = io.get("clat_ns", {}).get("percentile", {})
    return pct.get("99.000000", 0) / 1e6


def run_jobs(target, cfg, results):
    d = target.dir
    size, seconds = cfg.size, str(cfg.seconds)
    print(f"[{target.name}] {d}", file=sys.stderr, flush=True)

    jobs = cfg.jobs
    if "randread-cached" in jobs:
        # Random reads of a file read once before (a cache keeps it).
        common = ["--filename=bench-rand.dat", f"--size={size}", "--bs=4k"]
        fio(d, "lay", common + ["--rw=write", "--bs=1m", "--ioengine=psync", "--end_fsync=1"])
        fio(d, "warm", common + ["--rw=read", "--bs=128k", "--ioengine=psync"])
        job = fio(d, "rr", common + ["--rw=randread", "--ioengine=libaio", "--iodepth=16",
                                     "--time_based", f"--runtime={seconds}", "--norandommap"])
        results["randread-cached"][target.name] = (job["read"]["iops"], p99_ms(job["read"]))

    if "stat" in jobs:
        # statx(AT_STATX_FORCE_SYNC) of 1000 files by four threads: each call
        # a round trip to the filesystem (tools/stat_storm.cc).
        sdir = os.path.join(d, "bench-stat")
        os.makedirs(sdir, exist_ok=True)
        run = subprocess.run([os.path.join(cfg.build, "tools", "stat_storm"), sdir, "--threads", "4",
                              "--files", "1000", "--seconds", seconds], capture_output=True, text=True)
        if run.returncode != 0:
            raise JobFailed(f"stat_storm in {sdir}: {run.stderr.strip() or run.stdout.strip()}")
        st = json.loads(run.stdout)
        results["stat"][target.name] = (st["calls_per_s"], st["p99_ms"])

    if "create" in jobs:
        # Small files: create, write 4 KiB, close.
        cdir = os.path.join(d, "bench-create")
        os.makedirs(cdir, exist_ok=True)
        block = b"x" * 4096
        start = time.monotonic()
        for i in range(cfg.files):
            fd = os.open(os.path.join(cdir, f"f{i}"), os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
            os.write(fd, block)
            os.close(fd)
        results["create"][target.name] = (cfg.files / (time.monotonic() - start), None)

    if "seqwrite" not in jobs:
        return
    # Sequential write, then read back the same file.
    job = fio(d, "seq", ["--filename=bench-seq.dat", "--rw=write", "--bs=1m", "--ioengine=psync",
                         f"--size={2 * size}", "--end_fsync=1"])
    results["seqwrite"][target.name] = (job["write"]["bw_bytes"] / 1e6, None)
    job = fio(d, "seq", ["--filename=bench-seq.dat", "--rw=read", "--bs=1m", "--ioengine=psync",
                         f"--size={2 * size}"])
    results["seqread"][target.name] = (job["read"]["bw_bytes"] / 1e6, None)

    # Mixed random IO from four synchronous jobs, one file each.
    mixed = [f"--size={size // 4}", "--bs=4k", "--rw=randrw", "--ioengine=psync", "--numjobs=4",
             "--time_based", f"--runtime={seconds}", "--norandommap"]
    fio(d, "mix", [f"--size={size // 4}", "--bs=1m", "--rw=write", "--ioengine=psync", "--numjobs=4",
                   "--end_fsync=1"])

    def mixed_result(job):
        return (job["read"]["iops"] + job["write"]["iops"],
                max(p99_ms(job["read"]), p99_ms(job["write"])))

    results["randrw"][target.name] = mixed_result(fio(d, "mix", mixed))

    if target.recycle():
        results["randrw-cold"][target.name] = mixed_result(fio(target.dir, "mix", mixed))


def fmt(value, job):
    if value is None:
        return "—"
    rate, p99 = value
    if job.startswith("seq"):
        text = f"{rate:.0f} MB/s"
    elif job == "create":
        text = f"{rate:.0f}/s"
    else:
        text = f"{rate / 1000:.1f}k IOPS"
    if p99 is not None:
        text += f", p99 {p99:.2f} ms"
    return text


def print_table(results, names, jobs, mine_name="reclaimfs", others=None):
    others = names[1:] if others is None else others
    header = ["job"] + names + [f"{mine_name}/{n}" for n in others]
    rows = []
    for job in jobs:
        row = [job] + [fmt(results[job].get(n), job) for n in names]
        mine = results[job].get(mine_name)
        for n in others:
            theirs = results[job].get(n)
            row.append(f"{mine[0] / theirs[0]:.2f}x" if mine and theirs and theirs[0] else "—")
        rows.append(row)
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(here, "..", "build"))
    ap.add_argument("--work", help="directory for the store and the files (default: a new one in /var/tmp)")
    ap.add_argument("--size", default="128M", help="random-IO file size; sequential files are twice this")
    ap.add_argument("--seconds", type=int, default=8, help="runtime of each random job")
    ap.add_argument("--files", type=int, default=3000, help="files created by the create job")
    ap.add_argument("-o", dest="options", default="cache_budget=1G", help="reclaimfs mount options")
    ap.add_argument("--other", help="command line of a second FUSE server, with {source} and {mnt}")
    ap.add_argument("--mount", help="use this reclaimfs mount instead of making a store")
    ap.add_argument("--backing", help="with --mount: a directory on the filesystem backing it")
    ap.add_argument("--only", help="comma-separated targets to run: reclaimfs,backing,other")
    ap.add_argument("--transports", action="store_true",
                    help="compare the /dev/fuse and io_uring transports of reclaimfs instead")
    cfg = ap.parse_args()
    cfg.size = parse_size(cfg.size)
    cfg.jobs = TRANSPORT_JOBS if cfg.transports else JOBS
    if cfg.transports:
        return compare_transports(cfg)
    only = set(cfg.only.split(",")) if cfg.only else {"reclaimfs", "backing", "other"}

    work = cfg.work or tempfile.mkdtemp(prefix="reclaimfs-request-bench-", dir="/var/tmp")
    os.makedirs(work, exist_ok=True)
    targets = []
    try:
        if "reclaimfs" in only:
            if cfg.mount:
                targets.append(GivenMount("reclaimfs", cfg.mount))
            else:
                targets.append(ReclaimfsMount(os.path.abspath(cfg.build), work, cfg.options))
        if "backing" in only:
            backing = cfg.backing or os.path.join(work, "backing")
            os.makedirs(backing, exist_ok=True)
            targets.append(Target("backing", backing))
        results = {job: {} for job in JOBS}
        def run(t):
            try:
                run_jobs(t, cfg, results)
            except JobFailed as e:  # the table shows what did run
                print(f"[{t.name}] stopped: {e}", file=sys.stderr)
            t.close()

        for t in list(targets):
            run(t)
        if cfg.other and "other" in only:
            targets.append(CommandMount(cfg.other, work))
            run(targets[-1])
        print(f"size {cfg.size >> 20} MiB, {cfg.seconds} s per random job, {cfg.files} files, "
              f"reclaimfs -o {cfg.options}")
        print_table(results, [t.name for t in targets], JOBS)
    finally:
        for t in targets:
            t.close()
        if not cfg.work:
            subprocess.run(["rm", "-rf", work])


def compare_transports(cfg):
    try:
        with open(ENABLE_URING) as f:
            saved = f.read().strip()
    except OSError:
        sys.exit(f"{ENABLE_URING} is missing: this kernel has no FUSE over io_uring (Linux 6.14+)")
    try:
        with open(ENABLE_URING, "w") as f:
            f.write("Y\n")
    except OSError as e:
        sys.exit(f"cannot turn on {ENABLE_URING} ({e}); run as root")
    work = cfg.work or tempfile.mkdtemp(prefix="reclaimfs-request-bench-", dir="/var/tmp")
    os.makedirs(work, exist_ok=True)
    results = {job: {} for job in JOBS}
    names = ["dev", "uring"]
    try:
        for name in names:
            opts = ",".join(o for o in [cfg.options, f"fuse_transport={name}"] if o)
            t = ReclaimfsMount(os.path.abspath(cfg.build), work, opts, name=name)
            try:
                run_jobs(t, cfg, results)
            except JobFailed as e:
                print(f"[{name}] stopped: {e}", file=sys.stderr)
            finally:
                t.close()
        print(f"size {cfg.size >> 20} MiB, {cfg.seconds} s per job, {cfg.files} files, "
              f"reclaimfs -o {cfg.options}, fuse_transport=dev vs uring")
        print_table(results, names, TRANSPORT_JOBS, mine_name="uring", others=["dev"])
    finally:
        with open(ENABLE_URING, "w") as f:
            f.write(saved + "\n")
        if not cfg.work:
            subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
