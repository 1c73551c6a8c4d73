"""Docker rows of the benchmark: each scenario through the library, the same containers started
with the plain ``docker`` commands a learner would type (the ``docker-cli`` baseline), interleaved so
both see the same machine load, and the Dockerfile-coupling lessons (rebuild, stop).

Images are built before anything is timed: ``first_number`` is up -> first number with images present.
``recovery`` is kill echo -> /data answers again; it is null where nothing brings echo back (the naive
supervisor of `single-image`, the restart-less `separate`); ``recovery_init`` gives `single-image`
with the signal-forwarding supervisor, whose container exits and is restarted by Docker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time

from common import INTERVAL, comparison_rows, free_port, interleaved, median, through_library, wait

import appcoup_lib as ac
from appcoup_lib import images, lessons

SCENARIOS = ("separate", "single-image", "pod", "service", "volume")
CLI = "appcoup-benchcli"  # names and label of the baseline's containers (cleaned up by label too)


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout.strip()


def _cli_commands(scenario: str, tags: dict[str, str], bind_dir: str, port: int) -> list[list[str]]:
    """The `docker` commands a learner types for ``scenario``, /data published on ``port``."""
    lab = ["--label", "app.kubernetes.io/part-of=appcoup", "--label", f"appcoup.app={CLI}"]
    env = ["-e", f"INTERVAL={INTERVAL}", "-e", "ECHO_QUIET=1"]
    run = ["run", "-d", *lab, *env]
    g, e = tags["generator"], tags["echo"]
    if scenario == "separate":
        # The images run as user 10001; the host directory is ours: write into it as us (`-u`), as
        # the library does.
        me = ["-u", f"{os.getuid()}:{os.getgid()}"]
        return [[*run, *me, "--name", f"{CLI}-generator", "-v", f"{bind_dir}:/tmp/out", g],
                [*run, *me, "--name", f"{CLI}-echo", "-v", f"{bind_dir}:/tmp/in", "-p", f"127.0.0.1:{port}:8000", e]]
    if scenario == "single-image":
        return [[*run, "--name", f"{CLI}-app", "-p", f"127.0.0.1:{port}:8000", "--restart", "always", tags["combined"]]]
    if scenario == "pod":
        return [["volume", "create", *lab, f"{CLI}-data"],
                [*run, "--name", f"{CLI}-pause", "-p", f"127.0.0.1:{port}:8000", tags["pause"]],
                [*run, "--name", f"{CLI}-generator", "--network", f"container:{CLI}-pause", "--restart", "always",
                 "-v", f"{CLI}-data:/tmp/out", g],
                [*run, "--name", f"{CLI}-echo", "--network", f"container:{CLI}-pause", "--restart", "always",
                 "-v", f"{CLI}-data:/tmp/in", e]]
    if scenario == "service":
        return [["network", "create", *lab, f"{CLI}-net"], ["volume", "create", *lab, f"{CLI}-data"],
                [*run, "--name", f"{CLI}-pause", "--network", f"{CLI}-net", "--network-alias", "adapter",
                 tags["pause"]],
                [*run, "--name", f"{CLI}-generator", "--network", f"container:{CLI}-pause",
                 "-v", f"{CLI}-data:/tmp/out", g],
                [*run, "--name", f"{CLI}-adapter", "--network", f"container:{CLI}-pause",
                 "-v", f"{CLI}-data:/tmp/out", tags["adapter"]],
                [*run, "--name", f"{CLI}-echo", "--network", f"{CLI}-net", "-p", f"127.0.0.1:{port}:8000",
                 "-e", "SOURCE_URL=http://adapter:8080/data", e]]
    if scenario == "volume":
        return [["volume", "create", *lab, f"{CLI}-data"],
                [*run, "--name", f"{CLI}-generator", "--restart", "always", "-v", f"{CLI}-data:/tmp/out", g],
                [*run, "--name", f"{CLI}-echo", "--restart", "always", "-v", f"{CLI}-data:/tmp/in", "-p", f"127.0.0.1:{port}:8000", e]]
    raise ValueError(scenario)


def _cli_down() -> None:
    ids = _docker("ps", "-aq", "--filter", f"label=appcoup.app={CLI}").split()
    if ids:
        _docker("rm", "-f", *ids)
    for kind in ("volume", "network"):
        names = _docker(kind, "ls", "-q", "--filter", f"label=appcoup.app={CLI}").split()
        if names:
            _docker(kind, "rm", *names)


def _crash(container: str, pause_tag: str) -> None:
    """SIGKILL a container's main process, the way the library does: only a pid proven to be that
    container's is signalled from here, else a helper in the engine's PID namespace checks and kills."""
    from appcoup_lib.runtimes.docker import KILL_IF_OURS, engine_on_this_host, pid_is_container

    pid, cid, started = _docker("inspect", "-f", "{{.State.Pid}} {{.Id}} {{.State.StartedAt}}", container).split()
    if engine_on_this_host() and pid_is_container(int(pid), cid, started):
        os.kill(int(pid), signal.SIGKILL)
        return
    out = _docker("run", "--rm", "--pid", "host", "-e", f"PID={pid}", "-e", f"ID={cid}", pause_tag,
                  "sh", "-c", KILL_IF_OURS)
    if "killed" not in out:
        raise RuntimeError(f"{container}: pid {pid} is not its process any more; nothing was signalled")


def by_hand(scenario: str, tags: dict[str, str]) -> dict[str, float | None]:
    """first_number / recovery / down with plain `docker` commands."""
    entry = "app" if scenario == "single-image" else "echo"
    with tempfile.TemporaryDirectory(prefix="appcoup-benchcli-") as d:
        try:
            port = free_port()
            url = f"http://127.0.0.1:{port}/data"
            t0 = time.monotonic()
            for cmd in _cli_commands(scenario, tags, d, port):
                _docker(*cmd)
            holder = f"{CLI}-pause" if scenario == "pod" else f"{CLI}-{entry}"
            wait(url)
            first = time.monotonic() - t0
            time.sleep(1.2)
            # Recovery by hand: echo crashes; the learner notices nothing and types `docker start` again.
            target = f"{CLI}-echo" if entry == "echo" else holder
            t0 = time.monotonic()
            if entry == "echo":
                _crash(target, tags["pause"])
                if scenario not in ("pod", "volume"):  # no restart policy: type `docker start` again
                    _docker("wait", f"{CLI}-echo")
                    _docker("start", f"{CLI}-echo")
                time.sleep(0.01)
                wait(url, 10)
                rec: float | None = time.monotonic() - t0
            else:
                rec = None  # naive single image: there is no echo container to start again
        finally:
            t0 = time.monotonic()
            _cli_down()
            down = time.monotonic() - t0
    return {"first_number": first, "recovery": rec, "down": down}


def run(rows: list[dict], repeat: int = 3) -> None:
    rt = ac.runtime("docker")
    tags = {n: b.tag for n, b in images.build([*images.NAMES, "pause"], progress=False).items()}
    _cli_down()
    for scenario in SCENARIOS:
        # One unmeasured run each first (the engine's first run of a setup is slower).
        through_library(rt, scenario)
        by_hand(scenario, tags)
        lib, hand = interleaved(lambda s=scenario: through_library(rt, s), lambda s=scenario: by_hand(s, tags), repeat)
        rows += comparison_rows("docker", "docker-cli", scenario, lib, hand)
    init = [through_library(rt, "single-image", "init")["recovery"] for _ in range(repeat)]
    rows.append({"runtime": "docker", "scenario": "single-image", "metric": "recovery_init", "seconds": median(init)})
    for scenario in ("single-image", "pod"):
        r = lessons.rebuild_after_change(rt, scenario, "echo", interval=INTERVAL, progress=False)
        rows.append({"runtime": "docker", "scenario": scenario, "metric": "rebuild_one_change",
                     "seconds": r["rebuild_seconds"]})
        rows.append({"runtime": "docker", "scenario": scenario, "metric": "rebuild_no_data",
                     "seconds": r["no_data_seconds"]})
    rows.append({"runtime": "docker", "scenario": "single-image", "metric": "stop_naive",
                 "seconds": lessons.stop_time("naive", rt)})
    rows.append({"runtime": "docker", "scenario": "single-image", "metric": "stop_forwarding",
                 "seconds": lessons.stop_time("init", rt)})


if __name__ == "__main__":
    import json

    os.environ.setdefault("APPCOUP_PROGRESS", "0")
    out: list[dict] = []
    run(out)
    print(json.dumps(out, indent=1))
