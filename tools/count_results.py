#!/usr/bin/env python3
"""Counts GoogleTest cases across meson test logs and prints 'N passed, N failed'.

Usage: count_results.py BUILD_DIR [BUILD_DIR...]

Cases come from meson's JUnit log (one <testcase> per GoogleTest case). A test
program that crashed or timed out before writing its results counts as one
failure, so a crash can never be hidden.
"""
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def count(build_dir: Path):
    passed = failed = skipped = 0
    failing_suites = set()
    junit = build_dir / "meson-logs" / "testlog.junit.xml"
    if junit.exists():
        for suite in ET.parse(junit).getroot().iter("testsuite"):
            for case in suite.iter("testcase"):
                if case.find("failure") is not None or case.find("error") is not None:
                    failed += 1
                    failing_suites.add(suite.get("name", ""))
                elif case.find("skipped") is not None:
                    skipped += 1
                else:
                    passed += 1
    log = build_dir / "meson-logs" / "testlog.json"
    if log.exists():
        for line in log.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("result") in ("OK", "SKIP", "EXPECTEDFAIL"):
                continue
            name = rec.get("name", "")
            if not any(name in s or s in name for s in failing_suites):
                failed += 1
                print(f"{build_dir.name}: {name}: {rec.get('result')} without a failed case recorded",
                      file=sys.stderr)
    return passed, failed, skipped


def main():
    total_p = total_f = total_s = 0
    for d in sys.argv[1:]:
        p, f, s = count(Path(d))
        print(f"{d}: {p} passed, {f} failed, {s} skipped")
        total_p, total_f, total_s = total_p + p, total_f + f, total_s + s
    if total_s:
        print(f"({total_s} skipped, not counted as passed)")
    print(f"{total_p} passed, {total_f} failed")
    return 0 if total_f == 0 and total_p > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
