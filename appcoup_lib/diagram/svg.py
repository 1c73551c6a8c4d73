"""The SVG: a geometry that depends on the spec alone (:func:`layout`), drawn by :func:`render`.

Pure string building (no graphviz, which is not there offline); every label is SVG text, escaped.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass, field
from typing import Any

from .model import KIND_TITLE, KINDS, ContainerBox, Namespace, Topology, UnitBox
from .spec import image_text

# -- geometry: a function of the skeleton alone ---------------------------------------------------------
M = 16  # outer margin
BP = 14  # boundary padding
UP = 12  # unit padding
CG = 16  # gap between containers of one unit
UG = 28  # gap between units
HOP_GAP = 178  # gap between units (or clusters) that a Service hop crosses: room for its label
PH = 34  # process box height
ROW_H = 34  # one namespace row
FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
COLOR = {"net": "#1e6fd9", "pid": "#8e24aa", "ipc": "#ef6c00", "mnt": "#00897b"}


def _tw(text: str, size: float = 12, bold: bool = False) -> float:
    """A generous text width estimate (DejaVu Sans is wide)."""
    return len(text) * size * (0.66 if bold else 0.6)


def _wrap(text: str, width: float, size: float = 11) -> list[str]:
    lines: list[str] = []
    cur = ""
    for word in text.split():
        cand = f"{cur} {word}".strip()
        if cur and _tw(cand, size) > width:
            lines.append(cur)
            cur = word
        else:
            cur = cand
    return [*lines, cur] if cur else lines


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def bottom(self) -> float:
        return self.y + self.h

    @property
    def right(self) -> float:
        return self.x + self.w


@dataclass
class Layout:
    """Where every box goes, by id (``container:echo``, ``unit:app``, ``volume:data`` ...)."""

    boxes: dict[str, Box] = field(default_factory=dict)
    width: float = 0
    height: float = 0
    cw: float = 0
    lines: dict[str, list[str]] = field(default_factory=dict)  # wrapped spec texts, by id
    rows_y: float = 0
    volumes_y: float = 0
    legend: list[list[tuple[float, str, str]]] = field(default_factory=list)


def _container_width(topo: Topology) -> float:
    """From the scenario alone, with every runtime's wording: the same width on each runtime."""
    texts = [(f"supervised program {c.name}", 13, True) for c in topo.containers]
    texts += [(image_text(r, c.image_key), 10, False) for c in topo.containers for r in ("local", "docker")]
    texts += [(p.command, 10, False) for c in topo.containers for p in c.processes]
    # A container of several programs carries its namespace bands alone: room for their names.
    least = 300.0 if any(len(c.processes) > 1 for c in topo.containers) else 230.0
    return max(least, *(_tw(t, s, b) + 50 for t, s, b in texts))


def layout(topo: Topology) -> Layout:
    """The geometry: depends on the scenario and the runtime, never on the live state."""
    lay = Layout()
    cw = lay.cw = _container_width(topo)
    nproc = max(len(c.processes) for c in topo.containers)
    ch = 44 + nproc * (PH + 6) + 26
    hops = [h for h in topo.hops if h.kind == "service"]
    unit_of = {c.name: u.name for u in topo.units for c in u.containers}

    def hop_between(left: UnitBox, right: UnitBox) -> bool:
        names = {c.name for c in (*left.containers, *right.containers)}
        return any(h.frm in names and h.to in names and unit_of[h.frm] != unit_of[h.to] for h in hops)

    def unit_w(u: UnitBox) -> float:
        return 2 * UP + len(u.containers) * cw + (len(u.containers) - 1) * CG

    # Text wraps to the width of its box, both known from the spec: heights come out the same every time.
    # Two lines of note and one live line are kept on every runtime, so that the containers of a
    # scenario sit at the same place on each.
    uh = 0.0
    for u in topo.units:
        lay.lines[f"unit:{u.name}"] = _wrap(u.note, unit_w(u) - 2 * UP - 34, 10)
        uh = max(uh, 24 + 13 * max(2, len(lay.lines[f"unit:{u.name}"])) + 13 + 8)
    widths = []
    for b in topo.boundaries:
        w = sum(unit_w(u) for u in b.units) + sum(
            HOP_GAP if hop_between(l, r) else UG for l, r in zip(b.units, b.units[1:])) + 2 * BP
        widths.append(max(w, _tw(b.title, 14, True) + 2 * BP + 20, 360))
    bh = 0.0
    for b, w in zip(topo.boundaries, widths):
        lay.lines[f"boundary:{b.name}"] = _wrap(b.note, w - 2 * BP - 40, 11)
        bh = max(bh, 26 + 14 * max(2, len(lay.lines[f"boundary:{b.name}"])) + 14 + 8)

    top = M + 40 + 62  # title lines, then the learner's box and the arrow down
    unit_top = top + bh
    cont_top = unit_top + uh
    units_bottom = cont_top + ch + UP
    vol_top = units_bottom + 40 if topo.volumes else units_bottom  # room for the mount lines' labels
    vol_h = 44
    lay.volumes_y = vol_top
    rows_top = vol_top + (vol_h + 22 if topo.volumes else 10) + 18
    lay.rows_y = rows_top
    bottom = rows_top + len(KINDS) * (ROW_H + 6) + BP - 6

    x = float(M)
    for i, (b, bw) in enumerate(zip(topo.boundaries, widths)):
        if i:
            x += HOP_GAP if any(h.crosses_clusters for h in hops) else UG
        lay.boxes[f"boundary:{b.name}"] = Box(x, top, bw, bottom - top)
        ux = x + BP
        for j, u in enumerate(b.units):
            if j:
                ux += HOP_GAP if hop_between(b.units[j - 1], u) else UG
            w = unit_w(u)
            ubottom = vol_top + vol_h + UP if u.volumes else units_bottom
            lay.boxes[f"unit:{u.name}"] = Box(ux, unit_top, w, ubottom - unit_top)
            for k, c in enumerate(u.containers):
                cx = ux + UP + k * (cw + CG)
                lay.boxes[f"container:{c.name}"] = Box(cx, cont_top, cw, ch)
                for n, p in enumerate(c.processes):
                    indent = 16 if p.child else 0
                    lay.boxes[f"process:{c.name}/{p.name}"] = Box(cx + 10 + indent, cont_top + 44 + n * (PH + 6),
                                                                 cw - 20 - indent, PH)
            ux += w
        x += bw
    width = x + M
    # Volumes: under the containers that mount them.
    for v in topo.volumes:
        users = [c for c in topo.containers if c.mount and c.mount.volume == v.name]
        if not users:
            continue
        xs = [lay.boxes[f"container:{c.name}"] for c in users]
        room = next(lay.boxes[f"boundary:{b.name}"] for b in topo.boundaries
                    if any(c.name == users[0].name for u in b.units for c in u.containers)).right - BP - xs[0].x - 10
        want = max(_tw(v.note, 10), _tw(f"volume {v.name} · {v.title}", 12, True)) + 20
        lay.boxes[f"volume:{v.name}"] = Box(xs[0].x + 10, vol_top, min(max(xs[-1].right - xs[0].x - 20, want), room),
                                            vol_h)
    # The learner's box above the entry container; the arrow comes down at its right.
    entry = next(h for h in topo.hops if h.kind == "entry")
    eb = lay.boxes[f"container:{entry.to}"]
    ax = eb.right - 26
    you_w = max(_tw(entry.title, 12, True) + 20, 120)
    you_x = min(max(M, ax - you_w / 2), width - M - you_w)
    lay.boxes["you"] = Box(you_x, M + 40, you_w, 24)
    lay.lines["entry"] = _wrap(entry.note, 330, 10)
    note_w = max(_tw(line, 10) for line in lay.lines["entry"]) + 12
    width = max(width, ax + 8 + note_w + M, you_x + you_w + M)
    for h in hops:
        a, t = lay.boxes[f"container:{h.frm}"], lay.boxes[f"container:{h.to}"]
        left, right = (t, a) if t.x < a.x else (a, t)
        lay.boxes[f"hop:{h.to}"] = Box(left.right + 16, cont_top + ch / 2 - 33, right.x - left.right - 32, 66)
    lay.legend = _legend_rows(max(width - 2 * M - 56, 480))
    lay.width = round(max(width, M + 56 + max(dx + _tw(label, 11) + 40 for row in lay.legend
                                                 for dx, _, label in row) + M))
    lay.height = round(bottom + 24 + 20 * len(lay.legend) + 8)
    return lay


# -- drawing -------------------------------------------------------------------------------------------
def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _text(x: float, y: float, text: str, size: float = 12, *, bold: bool = False, fill: str = "#222",
          anchor: str = "start", halo: bool = False, cls: str = "") -> str:
    extra = " paint-order='stroke' stroke='#ffffff' stroke-width='3' stroke-linejoin='round'" if halo else ""
    c = f" class='{cls}'" if cls else ""
    weight = " font-weight='bold'" if bold else ""
    return (f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}'{weight} "
            f"fill='{fill}' text-anchor='{anchor}'{extra}{c}>{_e(text)}</text>")


def _rect(b: Box, *, fill: str, stroke: str, rx: float = 6, width: float = 1.2, dash: str = "",
          extra: str = "") -> str:
    d = f" stroke-dasharray='{dash}'" if dash else ""
    return (f"<rect x='{b.x:.1f}' y='{b.y:.1f}' width='{b.w:.1f}' height='{b.h:.1f}' rx='{rx}' fill='{fill}' "
            f"stroke='{stroke}' stroke-width='{width}'{d}{extra}/>")


def _state_colours(running: bool | None) -> tuple[str, str, str]:
    """(fill, stroke, text) for a container: green running, red not running, grey not read."""
    if running is None:
        return "#f5f5f5", "#9e9e9e", "#616161"
    return ("#e8f5e9", "#2e7d32", "#1b5e20") if running else ("#ffebee", "#c62828", "#b71c1c")


def render(topo: Topology, lay: Layout | None = None) -> str:
    """The SVG text of ``topo``."""
    lay = lay or layout(topo)
    uid = "ac" + hashlib.sha1(f"{topo.scenario}/{topo.runtime}".encode()).hexdigest()[:6]
    out: list[str] = [
        (f"<svg xmlns='http://www.w3.org/2000/svg' class='appcoup-diagram' width='{lay.width}' "
         f"height='{lay.height}' viewBox='0 0 {lay.width} {lay.height}' font-family='{FONT}' "
         f"data-scenario='{_e(topo.scenario)}' data-runtime='{_e(topo.runtime)}'>"),
        "<defs>",
        *(f"<pattern id='{uid}-{k}' width='7' height='7' patternUnits='userSpaceOnUse' "
          f"patternTransform='rotate(45)'><rect width='7' height='7' fill='{COLOR[k]}' fill-opacity='0.08'/>"
          f"<line x1='0' y1='0' x2='0' y2='7' stroke='{COLOR[k]}' stroke-width='2.2' stroke-opacity='0.35'/>"
          f"</pattern>" for k in KINDS),
        (f"<marker id='{uid}-arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' markerHeight='7' "
         "orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' fill='#37474f'/></marker>"),
        "</defs>",
        f"<rect x='0' y='0' width='{lay.width}' height='{lay.height}' fill='#ffffff'/>",
        _text(M, M + 14, topo.title, 15, bold=True),
        _text(M, M + 32, "what the programs share: boxes nest as the runtime nests them; the bands below "
                         "show the namespaces", 11, fill="#555"),
    ]
    if topo.message:
        out.append(_text(lay.width - M, M + 14, topo.message, 11, fill="#c62828", anchor="end", cls="message"))
    labels: list[str] = []  # drawn last, over lines

    for b in topo.boundaries:
        bb = lay.boxes[f"boundary:{b.name}"]
        out.append(f"<g data-id='boundary:{_e(b.name)}'>" + _rect(bb, fill="#fafbfc", stroke="#546e7a", rx=10,
                                                                    width=1.6) + "</g>")
        labels.append(_text(bb.x + BP, bb.y + 20, b.title, 14, bold=True, halo=True))
        y = bb.y + 36
        for line in lay.lines[f"boundary:{b.name}"]:
            labels.append(_text(bb.x + BP, y, line, 11, fill="#455a64", halo=True))
            y += 14
        y = bb.y + 36 + 14 * max(2, len(lay.lines[f"boundary:{b.name}"]))
        if b.live or topo.runtime == "kubernetes":
            labels.append(_text(bb.x + BP, y, b.live or "context: not read", 10, fill="#607d8b", halo=True,
                                cls="live"))
        for u in b.units:
            ub = lay.boxes[f"unit:{u.name}"]
            out.append(f"<g data-id='unit:{_e(u.name)}'>" + _rect(ub, fill="#ffffff", stroke="#78909c", rx=8,
                                                                dash="" if topo.runtime != "local" else "6 4")
                       + "</g>")
            labels.append(_text(ub.x + UP, ub.y + 18, u.title, 13, bold=True, halo=True))
            y = ub.y + 32
            for line in lay.lines[f"unit:{u.name}"]:
                labels.append(_text(ub.x + UP, y, line, 10, fill="#546e7a", halo=True))
                y += 13
            y = ub.y + 32 + 13 * max(2, len(lay.lines[f"unit:{u.name}"]))
            if u.live or topo.runtime == "kubernetes":
                labels.append(_text(ub.x + UP, y, u.live or "node: not read", 10, fill="#607d8b", halo=True,
                                    cls="live"))
            for c in u.containers:
                out.append(_container(c, lay, topo.runtime))

    # Mount lines, then the volumes.
    for v in topo.volumes:
        vb = lay.boxes.get(f"volume:{v.name}")
        if vb is None:
            continue
        for c in topo.containers:
            if not c.mount or c.mount.volume != v.name:
                continue
            cb = lay.boxes[f"container:{c.name}"]
            x = cb.x + 34
            out.append(f"<line x1='{x:.1f}' y1='{cb.bottom:.1f}' x2='{x:.1f}' y2='{vb.y:.1f}' stroke='#6d4c41' "
                       f"stroke-width='2'/>")
            labels.append(_text(x + 6, cb.bottom + 24, c.mount.path + (" (read-only)" if c.mount.read_only
                                                                        else ""), 10, fill="#5d4037", halo=True))
        out.append(f"<g data-id='volume:{_e(v.name)}'>" + _rect(vb, fill="#efebe9", stroke="#6d4c41", rx=12)
                   + _text(vb.x + 10, vb.y + 17, f"volume {v.name} · {v.title}", 12, bold=True, fill="#4e342e")
                   + _text(vb.x + 10, vb.y + 33, _fit(v.note, vb.w - 16, 10), 10, fill="#5d4037") + "</g>")

    out.append(_rows(topo, lay, uid))
    out.append(_hops_svg(topo, lay, uid, labels))
    out.extend(labels)
    out.append(_legend(topo, lay, uid))
    out.append("</svg>")
    return "".join(out)


def _container(c: ContainerBox, lay: Layout, runtime: str) -> str:
    cb = lay.boxes[f"container:{c.name}"]
    fill, stroke, ink = _state_colours(c.running)
    state = ("not read" if c.running is None else (c.state or ("running" if c.running else "not running")))
    dot = "●" if c.running else ("○" if c.running is None else "✕")
    what = "supervised program" if runtime == "local" else "container"
    parts = [(f"<g data-id='container:{_e(c.name)}' data-running='{str(c.running).lower()}' "
              f"data-restarts='{c.restarts}'>"),
             _rect(cb, fill=fill, stroke=stroke, width=2.2, extra=" class='state'"),
             _text(cb.x + 10, cb.y + 18, f"{what} {c.name}", 13, bold=True),
             _text(cb.x + 10, cb.y + 33, c.image, 10, fill="#455a64")]
    if c.port:
        parts.append(_rect(Box(cb.right - 58, cb.y + 6, 50, 18), fill="#ffffff", stroke="#37474f", rx=9, width=1)
                     + _text(cb.right - 33, cb.y + 19, f":{c.port}", 11, bold=True, anchor="middle"))
    for p in c.processes:
        pb = lay.boxes[f"process:{c.name}/{p.name}"]
        dead = p.running is False
        pid = f"pid {p.pid}" if p.pid else ("not running" if dead else "")
        parts.append(f"<g data-id='process:{_e(c.name)}/{_e(p.name)}' data-running='{str(p.running).lower()}'>"
                     + _rect(pb, fill="#ffebee" if dead else "#ffffff", stroke="#c62828" if dead else "#90a4ae",
                             rx=4, width=1.6 if dead else 1)
                     + _text(pb.x + 8, pb.y + 14, p.name, 11, bold=True)
                     + _text(pb.right - 8, pb.y + 14, pid, 10, fill="#b71c1c" if dead else "#37474f", anchor="end",
                             cls="pid")
                     + _text(pb.x + 8, pb.y + 27, p.command, 10, fill="#546e7a") + "</g>")
        if p.child:
            parts.append(f"<path d='M{pb.x - 9:.1f},{pb.y - 6:.1f} V{pb.y + PH / 2:.1f} H{pb.x:.1f}' fill='none' "
                         f"stroke='#90a4ae'/>")
    foot = f"{dot} {state} · restarts {c.restarts}"
    parts.append(_text(cb.x + 10, cb.bottom - 9, foot, 11, bold=True, fill=ink, cls="state"))
    parts.append("</g>")
    return "".join(parts)


def _band_text(topo: Topology, ns: Namespace) -> tuple[str, str]:
    k = KIND_TITLE[ns.kind]
    progs = topo.programs_in(ns)
    src = "read from /proc" if ns.source == "read" else "inferred"
    if ns.scope == "host":
        return (f"{k}: the host's, shared with every process here", f"{ns.why} ({src})")
    if len(progs) >= 2:
        return (f"{k}: shared by {' · '.join(progs)}", f"{ns.why} ({src})")
    return (f"{k}: its own", f"{ns.why} ({src})")


def _rows(topo: Topology, lay: Layout, uid: str) -> str:
    parts = []
    for b in topo.boundaries:
        bb = lay.boxes[f"boundary:{b.name}"]
        parts.append(_text(bb.x + BP, lay.rows_y - 8, "namespaces: what the programs share", 11, bold=True,
                           fill="#37474f"))
    members_box = {c.name: lay.boxes[f"container:{c.name}"] for c in topo.containers}
    for i, kind in enumerate(KINDS):
        y = lay.rows_y + i * (ROW_H + 6)
        for ns in (n for n in topo.namespaces if n.kind == kind):
            boxes = [members_box[m] for m in ns.members]
            if ns.scope == "host":  # the whole machine's: the band spans the host box, edge to edge
                bb = next(lay.boxes[f"boundary:{b.name}"] for b in topo.boundaries
                          if any(c.name in ns.members for u in b.units for c in u.containers))
                x0, x1 = bb.x + 6, bb.right - 6
            else:
                x0, x1 = min(b.x for b in boxes), max(b.right for b in boxes)
            read = ns.source == "read"
            shared = len(topo.programs_in(ns)) >= 2 or ns.scope == "host"
            if shared:
                fill = f"{COLOR[kind]}33" if read else f"url(#{uid}-{kind})"
                stroke, dash, ink = COLOR[kind], ("" if read else "5 3"), "#1a1a1a"
            else:
                fill, stroke, dash, ink = "#f4f6f8", "#b0bec5", ("" if read else "3 3"), "#607d8b"
            line1, line2 = _band_text(topo, ns)
            parts.append(f"<g data-id='ns:{kind}:{_e(ns.members[0])}' data-key='{_e(ns.key)}' data-kind='{kind}' "
                         f"data-source='{ns.source}' "
                         f"data-members='{_e(' '.join(ns.members))}' data-scope='{ns.scope}'>"
                         + _rect(Box(x0, y, x1 - x0, ROW_H), fill=fill, stroke=stroke, rx=5, dash=dash,
                                 width=1.6 if shared else 1)
                         + f"<title>{_e(line1 + ' — ' + line2 + ('. ' + ns.detail if ns.detail else ''))}</title>"
                         + _text(x0 + 8, y + 14, line1, 11, bold=shared, fill=ink, halo=True)
                         + _text(x0 + 8, y + 27, _fit(line2, x1 - x0 - 16, 10), 10, fill="#455a64", halo=True)
                         + "</g>")
    return "".join(parts)


def _fit(text: str, width: float, size: float) -> str:
    """Shorten a band's second line to its band (the full text is in the table and the tooltip)."""
    if _tw(text, size) <= width:
        return text
    n = max(8, int(width / (size * 0.6)) - 1)
    return text[:n].rstrip() + "…"


def _hops_svg(topo: Topology, lay: Layout, uid: str, labels: list[str]) -> str:
    parts = []
    arrow = f"marker-end='url(#{uid}-arrow)'"
    for h in topo.hops:
        if h.kind == "entry":
            eb, yb = lay.boxes[f"container:{h.to}"], lay.boxes["you"]
            ax = eb.right - 26
            parts.append(_rect(yb, fill="#e3f2fd", stroke="#1565c0", rx=12)
                         + _text(yb.cx, yb.y + 16, h.title, 12, bold=True, fill="#0d47a1", anchor="middle"))
            parts.append(f"<path d='M{ax:.1f},{yb.bottom:.1f} V{eb.y + 6:.1f}' stroke='#37474f' stroke-width='2' "
                         f"fill='none' {arrow}/>")
            for n, line in enumerate(lay.lines["entry"]):
                labels.append(_text(ax + 8, yb.bottom + 14 + 12 * n, line, 10, fill="#37474f", halo=True))
            continue
        # The asking container -> the name (Service, DNS alias, fixed address) -> the answering one.
        hb = lay.boxes[f"hop:{h.to}"]
        frm, to = lay.boxes[f"container:{h.frm}"], lay.boxes[f"container:{h.to}"]
        y = hb.y + hb.h / 2
        if to.x < frm.x:
            segs = ((frm.x, hb.right), (hb.x, to.right))
        else:
            segs = ((frm.right, hb.x), (hb.right, to.x))
        for x1, x2 in segs:
            parts.append(f"<path d='M{x1:.1f},{y:.1f} H{x2:.1f}' stroke='#37474f' stroke-width='2' fill='none' "
                         f"{arrow}/>")
        parts.append(f"<g data-id='hop:{_e(h.to)}'>" + _rect(hb, fill="#fff8e1", stroke="#f9a825", rx=8, width=1.4)
                     + "</g>")
        labels.append(_text(hb.cx, hb.y + 16, h.title, 11, bold=True, anchor="middle", fill="#5d4037"))
        for n, line in enumerate(_wrap(h.note, hb.w - 12, 10)[:3]):
            labels.append(_text(hb.cx, hb.y + 30 + 12 * n, line, 10, anchor="middle", fill="#5d4037"))
        labels.append(_text(hb.cx, hb.bottom + 14, f"{h.frm} asks {h.to} for /data", 10, anchor="middle",
                            fill="#37474f", halo=True))
    return "".join(parts)


# (swatch, label): the swatch is a state, a namespace style or a namespace kind.
_LEGEND: tuple[tuple[str, str], ...] = (
    ("running", "running"), ("stopped", "not running"), ("unread", "not read"),
    ("read", "shared, read from /proc/<pid>/ns"), ("inferred", "shared, inferred from the spec"),
    ("own", "not shared"), *((f"kind:{k}", KIND_TITLE[k]) for k in KINDS),
    ("", "restarts: how often the runtime started a container again"),
)


def _legend_rows(width: float) -> list[list[tuple[float, str, str]]]:
    """The legend flowed into rows no wider than ``width``: [(x offset, swatch, label)] per row."""
    rows: list[list[tuple[float, str, str]]] = [[]]
    x = 0.0
    for swatch, label in _LEGEND:
        w = (0 if not swatch else 14 if swatch.startswith("kind:") else 32) + _tw(label, 11) + 18
        if x and x + w > width:
            rows.append([])
            x = 0.0
        rows[-1].append((x, swatch, label))
        x += w
    return rows


def _legend(topo: Topology, lay: Layout, uid: str) -> str:
    y0 = lay.height - 16 - 20 * len(lay.legend) + 10
    parts = [_text(M, y0, "legend", 11, bold=True, fill="#37474f")]
    states = {"running": _state_colours(True), "stopped": _state_colours(False), "unread": _state_colours(None)}
    for r, row in enumerate(lay.legend):
        y = y0 + 20 * r
        for dx, swatch, label in row:
            x = M + 56 + dx
            if swatch in states:
                fill, stroke, _ = states[swatch]
                parts.append(_rect(Box(x, y - 11, 22, 14), fill=fill, stroke=stroke, rx=3, width=2))
            elif swatch == "read":
                parts.append(_rect(Box(x, y - 11, 22, 14), fill=f"{COLOR['net']}33", stroke=COLOR["net"], rx=3,
                                   width=1.6))
            elif swatch == "inferred":
                parts.append(_rect(Box(x, y - 11, 22, 14), fill=f"url(#{uid}-net)", stroke=COLOR["net"], rx=3,
                                   width=1.6, dash="5 3"))
            elif swatch == "own":
                parts.append(_rect(Box(x, y - 11, 22, 14), fill="#f4f6f8", stroke="#b0bec5", rx=3, width=1))
            elif swatch.startswith("kind:"):
                k = swatch[5:]
                parts.append(_rect(Box(x, y - 10, 10, 10), fill=COLOR[k], stroke=COLOR[k], rx=2, width=1))
            off = 0 if not swatch else 14 if swatch.startswith("kind:") else 30
            parts.append(_text(x + off, y, label, 11, fill="#333" if swatch else "#555"))
    return "".join(parts)
