"""Notebook 07's conclusions: a decision guide that quotes this run's scorecard, and the pictures of
the couplings side by side (and one, before anything runs); and, for every notebook, a look at an app
as at work.

A learner reads the conclusions, not the code that words them::

    card = loose.scorecard(rt, ["pod", "service"])
    guide.decision_guide(card)          # one line per question, each quoting the numbers
    guide.pictures(["pod", "service"], rt.name)   # what each coupling shares, from the spec alone
    print(guide.at_work(app))           # the real `kubectl get` / `docker ps`, and the logs
    guide.wiring(app)                   # federation: what joins its two clusters, as applied

The guide reads a table and the pictures read the spec (:func:`appcoup_lib.diagram.infer`): neither
measures or starts anything. :func:`at_work` runs the read-only "get" lines of ``app.commands()``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .diagram import infer, render
from .runtimes.spec import Part, Spec

# The questions of the guide, in the order a reader meets them.
TOPICS = ("Ownership", "Release cadence", "Colocation", "Data volume", "Scaling", "Recovery", "Fastest")


@dataclass(frozen=True)
class Guide:
    """The decision guide: ``(topic, sentence)`` per question the scorecard can answer."""

    lines: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        if not self.lines:
            return "(the scorecard answers none of the guide's questions: measure more scenarios)"
        return "\n\n".join(f"- {topic}: {text}" for topic, text in self.lines)

    def __repr__(self) -> str:
        return str(self)

    def __iter__(self) -> Any:
        return iter(self.lines)

    def __len__(self) -> int:
        return len(self.lines)

    def topics(self) -> list[str]:
        return [t for t, _ in self.lines]

    def _repr_html_(self) -> str:
        if not self.lines:
            return f"<p>{html.escape(str(self))}</p>"
        items = "".join(f"<li><b>{html.escape(t)}</b>: {html.escape(x)}</li>" for t, x in self.lines)
        return f"<ul class='appcoup-guide'>{items}</ul>"


def _show(value: Any, unit: str = "") -> str:
    return "n/a" if value is None else f"{value}{unit}"


def _names(scenarios: Iterable[str]) -> str:
    return ", ".join(scenarios) or "none"


def decision_guide(card: Iterable[dict[str, Any]]) -> Guide:
    """The guide's sentences for a scorecard (:func:`appcoup_lib.loose.scorecard`), each quoting it.

    A question the table cannot answer (a column empty for the scenarios it needs) is left out,
    never guessed.
    """
    rows = {r["scenario"]: r for r in card}

    def num(scenario: str, column: str) -> float | None:
        value = rows.get(scenario, {}).get(column)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    lines: list[tuple[str, str]] = []
    restarting = [s for s in rows if num(s, "generator restarts on upgrade")]
    calm = [s for s in rows if num(s, "generator restarts on upgrade") == 0]
    if restarting:
        lines.append(("Ownership", (f"upgrading echo restarted the generator in {_names(restarting)}; it did not in "
                                   f"{_names(calm)}. Two teams with two release cadences want the latter.")))
    elif calm:
        lines.append(("Ownership", (f"upgrading echo left the generator running in {_names(calm)}: on this "
                                   "runtime, upgrading one program did not restart the other.")))
    zero = [s for s in rows if num(s, "upgrade failures (2 replicas)") == 0]
    if zero:
        one = ", ".join(f"{s} {_show(num(s, 'upgrade failures (1 replica)'))}" for s in zero)
        lines.append(("Release cadence", ("with 2 replicas and a rolling update, upgrading echo failed 0 requests "
                                         f"in {_names(zero)} (with 1 replica: {one}).")))
    if "pod" in rows and "service" in rows:
        lines.append(("Colocation", (f"first number {_show(num('pod', 'first number (s)'), ' s')} in a pod against "
                                    f"{_show(num('service', 'first number (s)'), ' s')} through a Service; recovery "
                                    f"after echo's crash {_show(rows['pod'].get('recovery (s)'), ' s')} against "
                                    f"{_show(rows['service'].get('recovery (s)'), ' s')}.")))
    vol, svc = num("volume", "throughput (MB/s)"), num("service", "throughput (MB/s)")
    if vol and svc:
        lines.append(("Data volume", (f"bulk data moved at {vol} MB/s through the volume and {svc} MB/s through "
                                     f"the adapter ({vol / svc:.1f}x).")))
    same = [s for s in rows if rows[s].get("2 replicas serve") == "the same numbers"]
    own = [s for s in rows if rows[s].get("2 replicas serve") == "different numbers"]
    if same or own:
        lines.append(("Scaling", (f"2 replicas served the same numbers in {_names(same)}, and each its own in "
                                 f"{_names(own)} (a copy of those is a copy of the generator too).")))
    never = {s: str(rows[s].get("recovery (s)")) for s in rows
             if str(rows[s].get("recovery (s)")).startswith("not within")}
    if never:
        within = sorted({m.group(1) for v in never.values() if (m := re.search(r"not within (.+)", v))})
        lines.append(("Recovery", (f"after echo crashed, /data did not answer again within {' / '.join(within)} in "
                                  f"{_names(never)} (either nothing restarts echo there, see notebooks 01 and 02, "
                                  "or the runtime waited longer before restarting it, see CrashLoopBackOff in "
                                  "notebook 03).")))
    timed = [(v, s) for s in rows if (v := num(s, "first number (s)")) is not None]
    if timed:
        value, fastest = min(timed)
        lines.append(("Fastest", f"to a first number here: {fastest} ({value} s)."))
    return Guide(tuple(lines))


# -- the pictures, from the spec alone ------------------------------------------------------------------
@dataclass(frozen=True)
class Pictures:
    """What each coupling shares on one runtime, drawn from the spec: a row of SVGs (one: a picture)."""

    runtime: str
    scenarios: tuple[str, ...]

    def svgs(self) -> list[str]:
        return [render(infer(s, self.runtime)) for s in self.scenarios]

    def _repr_html_(self) -> str:
        cells = "".join(f"<div style='flex:0 0 auto'>{svg}</div>" for svg in self.svgs())
        return (f"<div class='appcoup-pictures' style='display:flex;gap:16px;overflow-x:auto;"
                f"align-items:flex-start'>{cells}</div>")

    def __str__(self) -> str:
        lines = []
        for s in self.scenarios:
            topo = infer(s, self.runtime)
            lines += [topo.title, str(topo.table())]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)


def pictures(scenarios: Iterable[str], runtime: str) -> Pictures:
    """The spec's picture of each scenario on ``runtime``, side by side (nothing is started)."""
    return Pictures(runtime, tuple(scenarios))


def picture(scenario: str, runtime: str) -> Pictures:
    """The spec's picture of one scenario on ``runtime``, before anything runs (``app.diagram()`` draws it live)."""
    return pictures([scenario], runtime)


# -- at work: the real CLI, and the wiring between clusters ---------------------------------------------
# The objects that join two clusters by hand (federation): a Service without a selector (its endpoints
# are not the cluster's to find), the EndpointSlice that names them, and the NodePort that opens the
# other side to them.
def _joins(d: dict[str, Any]) -> bool:
    spec = d.get("spec") or {}
    return d.get("kind") == "EndpointSlice" or (
        d.get("kind") == "Service" and (not spec.get("selector") or spec.get("type") in ("NodePort", "LoadBalancer")))


def _docs(text: str) -> list[dict[str, Any]]:
    import yaml

    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def _clusters(app: Any) -> list[Part]:
    """The YAML stream of each cluster ``app`` runs on (kubernetes: one part per cluster; else none)."""
    if app.runtime.name != "kubernetes":
        return []
    return [p for p in app.spec().parts if p.title.startswith("cluster:") and p.language == "yaml"]


def _look_closer(get: str, cluster: Part) -> list[str]:
    """The lines that show what joins this cluster to another, from the objects it was given: the
    EndpointSlices of a Service without a selector, and the nodes behind a NodePort (their INTERNAL-IP
    is the address the other cluster is pointed at)."""
    kubectl = get.split(" get ", 1)[0]  # kubectl [--kubeconfig ...] [--context ...] -n <namespace>
    lines = []
    for d in _docs(cluster.text):
        if d.get("kind") != "Service":
            continue
        if not (d.get("spec") or {}).get("selector"):
            lines.append(f"{kubectl} get endpointslices -l kubernetes.io/service-name={d['metadata']['name']} -o wide")
        if (d.get("spec") or {}).get("type") == "NodePort":  # nodes belong to no namespace
            lines.append(f"{re.sub(r' -n [^ ]+', '', kubectl)} get nodes -o wide")
    return list(dict.fromkeys(lines))


def _letter(i: int) -> str:
    return "AB"[i] if i < 2 else str(i + 1)


def _where(cluster: Part) -> str:
    """``context (server), namespace ns``, from the head line of a cluster's YAML stream."""
    return cluster.text.splitlines()[0].removeprefix("# cluster: ")


def _run(line: str) -> list[str]:
    import subprocess

    run = subprocess.run(line, shell=True, capture_output=True, text=True, timeout=60, check=False)
    return [f"$ {line}", (run.stdout or run.stderr).rstrip() + "\n"]


def _tail(text: str, size: int) -> str:
    """The last ``size`` characters of ``text``, from the first whole line in them."""
    if len(text) <= size:
        return text
    cut = text[-size:]
    return cut.split("\n", 1)[1] if "\n" in cut else cut


def at_work(app: Any, *, tail: int = 300) -> str:
    """Look at ``app`` as at work: the real CLI's "get" line of ``app.commands()`` run for real when
    ``kubectl``/``docker`` is installed, then the last lines the container serving ``/data`` printed.

    On two clusters (``federation``) the "get" line of each, headed cluster A (this runtime's context)
    and cluster B (the peer), each followed by what joins them (:func:`_look_closer`), and the last
    ``GET /data`` lines of the container echo reads from, in the other cluster. Returns the text (a notebook cell prints it); without the
    CLI it says so, and what shows the same.
    """
    import shutil

    cli = {"docker": "docker", "kubernetes": "kubectl"}.get(app.runtime.name)
    clusters = _clusters(app)
    out: list[str] = []
    if cli and shutil.which(cli):
        gets = app.commands().matching("(get)")
        if len(clusters) > 1:
            for i, (get, cluster) in enumerate(zip(gets, clusters)):
                runs = sorted({c["name"] for d in _docs(cluster.text) if d.get("kind") in ("Deployment", "Pod")
                               for c in ((d["spec"].get("template") or d)["spec"]["containers"])})
                out.append(f"=== cluster {_letter(i)}: {_where(cluster)} (runs {', '.join(runs)}) ===")
                for line in [get, *_look_closer(get, cluster)]:
                    out += _run(line)
        else:
            for line in gets[:1]:
                out += _run(line)
    else:
        where = f"{cli} is not installed here" if cli else f"no CLI for the {app.runtime.name} runtime"
        out.append(f"({where}: app.status(), app.events() and app.logs() show the same)")
    entry = app.scenario.entry[1]
    out += [f"--- the last lines {entry} printed (app.logs({entry!r})) ---", _tail(app.logs(entry), tail)]
    source = app.scenario.container(entry).source
    if len(clusters) > 1 and source:
        there = next(s.container for s in app.scenario.services if s.name == source)
        asked = "".join(x for x in app.logs(there).splitlines(keepends=True) if "GET /data" in x)
        out += [f"--- the GET /data {there} answered, in the other cluster (app.logs({there!r})): echo's ---",
                _tail(asked, tail)]
    return "\n".join(out)


def wiring(app: Any = None) -> Spec:
    """The objects that join ``federation``'s two clusters, per cluster: the Service that opens one to the
    others (NodePort), and the Service without a selector with the EndpointSlice that points across.

    With a running federated ``app``: as applied (its ``app.spec()``, cut down to those objects): cluster
    A's Service asks for no node port, A allocates one; cluster B's EndpointSlice holds that port and a
    node address of A. Without one: as the course's manifests write them (``manifests/federation/``:
    a pinned port and a documentation address, which the library replaces when it applies them).
    """
    from .paths import manifests_dir

    if app is not None:
        title, runtime = app.name, app.runtime.name
        sources = [(_where(p), p.text.splitlines()[0] + "\n", p.text) for p in _clusters(app)]
    else:
        title, runtime = "federation", "kubernetes"
        sources = [(f"manifests/federation/{d.name}, as written", f"# {d.name}: manifests/federation/{d.name}\n",
                    "\n---\n".join(f.read_text() for f in sorted(d.glob("*.yaml"))))
                   for d in sorted((manifests_dir() / "federation").iterdir()) if d.is_dir()]
    parts = []
    for i, (name, head, text) in enumerate(sources):
        body = "---\n".join(_yaml_doc(d) for d in _docs(text) if _joins(d))
        parts.append(Part(f"cluster {_letter(i)}: {name}", "yaml", head + body))
    return Spec(title, runtime, parts)


def _yaml_doc(obj: dict[str, Any]) -> str:
    """One object as ``kubectl apply -f`` reads it (keys in their written order)."""
    import yaml

    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, width=110)


__all__ = ["TOPICS", "Guide", "Pictures", "at_work", "decision_guide", "picture", "pictures", "wiring"]
