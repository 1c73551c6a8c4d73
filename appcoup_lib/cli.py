"""The ``appcoup`` command: the library's verbs from a shell."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from .errors import AppcoupError, InvalidInput, UnknownRuntime, UnknownScenario
from .scenarios import SCENARIOS

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _runtime_arg(value: str) -> str:
    from .runtimes import names

    if value != "auto" and value not in names():
        raise argparse.ArgumentTypeError(f"unknown runtime {value!r}; valid: auto, {', '.join(names())}")
    return value


def _scenario_arg(value: str) -> str:
    if value not in SCENARIOS:
        raise argparse.ArgumentTypeError(f"unknown scenario {value!r}; valid: {', '.join(SCENARIOS)}")
    return value


def _name_arg(value: str) -> str:
    from .runtimes.base import check_name

    try:
        return check_name(value)
    except InvalidInput as e:
        raise argparse.ArgumentTypeError(f"{e.what} {e.why}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="appcoup", description="Couple two programs in containers, for real.")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def cmd(name: str, help: str, scenario: bool = False, runtime: bool = True) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help, description=help)
        if scenario:
            s.add_argument("scenario", type=_scenario_arg, metavar="SCENARIO", help=", ".join(SCENARIOS))
        if runtime:
            s.add_argument("--runtime", "-r", type=_runtime_arg, default="auto",
                           help="local, docker, kubernetes or auto (default)")
        if scenario:
            s.add_argument("--name", type=_name_arg, default=None,
                           help="the app's name (default appcoup-<learner>-<scenario>)")
        return s

    cmd("doctor", "which runtimes are usable here, and how to make the others usable", runtime=False)
    up = cmd("up", "start a scenario in the background and print its URL", scenario=True)
    up.add_argument("--interval", type=float, default=2.0, help="seconds between two numbers (default 2)")
    up.add_argument("--port", type=int, default=8000, help="port serving /data (default 8000; 0 = any free)")
    up.add_argument("--supervisor", choices=("naive", "init", "restarting"), default="naive",
                    help="single-image: the naive app.sh or the signal-forwarding app-init.sh")
    up.add_argument("--address", default="127.0.0.1",
                    help="where the port listens (default 127.0.0.1: this machine only; 0.0.0.0: every network)")
    cmd("status", "what appcoup runs now, on every runtime", runtime=False)
    cmd("data", "print the numbers a running scenario serves", scenario=True)
    k = cmd("kill", "crash one program of a running scenario (SIGKILL)", scenario=True)
    k.add_argument("container", metavar="CONTAINER", help="generator, echo, adapter or app")
    cmd("events", "what the runtime did for a running scenario", scenario=True)
    cmd("down", "stop a scenario and remove what it created", scenario=True)
    cl = cmd("clean", "remove what you started with appcoup, on every runtime (or one: --runtime)")
    cl.add_argument("--all", action="store_true", dest="all_learners",
                    help="everything of every learner (the teacher's clean-up of a shared machine)")
    c = cmd("course", "run every notebook headless with papermill into build/course")
    c.add_argument("--interval", type=float, default=0.2)
    c.add_argument("--duration", type=float, default=3.0)
    c.add_argument("--out", default="build/course")
    a = cmd("answers", "the teacher's answer key, generated from the notebooks' solution cells (Markdown)",
            runtime=False)
    a.add_argument("--out", default=None, metavar="PATH", help="write the key to PATH (default: print it)")
    cr = sub.add_parser("classroom", help="the teacher's board: every learner's progress, apps and trouble",
                        description="the teacher's board: every learner's exercise, checks, last activity, apps "
                                    "and apps in trouble (Docker engine, learners' homes, cluster)")
    cr.add_argument("--homes", action="append", default=None, metavar="DIR",
                    help="where learners' homes are: DIR/*/.cache/appcoup (default /home; repeatable); "
                         "with `clean --all`: only the users with a home there")
    cr.add_argument("--state", action="append", default=[], metavar="DIR", help="one more learner's state directory")
    cr.add_argument("--watch", nargs="?", type=float, const=5.0, default=None, metavar="SECONDS",
                    help="redraw every SECONDS (default 5) until Ctrl-C")
    cr.add_argument("--no-docker", action="store_true", help="do not read the Docker engine")
    cr.add_argument("--cluster", choices=("auto", "yes", "no"), default="auto",
                    help="read the cluster (auto: when a kubeconfig is there)")
    cr.add_argument("--context", default=None, help="the teacher's kubeconfig context")
    cr.add_argument("--kubeconfig", default=None, help="the teacher's kubeconfig (default $KUBECONFIG)")
    cr_sub = cr.add_subparsers(dest="classroom_cmd", required=False, metavar="SUBCOMMAND")
    crc = cr_sub.add_parser("clean", help="remove one learner's apps (or everyone's: --all); progress stays")
    crc.add_argument("learner", nargs="?", default=None, metavar="LEARNER")
    crc.add_argument("--all", action="store_true", dest="all_learners", help="every learner's apps")
    pf = sub.add_parser("preflight", help="the teacher's check of the class's cluster or machine, the day before")
    pf.add_argument("--runtime", "-r", choices=("auto", "local", "docker", "kubernetes"), default="auto",
                    help="the class's runtime (auto: kubernetes when a kubeconfig is there, else docker)")
    pf.add_argument("--context", default=None, help="the teacher's kubeconfig context")
    pf.add_argument("--kubeconfig", default=None, help="the teacher's kubeconfig (default $KUBECONFIG)")
    pf.add_argument("--learner-kubeconfig", default=None, metavar="PATH",
                    help="a sample learner's kubeconfig (default: a throwaway ServiceAccount with the hub's Role)")
    pf.add_argument("--namespace", default=None,
                    help="a learner namespace whose quota to check (and the sample learner's, with --learner-kubeconfig)")
    pf.add_argument("--peer", default=None, help="the second cluster for 06 (default $APPCOUP_PEER_KUBECONFIG)")
    pf.add_argument("--storage-class", default=None, help="the StorageClass the class uses (default: the default one)")
    pf.add_argument("--no-dry-run", action="store_true", help="skip the dry run of notebook 03")
    im = sub.add_parser("images", help="build the course's images (Docker)")
    im_sub = im.add_subparsers(dest="images_cmd", required=True, metavar="SUBCOMMAND")
    b = im_sub.add_parser("build", help="build generator, echo, adapter, combined (no registry needed)")
    b.add_argument("--offline", action="store_true", help="build the base images from this machine too")
    b.add_argument("--quiet", action="store_true", help="no progress display")
    ps = im_sub.add_parser("push", help="the teacher's: build them and push them to APPCOUP_REGISTRY (learners pull)")
    ps.add_argument("--registry", default=None, help="HOST[:PORT]/PATH (default: $APPCOUP_REGISTRY)")
    pl = im_sub.add_parser("preload", help="the teacher's: hold every course image on every node of the cluster "
                           "(a DaemonSet), so learners without Docker need none")
    pl.add_argument("--namespace", default="appcoup-preload", help="where the DaemonSet runs (default appcoup-preload)")
    pl.add_argument("--context", default=None, help="the kubeconfig context (default: the current one)")
    pl.add_argument("--remove", action="store_true", help="delete the DaemonSet (and the namespace it made)")
    return p


def _attach(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .runtimes import runtime

    name = getattr(args, "name", None)
    if args.runtime == "auto":
        # The app may run anywhere: find it where it runs.
        from .doctor import running

        for row in running():
            if row["scenario"] == args.scenario and (name is None or row["name"] == name):
                return runtime(row["runtime"]).attach(args.scenario, row["name"])
    return runtime("local" if args.runtime == "auto" else args.runtime).attach(args.scenario, name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (UnknownScenario, UnknownRuntime, InvalidInput) as e:
        print(f"appcoup: {e}", file=sys.stderr)
        return EXIT_USAGE
    except AppcoupError as e:
        print(f"appcoup: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("appcoup: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - a learner gets one line, not a traceback
        if os.environ.get("APPCOUP_DEBUG") == "1":
            raise
        print(f"appcoup: unexpected error: {type(e).__name__}: {e}\n"
              "What to do: run it again with APPCOUP_DEBUG=1 to see where, and report it.", file=sys.stderr)
        return 1


def _unreachable() -> list[str]:
    """Engines that are set up here but do not answer now (a stopped dockerd): what they may hide."""
    from .runtimes import availability

    av = availability("docker")
    if av.ok or "not installed" in av.detail:
        return []
    if not os.environ.get("DOCKER_HOST") and "does not exist" in av.detail:
        return []  # no Docker on this machine at all: nothing to say
    return [f"docker: cannot tell what runs there: {av.detail}\n  What to do: {av.fix}"]


def _up(args: argparse.Namespace) -> int:
    """`appcoup up`: start, wait until it serves, print the URL; Ctrl-C or a failure leaves nothing."""
    from .runtimes import runtime

    rt = runtime(args.runtime)
    app = None
    try:
        app = rt.up(args.scenario, interval=args.interval, port=args.port, supervisor=args.supervisor,
                    name=args.name, detach=True, address=args.address)
        app.wait_ready(timeout=120)
    except BaseException:
        # A second Ctrl-C must not interrupt the clean-up of the first.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if app is not None:
                app.down()
        finally:
            signal.signal(signal.SIGINT, previous)
        raise
    print(f"{args.scenario} runs on {rt.name}: {app.url}/data")
    how = "" if args.name is None else f" --name {args.name}"
    print(f"stop it with: appcoup down {args.scenario} --runtime {rt.name}{how}")
    return 0


def _answers(args: argparse.Namespace) -> int:
    """`appcoup answers`: print the answer key, or write it to --out (no runtime is touched)."""
    from pathlib import Path

    from .answers import answer_key, read_notebooks

    key = answer_key()
    if args.out is None:
        print(key, end="")
        return 0
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(key)
    except OSError as e:
        raise AppcoupError(f"Cannot write the answer key to {out}.", why=e.strerror or str(e),
                           fix="pass --out a path in a directory you can write to") from None
    count = sum(len(nb.exercises) for nb in read_notebooks())
    print(f"answer key: {count} exercise{'s' if count != 1 else ''} written to {out}")
    return 0


def _classroom(args: argparse.Namespace) -> int:
    """`appcoup classroom [--watch]` (the board) and `appcoup classroom clean LEARNER|--all` (classroom.py)."""
    import time

    from . import classroom

    cluster = {"auto": None, "yes": True, "no": False}[args.cluster]
    where = {"cluster": cluster, "context": args.context, "kubeconfig": args.kubeconfig, "docker": not args.no_docker}
    if args.classroom_cmd == "clean":
        if (args.learner is None) == (not args.all_learners):
            raise InvalidInput("Name one learner, or --all.", fix="appcoup classroom clean LEARNER, or appcoup classroom clean --all")
        removed = classroom.clean(args.learner, all_learners=args.all_learners, homes=args.homes, **where)
        print("\n".join(removed) if removed else "nothing to clean")
        return 0
    homes = args.homes if args.homes is not None else ["/home"]
    try:
        while True:
            text = str(classroom.board(homes=homes, states=args.state, **where))
            if args.watch is None:
                print(text)
                return 0
            print("\x1b[H\x1b[2J" + text + "\n(Ctrl-C ends it)", flush=True)
            time.sleep(max(args.watch, 1.0))
    except KeyboardInterrupt:  # --watch ends the way it says
        if args.watch is None:
            raise
        return 0


def _preflight(args: argparse.Namespace) -> int:
    """`appcoup preflight`: the checklist, a line as each check ends; 1 when any failed (preflight.py)."""
    from .preflight import preflight

    done = preflight(runtime=args.runtime, context=args.context, kubeconfig=args.kubeconfig,
                     learner_kubeconfig=args.learner_kubeconfig, namespace=args.namespace, peer=args.peer,
                     storage_class=args.storage_class, dry_run=not args.no_dry_run,
                     say=lambda c: print(c, flush=True))
    bad = sum(not c.ok for c in done)
    print(f"{len(done)} checks: " + ("all passed" if not bad else f"{bad} failed"))
    return 1 if bad else 0


def _images_teacher(args: argparse.Namespace) -> int:
    """`appcoup images push` and `appcoup images preload [--remove]` (runtimes/kubernetes/preload.py)."""
    from .runtimes.kubernetes import preload
    from .runtimes.kubernetes.client import connect

    if args.images_cmd == "push":
        for name, ref in preload.push(args.registry, progress=True).items():
            print(f"{name:<16} pushed as {ref}")
        return 0
    conn = connect(args.context)
    if args.remove:
        print("\n".join(preload.remove(conn, args.namespace)) or "no preload to remove")
        return 0
    done = preload.preload(conn, args.namespace, progress=True)
    print(f"preloaded on {done['nodes']} node(s) (daemonset {preload.NAME} in {done['namespace']}):")
    for name, ref in done["images"].items():
        print(f"  {name:<16} {ref}")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.cmd == "answers":  # above the runtimes: needs none of them
        return _answers(args)
    if args.cmd in ("classroom", "preflight"):
        return _classroom(args) if args.cmd == "classroom" else _preflight(args)
    from .doctor import clean, doctor, running
    from .runtimes import runtime

    if args.cmd == "doctor":
        print(doctor())
    elif args.cmd == "up":
        return _up(args)
    elif args.cmd == "status":
        rows = running()
        for gone in _unreachable():
            print(gone)
        if not rows:
            print("appcoup runs nothing right now.")
        for row in rows:
            print(f"{row['runtime']:<11} {row['scenario']:<13} {row['url']}/data")
            try:
                for name, st in runtime(row["runtime"]).attach(row["scenario"], row["name"]).status().items():
                    state = "running" if st["running"] else "not running"
                    print(f"{'':13}{name:<11} {state:<12} restarts={st['restarts']}")
            except AppcoupError as e:
                print(f"{'':13}{e.what}")
    elif args.cmd == "data":
        print("\n".join(str(n) for n in _attach(args).data()))
    elif args.cmd == "kill":
        app = _attach(args)
        app.kill(args.container)
        print(f"killed {args.container} in {args.scenario} on {app.runtime.name}")
    elif args.cmd == "events":
        for e in _attach(args).events():
            print(e)
    elif args.cmd == "down":
        app = _attach(args)
        app.down()
        print(f"{args.scenario} on {app.runtime.name}: stopped and removed")
    elif args.cmd == "clean":
        removed = clean(all_learners=args.all_learners, runtime=args.runtime)
        print("\n".join(removed) if removed else "nothing to clean: appcoup runs nothing")
    elif args.cmd == "course":
        from .course import run_course
        from .runtimes.base import check_interval

        check_interval(args.interval)
        if not 0 < args.duration <= 3600:  # also refuses nan
            raise InvalidInput(f"{args.duration!r} is not a usable duration.",
                               why="each notebook watches the app this many seconds: above 0, at most 3600",
                               fix="pass --duration 3")

        results = run_course(runtime=args.runtime, interval=args.interval, duration=args.duration,
                             out=args.out)
        failed = [r for r in results if r.error]
        return 1 if failed else 0
    elif args.cmd == "images" and args.images_cmd in ("push", "preload"):
        return _images_teacher(args)
    elif args.cmd == "images":
        from . import images

        built = images.build(offline=args.offline or None, progress=not args.quiet)
        for b in built.values():
            print(f"{b.name:<14} {b.tag:<32} {'built' if b.built else 'up to date':<11} {b.seconds:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
