"""`make bench`: every figure, one script at a time (each starts and stops its
own servers), then one line per figure with its target and PASS/MISS.
Loopback only; bounded in time (about 24 minutes on the 2-core machine,
cluster.py about 7 of them, scale10m.py about 5 and 8 GiB of free memory)."""

import json
import subprocess
import sys
import time
from pathlib import Path

from common import RESULTS, machine

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "poll.py",
    "instructions.py",
    "scale.py",
    "scale10m.py",
    "contention.py",
    "crowd.py",
    "hosts.py",
    "cluster.py",
    "logins.py",
    "sessions.py",
    "seatmap.py",
    "metrics.py",
]


def main() -> int:
    RESULTS.unlink(missing_ok=True)
    started, failed = time.monotonic(), []
    print(f"Machine: {machine()}", flush=True)
    for script in SCRIPTS:
        print(f"--- {script}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script)], cwd=HERE, timeout=900).returncode:
            failed.append(script)
    print(f"\n=== {time.monotonic() - started:.0f} s; summary ===")
    for entry in json.loads(RESULTS.read_text()) if RESULTS.exists() else []:
        print(
            f"[{entry['figure']}] {entry['name']}: {entry['value']} "
            f"(target {entry['target']}) {entry['verdict']}"
        )
    if failed:
        print(f"scripts that failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
