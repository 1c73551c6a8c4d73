"""`make bench`: the course's speed targets, measured on this machine.

Writes ``build/bench.json`` (a list of ``{runtime, scenario, metric, seconds}``), prints the same as
a table, and checks the targets. ``seconds`` is null where the thing never happens (a naive
supervisor never brings echo back). Docker rows are added when a Docker engine answers, kubernetes
rows (and the kubectl baseline) when a cluster does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("APPCOUP_PROGRESS", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_local
from common import check, table

from appcoup_lib.runtimes import availability


def machine(name: str | None = None) -> dict:
    """Where the numbers were measured: enough for a reader to judge them."""
    import platform
    import re
    import subprocess

    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    try:
        docker = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                                text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        docker = ""
    raw = name or platform.node() or "machine"
    return {"name": re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-") or "machine",
            "cpus": os.cpu_count(), "cpu": cpu, "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "docker": docker or None}


def write_reference(rows: list[dict], name: str | None = None) -> Path:
    """A dated copy of the rows for the notebooks (read by appcoup_lib.reference); commit it."""
    import datetime

    m = machine(name)
    path = Path(__file__).resolve().parent.parent / "notebooks" / "reference" / f"bench-{m['name']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    path.write_text(json.dumps({"date": stamp, "machine": m, "rows": rows}, indent=1) + "\n")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5, help="runs per local measurement (the median is kept)")
    ap.add_argument("--out", default="build/bench.json")
    ap.add_argument("--skip-course", action="store_true")
    ap.add_argument("--machine", default=None,
                    help="this machine in notebooks/reference/bench-<machine>.json (default: host name)")
    ap.add_argument("--skip-loose", action="store_true", help="without the loose-coupling rows (bench_loose.py)")
    args = ap.parse_args()
    rows: list[dict] = []
    bench_local.run(rows, repeat=args.repeat)
    if not args.skip_course:
        bench_local.run_course(rows)
    if availability("docker").ok:
        try:
            import bench_docker
        except ImportError:
            print("(no docker benchmark in this version)")
        else:
            bench_docker.run(rows)
    else:
        print(f"docker rows skipped: {availability('docker').detail}")
    if availability("kubernetes").ok:
        import bench_kubernetes

        bench_kubernetes.run(rows)
    else:
        print(f"kubernetes rows skipped: {availability('kubernetes').detail}")
    if not args.skip_loose:
        import bench_loose

        bench_loose.run(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    print(table(rows))
    print(f"\nwritten to {args.out}")
    if any(r["runtime"] == "docker" for r in rows):
        print(f"reference figures for the notebooks: {write_reference(rows, args.machine)}")
    misses = check(rows)
    for m in misses:
        print(f"MISSED TARGET: {m}")
    print("all targets met" if not misses else f"{len(misses)} target(s) missed")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
