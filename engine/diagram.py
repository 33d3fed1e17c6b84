"""Workflow diagrams of a queue: an SVG picture and Mermaid text of the same graph.

``workflow`` turns a linked queue into a small graph: one node per step (label, group,
number of actions) in definition order, the Complete node, and a "supervisor" node per
step that may hand a work order to its group's supervisor; solid edges follow ``next``,
dashed edges the return paths (``previous``: back to each step whose ``next`` leads here;
a step's name: back to that step). ``render_svg`` and ``render_mermaid`` draw that graph.

The SVG layout is layered and deterministic: steps top to bottom in definition order, the
Complete node last; an edge to the row below runs straight down the middle, edges that
skip rows go down along the left side, edges that lead back go up along the right side,
each in a lane of its own. Every text is XML-escaped, and the picture uses no external
fonts, styles or scripts, so it can be served as ``image/svg+xml`` or written to a file.

Pure: no I/O, no web imports; words such as "Complete" come in through ``DiagramWords``
so a caller can translate them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from .labels import label_map, pick_label
from .link.resolved import LinkedWorkspace, ResolvedQueue

COMPLETE = "complete"
"""The name ``next`` uses for the end of a queue, and the id of the Complete node."""

NodeKind = Literal["step", "complete", "supervisor"]
EdgeKind = Literal["next", "return"]


def _count_actions(count: int) -> str:
    return f"{count} action" if count == 1 else f"{count} actions"


@dataclass(frozen=True)
class DiagramWords:
    """The diagram's own words (English by default); pass translated ones to draw it in another language."""

    complete: str = "Complete"
    supervisor: str = "Supervisor"
    previous: str = "previous"
    next_step: str = "next step"
    return_path: str = "return path"
    actions: Callable[[int], str] = _count_actions
    """The number of a step's actions in words: ``3 actions``."""


@dataclass(frozen=True)
class Node:
    """A box of the diagram: a step, the Complete node, or a step's supervisor."""

    id: str
    kind: NodeKind
    label: str
    detail: str
    row: int
    """The row the node is drawn in: a step's position; Complete after the last step."""


@dataclass(frozen=True)
class Edge:
    """An arrow: ``next`` routing (solid) or a return path (dashed)."""

    source: str
    target: str
    kind: EdgeKind
    label: str = ""


@dataclass(frozen=True)
class Workflow:
    """A queue as a graph, ready to draw."""

    name: str
    title: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


def supervisor_id(step: str) -> str:
    """The id of the node standing for the supervisor of ``step``'s group."""
    return f"{step}.supervisor"


def workflow(queue: ResolvedQueue, workspace: LinkedWorkspace, language: str | None = None,
             words: DiagramWords = DiagramWords()) -> Workflow:
    """The graph of ``queue``, with labels in ``language`` (default: the workspace's)."""
    default = workspace.settings.language
    language = language or default
    nodes: list[Node] = []
    edges: list[Edge] = []
    predecessors: dict[str, list[str]] = {step.name: [] for step in queue.steps}
    for step in queue.steps:
        for target in step.next:
            if target in predecessors and step.name not in predecessors[target]:
                predecessors[target].append(step.name)
    for row, step in enumerate(queue.steps):
        group = workspace.groups.get(step.group or "")
        group_text = pick_label(label_map(group.label, default), language, default, step.group or "") if group \
            else (step.group or "")
        detail = " · ".join(part for part in (group_text, words.actions(len(step.actions))) if part)
        nodes.append(Node(step.name, "step", pick_label(step.label, language, default, step.name), detail, row))
        edges.extend(Edge(step.name, target, "next") for target in step.next)
        for way in step.returns:
            if way == "previous":
                edges.extend(Edge(step.name, back, "return", words.previous) for back in predecessors[step.name])
            elif way == "supervisor":
                nodes.append(Node(supervisor_id(step.name), "supervisor", words.supervisor, group_text, row))
                edges.append(Edge(step.name, supervisor_id(step.name), "return"))
            else:
                edges.append(Edge(step.name, way, "return"))
    nodes.append(Node(COMPLETE, "complete", words.complete, "", len(queue.steps)))
    unique = list(dict.fromkeys(edges))
    return Workflow(queue.name, pick_label(queue.label, language, default, queue.name), tuple(nodes), tuple(unique))


# -- Mermaid ---------------------------------------------------------------------------------

_MERMAID_ESCAPES = {c: f"#{ord(c)};" for c in '"#&<>|`;'}


def _mermaid_text(text: str) -> str:
    """``text`` safe inside a Mermaid label: special characters as entity codes, one line."""
    text = " ".join(text.split())
    return "".join(_MERMAID_ESCAPES.get(c, c) for c in text)


def mermaid_id(node: str) -> str:
    """A Mermaid node id for ``node``: letters, digits and underscores, never a keyword."""
    if node == COMPLETE:
        return "complete"
    if node.endswith(".supervisor"):
        return "supervisor_" + re.sub(r"\W", "_", node.removesuffix(".supervisor"), flags=re.ASCII)
    return "step_" + re.sub(r"\W", "_", node, flags=re.ASCII)


def render_mermaid(graph: Workflow) -> str:
    """The graph as a Mermaid flowchart, top to bottom."""
    lines = ["flowchart TD"]
    for node in graph.nodes:
        text = _mermaid_text(node.label)
        if node.detail:
            text += "<br/>" + _mermaid_text(node.detail)
        shape = {"step": '["{}"]', "complete": '(["{}"])', "supervisor": '{{{{"{}"}}}}'}[node.kind]
        lines.append(f"    {mermaid_id(node.id)}{shape.format(text)}")
    for edge in graph.edges:
        arrow = "-->" if edge.kind == "next" else "-.->"
        label = f"|{_mermaid_text(edge.label)}|" if edge.label else ""
        lines.append(f"    {mermaid_id(edge.source)} {arrow}{label} {mermaid_id(edge.target)}")
    lines.append("    classDef complete fill:#e6f4ea,stroke:#2e7d32")
    lines.append("    classDef supervisor fill:#fff7e6,stroke:#b26a00,stroke-dasharray:4 3")
    lines.append("    class complete complete")
    supervisors = [mermaid_id(n.id) for n in graph.nodes if n.kind == "supervisor"]
    if supervisors:
        lines.append(f"    class {','.join(supervisors)} supervisor")
    return "\n".join(lines) + "\n"


# -- SVG -------------------------------------------------------------------------------------

PAD = 24
TITLE_H = 30
LANE = 16
BOX_H = 56
ROW_GAP = 36
COMPLETE_H = 36
SUPERVISOR_H = 30
LEGEND_H = 26
MIN_BOX_W, MAX_BOX_W = 180, 340
MAX_SIDE_W = 220
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
INK, MUTED, LINE, BACK = "#1f2933", "#5b6573", "#44505f", "#b26a00"

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` escaped for XML content and attribute values; characters XML forbids are dropped."""
    text = _NOT_XML.sub("", text)
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&apos;"))


def text_width(text: str, size: int, bold: bool = False) -> int:
    """An estimate of ``text``'s width in pixels at font ``size`` (wide East Asian characters count double)."""
    units = sum(1.0 if unicodedata.east_asian_width(c) in "WF" else 0.58 for c in text)
    return int(units * size * (1.06 if bold else 1.0)) + 1


def fit(text: str, width: int, size: int, bold: bool = False) -> str:
    """``text``, cut with an ellipsis so that it fits into ``width`` pixels."""
    if text_width(text, size, bold) <= width:
        return text
    while text and text_width(text + "…", size, bold) > width:
        text = text[:-1]
    return text.rstrip() + "…"


@dataclass(frozen=True)
class _Box:
    x: int
    y: int
    w: int
    h: int

    @property
    def cx(self) -> int:
        return self.x + self.w // 2

    @property
    def right(self) -> int:
        return self.x + self.w


@dataclass(frozen=True)
class _Routed:
    edge: Edge
    side: Literal["middle", "left", "right", "supervisor"]
    lane: int


def _lanes(edges: Iterable[Edge], rows: dict[str, int]) -> dict[Edge, int]:
    """A lane per edge on one side: shorter edges nearer the boxes, overlapping edges apart."""
    taken: list[list[tuple[int, int]]] = []
    lanes: dict[Edge, int] = {}
    order = sorted(edges, key=lambda e: (abs(rows[e.target] - rows[e.source]), min(rows[e.source], rows[e.target]),
                                         rows[e.source], rows[e.target], e.kind))
    for edge in order:
        span = (min(rows[edge.source], rows[edge.target]), max(rows[edge.source], rows[edge.target]))
        for index, used in enumerate(taken):
            if all(span[1] < lo or span[0] > hi for lo, hi in used):
                used.append(span)
                lanes[edge] = index
                break
        else:
            taken.append([span])
            lanes[edge] = len(taken) - 1
    return lanes


def _route(graph: Workflow) -> list[_Routed]:
    rows = {node.id: node.row for node in graph.nodes}
    kinds = {node.id: node.kind for node in graph.nodes}
    middle, left, right, side = [], [], [], []
    for edge in graph.edges:
        step = rows[edge.target] - rows[edge.source]
        if kinds[edge.target] == "supervisor":
            side.append(edge)
        elif edge.kind == "next" and step == 1:
            middle.append(edge)
        elif step > 0:
            left.append(edge)
        else:
            right.append(edge)
    left_lanes, right_lanes = _lanes(left, rows), _lanes(right, rows)
    routed = [_Routed(e, "middle", 0) for e in middle] + [_Routed(e, "supervisor", 0) for e in side]
    routed += [_Routed(e, "left", left_lanes[e]) for e in left] + [_Routed(e, "right", right_lanes[e]) for e in right]
    return routed


def _ports(routed: list[_Routed], rows: dict[str, int], boxes: dict[str, _Box]) -> dict[tuple[Edge, str], int]:
    """The y of each end of each side edge on its box: edges to rows above on top, inner lanes first, so lanes do not cross."""
    attached: dict[tuple[str, str], list[tuple[tuple[int, int, int], Edge, str]]] = {}
    for item in routed:
        if item.side == "middle":
            continue
        edge = item.edge
        ends = [("source", edge.source, edge.target)]
        if item.side != "supervisor":
            ends.append(("target", edge.target, edge.source))
        for end, node, other in ends:
            side = "right" if item.side == "supervisor" else item.side
            if item.side == "supervisor":
                key = (1, 0, 0)
            elif rows[other] < rows[node] or (rows[other] == rows[node] and end == "source"):
                key = (0, item.lane, 0)
            else:
                key = (2, -item.lane, 0)
            attached.setdefault((node, side), []).append((key, edge, end))
    ports: dict[tuple[Edge, str], int] = {}
    for (node, _), items in attached.items():
        box = boxes[node]
        items.sort(key=lambda i: (i[0], i[1].source, i[1].target, i[1].kind, i[2]))
        for index, (_, edge, end) in enumerate(items):
            ports[(edge, end)] = box.y + box.h * (index + 1) // (len(items) + 1)
    return ports


def render_svg(graph: Workflow, words: DiagramWords = DiagramWords()) -> str:
    """The graph as a standalone SVG document (see the module's description of the layout)."""
    steps = [n for n in graph.nodes if n.kind == "step"]
    supervisors = {n.id: n for n in graph.nodes if n.kind == "supervisor"}
    rows = {node.id: node.row for node in graph.nodes}
    routed = _route(graph)
    left = 1 + max((r.lane for r in routed if r.side == "left"), default=-1)
    right = 1 + max((r.lane for r in routed if r.side == "right"), default=-1)

    widest = max([text_width(n.label, 14, True) for n in steps] + [text_width(n.detail, 12) for n in steps] + [0])
    box_w = min(MAX_BOX_W, max(MIN_BOX_W, widest + 24))
    box_x = PAD + LANE * left
    lanes_right = box_x + box_w + LANE * right
    side_x = lanes_right + 32
    side_texts = {k: fit(f"{n.label}: {n.detail}" if n.detail else n.label, MAX_SIDE_W - 20, 12)
                  for k, n in supervisors.items()}
    side_w = max((text_width(t, 12) + 20 for t in side_texts.values()), default=0)
    count = len(steps) + 1
    top = PAD + TITLE_H

    def row_y(row: int) -> int:
        return top + row * (BOX_H + ROW_GAP)

    boxes: dict[str, _Box] = {}
    for node in graph.nodes:
        y = row_y(node.row)
        if node.kind == "step":
            boxes[node.id] = _Box(box_x, y, box_w, BOX_H)
        elif node.kind == "complete":
            w = max(120, text_width(node.label, 14, True) + 32)
            boxes[node.id] = _Box(box_x + (box_w - w) // 2, y + (BOX_H - COMPLETE_H) // 2, w, COMPLETE_H)
        else:
            boxes[node.id] = _Box(side_x, y + (BOX_H - SUPERVISOR_H) // 2, side_w, SUPERVISOR_H)

    legend_y = row_y(count - 1) + BOX_H + 24
    legend_w = 40 + text_width(words.next_step, 12) + 36 + 40 + text_width(words.return_path, 12)
    title = fit(graph.title, max(300, box_x + box_w + LANE * right) - PAD, 15, True)
    width = max(lanes_right if not supervisors else side_x + side_w, PAD + legend_w, PAD + text_width(title, 15, True)) + PAD
    height = legend_y + LEGEND_H + PAD // 2
    prefix = "rc-" + re.sub(r"[^A-Za-z0-9_-]", "_", graph.name)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-labelledby="{prefix}-title" font-family="{xml_text(FONT)}" font-size="13">',
        f'<title id="{prefix}-title">{xml_text(graph.title)}</title>',
        "<defs>",
        *(f'<marker id="{prefix}-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
          f'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
          for name, colour in (("next", LINE), ("return", BACK))),
        "</defs>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{PAD}" y="{PAD + 16}" font-size="15" font-weight="600" fill="{INK}">{xml_text(title)}</text>',
    ]
    labels = {node.id: node.label for node in graph.nodes}
    ports = _ports(routed, rows, boxes)
    for item in routed:
        out.append(_edge_svg(item, boxes, ports, labels, prefix, box_x, box_w))
    for node in graph.nodes:
        out.append(_node_svg(node, boxes[node.id], side_texts.get(node.id, "")))
    out.append(_legend_svg(PAD, legend_y, words, prefix))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _edge_svg(item: _Routed, boxes: dict[str, _Box], ports: dict[tuple[Edge, str], int], labels: dict[str, str],
              prefix: str, box_x: int, box_w: int) -> str:
    edge = item.edge
    source, target = boxes[edge.source], boxes[edge.target]
    if item.side == "middle":
        d = f"M{source.cx},{source.y + source.h} V{target.y}"
    elif item.side == "supervisor":
        y = ports[(edge, "source")]
        d = f"M{source.right},{y} H{target.x}"
    elif item.side == "left":
        x = box_x - LANE * (item.lane + 1)
        d = f"M{source.x},{ports[(edge, 'source')]} H{x} V{ports[(edge, 'target')]} H{target.x}"
    else:
        x = box_x + box_w + LANE * (item.lane + 1)
        d = f"M{source.right},{ports[(edge, 'source')]} H{x} V{ports[(edge, 'target')]} H{target.right}"
    colour, dash = (LINE, "") if edge.kind == "next" else (BACK, ' stroke-dasharray="5 4"')
    what = f" ({edge.label})" if edge.label else ""
    tip = xml_text(f"{labels[edge.source]} → {labels[edge.target]}{what}")
    return (f'<path class="edge {edge.kind}" data-from="{xml_text(edge.source)}" data-to="{xml_text(edge.target)}" '
            f'd="{d}" fill="none" stroke="{colour}" stroke-width="1.5"{dash} marker-end="url(#{prefix}-{edge.kind})">'
            f"<title>{tip}</title></path>")


def _node_svg(node: Node, box: _Box, side_text: str) -> str:
    head = f'<g class="node {node.kind}" data-id="{xml_text(node.id)}">'
    tip = f"<title>{xml_text(node.label + (' — ' + node.detail if node.detail else ''))}</title>"
    if node.kind == "complete":
        return (f'{head}{tip}<rect x="{box.x}" y="{box.y}" width="{box.w}" height="{box.h}" rx="{box.h // 2}" '
                f'fill="#e6f4ea" stroke="#2e7d32" stroke-width="1.5"/>'
                f'<text x="{box.cx}" y="{box.y + box.h // 2 + 5}" text-anchor="middle" font-size="14" font-weight="600" '
                f'fill="#1e5e22">{xml_text(fit(node.label, box.w - 16, 14, True))}</text></g>')
    if node.kind == "supervisor":
        return (f'{head}{tip}<rect x="{box.x}" y="{box.y}" width="{box.w}" height="{box.h}" rx="{box.h // 2}" '
                f'fill="#fff7e6" stroke="{BACK}" stroke-dasharray="4 3"/>'
                f'<text x="{box.cx}" y="{box.y + box.h // 2 + 4}" text-anchor="middle" font-size="12" '
                f'fill="#7a4a00">{xml_text(side_text)}</text></g>')
    return (f'{head}{tip}<rect x="{box.x}" y="{box.y}" width="{box.w}" height="{box.h}" rx="6" fill="#ffffff" '
            f'stroke="#8a94a6" stroke-width="1.2"/>'
            f'<text x="{box.cx}" y="{box.y + 24}" text-anchor="middle" font-size="14" font-weight="600" '
            f'fill="{INK}">{xml_text(fit(node.label, box.w - 16, 14, True))}</text>'
            f'<text x="{box.cx}" y="{box.y + 43}" text-anchor="middle" font-size="12" '
            f'fill="{MUTED}">{xml_text(fit(node.detail, box.w - 16, 12))}</text></g>')


def _legend_svg(x: int, y: int, words: DiagramWords, prefix: str) -> str:
    second = x + 40 + text_width(words.next_step, 12) + 36
    return (f'<g class="legend" font-size="12" fill="{MUTED}">'
            f'<path d="M{x},{y + 8} H{x + 30}" stroke="{LINE}" stroke-width="1.5" marker-end="url(#{prefix}-next)"/>'
            f'<text x="{x + 38}" y="{y + 12}">{xml_text(words.next_step)}</text>'
            f'<path d="M{second},{y + 8} H{second + 30}" stroke="{BACK}" stroke-width="1.5" stroke-dasharray="5 4" '
            f'marker-end="url(#{prefix}-return)"/>'
            f'<text x="{second + 38}" y="{y + 12}">{xml_text(words.return_path)}</text></g>')


def queue_svg(queue: ResolvedQueue, workspace: LinkedWorkspace, language: str | None = None,
              words: DiagramWords = DiagramWords()) -> str:
    """``queue``'s workflow as an SVG document."""
    return render_svg(workflow(queue, workspace, language, words), words)


def queue_mermaid(queue: ResolvedQueue, workspace: LinkedWorkspace, language: str | None = None,
                  words: DiagramWords = DiagramWords()) -> str:
    """``queue``'s workflow as Mermaid flowchart text."""
    return render_mermaid(workflow(queue, workspace, language, words))
