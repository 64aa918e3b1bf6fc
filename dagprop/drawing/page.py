"""The player's page: one Graphviz layout pinned for every frame, so nothing moves between
steps, and the self-contained HTML (style, script, frames) that plays them."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import TYPE_CHECKING, Any, Mapping

from . import quoting
from .style import PALETTE, RED, TANGENT

if TYPE_CHECKING:
    from ..player import Frame

__all__ = ["pinned", "page", "typical_text_size", "inline_height", "READABLE_PX"]


# "fit" never shrinks the numbers' text below this many CSS pixels
READABLE_PX = 9.0
# bounds for the inline player's height in a notebook, and what its controls take
MIN_INLINE_PX, MAX_INLINE_PX, HEADER_PX = 360, 720, 200


# -- one layout for every frame ------------------------------------------------------------

_NODE_STATEMENT = re.compile(r"^(\t+)([A-Za-z_]\w*) \[", re.M)
_EDGE_STATEMENT = re.compile(r"^(\t+)([A-Za-z_]\w*) -> ([A-Za-z_]\w*) \[", re.M)
_CLUSTER_STATEMENT = re.compile(r"(subgraph (cluster_\w+) \{\s*graph \[)")


def pinned(source: str, layout: Mapping[str, Any]) -> str:
    """``source`` with the positions of ``layout`` (Graphviz's JSON output for a diagram of the
    same graph) written in, drawn by the ``nop2`` engine, which keeps positions as given.

    Node sizes become minimums, so a label never gets clipped. Anything the layout
    does not know (it should know everything) is left to Graphviz, so the worst
    case is an unpinned frame, never a failure.
    """
    count = int(layout.get("_subgraph_cnt", 0))
    objects = layout.get("objects", [])
    subgraphs, nodes = objects[:count], objects[count:]
    by_id = {node["_gvid"]: node for node in nodes}
    node_attrs = {node["name"]: f'pos="{node["pos"]}" width={node["width"]} height={node["height"]} '
                  for node in nodes if "pos" in node}
    edge_attrs: dict[tuple[str, str], list[str]] = {}
    for edge in sorted(layout.get("edges", []), key=lambda e: e["_gvid"]):
        key = (by_id[edge["tail"]]["name"], by_id[edge["head"]]["name"])
        extra = (f'pos="{edge["pos"]}" ' if "pos" in edge else "") + (f'lp="{edge["lp"]}" ' if "lp" in edge else "")
        edge_attrs.setdefault(key, []).append(extra)
    clusters = {sub["name"]: sub for sub in subgraphs}
    seen: dict[tuple[str, str], int] = {}
    pinned_all = True

    def pin_edge(match: re.Match) -> str:
        nonlocal pinned_all
        key = (match.group(2), match.group(3))
        k = seen.get(key, 0)
        seen[key] = k + 1
        known = edge_attrs.get(key, [])
        if k >= len(known):
            pinned_all = False
            return match.group(0)
        return match.group(0) + known[k]

    def pin_node(match: re.Match) -> str:
        return match.group(0) + node_attrs.get(match.group(2), "")

    def pin_cluster(match: re.Match) -> str:
        nonlocal pinned_all
        cluster = clusters.get(match.group(2))
        if cluster is None or "bb" not in cluster:
            pinned_all = False
            return match.group(0)
        return match.group(0) + f'bb="{cluster["bb"]}" ' + (f'lp="{cluster["lp"]}" ' if "lp" in cluster else "")

    result = _EDGE_STATEMENT.sub(pin_edge, source)
    result = _NODE_STATEMENT.sub(pin_node, result)
    result = _CLUSTER_STATEMENT.sub(pin_cluster, result)
    if not pinned_all or "bb" not in layout:
        return source
    return result.replace("{\n", f'{{\n\tgraph [layout=nop2 bb="{layout["bb"]}"]\n', 1)


# -- the page -----------------------------------------------------------------------------

_SVG_PREAMBLE = re.compile(r"^.*?(?=<svg\b)", re.S)
_SVG_COMMENT = re.compile(r"<!--.*?-->", re.S)
# where each node, edge and cluster of Graphviz's SVG starts: the pieces frames share
_SVG_PIECE = re.compile(r'(?=<g id="(?:node|edge|clust)\d+" class=")')
_FONT_SIZE = re.compile(r'<text\b[^>]*\bfont-size="([\d.]+)"')


def _pieces(svg: str) -> list[str]:
    """Graphviz's SVG made fit to sit inside HTML (no XML preamble or comments), cut into the
    pieces of text (the header, then one per node, edge and cluster) it is the concatenation of."""
    svg = _SVG_COMMENT.sub("", _SVG_PREAMBLE.sub("", svg, count=1)).strip()
    return [piece for piece in _SVG_PIECE.split(svg) if piece]


def _script_json(data: Any) -> str:
    """``data`` as JSON that can sit inside a <script> element: no '<', '>' or '&' appear literally."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def typical_text_size(svg: str) -> float:
    """The font size (in the SVG's units, points) most of a Graphviz picture's text is written in: the numbers'.

    >>> typical_text_size('<text font-size="8.00">a</text><text font-size="10.00">1</text>'
    ...                    '<text font-size="10.00">2</text>')
    10.0
    """
    sizes = Counter(float(size) for size in _FONT_SIZE.findall(svg))
    return sizes.most_common(1)[0][0] if sizes else 14.0  # Graphviz's default


def inline_height(layout: Mapping[str, Any]) -> int:
    """Pixels for the player inside a notebook: the controls and the diagram at natural size, within bounds."""
    *_, height = (float(x) for x in str(layout.get("bb", "0,0,0,400")).split(","))
    return int(min(MAX_INLINE_PX, max(MIN_INLINE_PX, HEADER_PX + height * 4 / 3)))


# the diagrams' colours for gradients and tangents, for the captions and phase badges
_COLOURS = f":root {{ --ink: #1a1a1a; --muted: #6b6b6b; --accent: #ff7f0e; --red: {RED}; --tangent: {TANGENT}; }}"
_STYLE = _COLOURS + """
* { box-sizing: border-box; }
html { height: 100%; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       color: var(--ink); background: #fafafa; height: 100%; display: flex; flex-direction: column; }
header { flex: none; background: #fff; border-bottom: 1px solid #ddd; padding: 10px 18px 8px; }
h1 { font-size: 17px; margin: 0 0 6px; }
#controls { display: flex; align-items: center; gap: 6px; flex-wrap: wrap; }
#controls button { font: inherit; min-width: 2.6em; padding: 3px 9px; border: 1px solid #bbb;
                   border-radius: 5px; background: #fff; cursor: pointer; }
#controls button:hover { border-color: var(--accent); }
#controls button:focus-visible, #slider:focus-visible { outline: 2px solid var(--accent); outline-offset: 1px; }
#slider { flex: 1 1 240px; accent-color: var(--accent); }
#counter { font-variant-numeric: tabular-nums; color: var(--muted); min-width: 7em; text-align: right; }
.caption { margin: 8px 0 0; font-weight: 600; }
.detail { margin: 2px 0 0; color: var(--red); font-variant-numeric: tabular-nums; min-height: 1.45em; }
.forward-mode .detail { color: var(--tangent); }
.phase { display: inline-block; font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: .04em;
         padding: 0 6px; margin-right: 6px; border-radius: 4px; color: #fff; background: var(--muted); }
.phase.forward { background: #2b62b8; } .phase.backward { background: var(--red); }
.phase.tangent { background: var(--tangent); }
main { flex: 1 1 auto; min-height: 0; display: flex; flex-direction: column; padding: 12px 18px 18px; }
section.frame { flex: 1 1 auto; min-height: 0; display: flex; flex-direction: column; }
section.frame[hidden] { display: none; }
.diagram { flex: 1 1 auto; min-height: 160px; overflow: auto; }
.diagram svg { display: block; margin: 0 auto; background: #fff; }
.help { color: var(--muted); font-size: 12px; margin: 4px 0 0; }
"""

_SCRIPT = """
(function () {
  "use strict";
  var frames = Array.prototype.slice.call(document.querySelectorAll("section.frame"));
  var slider = document.getElementById("slider");
  var counter = document.getElementById("counter");
  var play = document.getElementById("play");
  var caption = document.getElementById("caption");
  var detail = document.getElementById("detail");
  var interval = Number(document.body.getAttribute("data-interval")) || 1000;
  var accent = document.body.getAttribute("data-highlight");
  var fit = document.getElementById("fit");
  var pictures = JSON.parse(document.getElementById("pictures").textContent);
  var minScale = Number(document.body.getAttribute("data-min-scale")) || 0;
  var current = 0, timer = null;

  function draw(i) {
    return pictures.frames[i].map(function (k) { return pictures.pieces[k]; }).join("");
  }
  function show(i) {
    i = Math.max(0, Math.min(frames.length - 1, i));
    if (i !== current) { frames[current].querySelector(".diagram").innerHTML = ""; }
    frames[current].hidden = true;
    frames[i].querySelector(".diagram").innerHTML = draw(i);
    frames[i].hidden = false;
    current = i;
    slider.value = String(i);
    counter.textContent = "step " + (i + 1) + " / " + frames.length;
    caption.innerHTML = frames[i].querySelector(".caption-source").innerHTML;
    detail.textContent = frames[i].getAttribute("data-detail");
    document.body.setAttribute("data-frame", String(i));
    arrange();
  }
  // Natural size, or with "fit" as small as the window asks but never below minScale (the
  // numbers stay readable): a larger diagram scrolls, with the current step in the middle.
  function arrange() {
    var view = frames[current].querySelector(".diagram");
    var svg = view.querySelector("svg");
    var box = svg && svg.viewBox.baseVal;
    if (!box || !box.width || !box.height) { return; }
    var natural = parseFloat(svg.getAttribute("width")) * 4 / 3 / box.width;  // Graphviz gives points
    var scale = natural;
    if (document.body.classList.contains("fit")) {
      var room = Math.min(view.clientWidth / box.width, view.clientHeight / box.height);
      scale = Math.min(natural, Math.max(minScale, room));
    }
    svg.style.width = box.width * scale + "px";
    svg.style.height = box.height * scale + "px";
    centre(view, frames[current]);
  }
  function around(elements) {
    if (!elements.length) { return null; }
    var r = elements[0].getBoundingClientRect();
    var box = {left: r.left, top: r.top, right: r.right, bottom: r.bottom};
    elements.forEach(function (el) {
      var b = el.getBoundingClientRect();
      box.left = Math.min(box.left, b.left); box.top = Math.min(box.top, b.top);
      box.right = Math.max(box.right, b.right); box.bottom = Math.max(box.bottom, b.bottom);
    });
    return box;
  }
  // Scrolls only the diagram's own box (scrollIntoView would scroll a notebook holding the player too):
  // the whole highlight in the middle when it fits, else its nodes, else its first node.
  function centre(view, frame) {
    var marked = [];
    frame.querySelectorAll('[stroke="' + accent + '"]').forEach(function (el) {
      var owner = el.closest("g.node, g.edge");
      if (owner && marked.indexOf(owner) < 0) { marked.push(owner); }
    });
    var nodes = marked.filter(function (g) { return g.classList.contains("node"); });
    var choices = [marked, nodes, nodes.slice(0, 1), marked.slice(0, 1)].map(around).filter(Boolean);
    if (!choices.length) { return; }
    var pick = choices[choices.length - 1];
    for (var k = 0; k < choices.length; k++) {
      var c = choices[k];
      if (c.right - c.left <= view.clientWidth && c.bottom - c.top <= view.clientHeight) { pick = c; break; }
    }
    var room = view.getBoundingClientRect();
    view.scrollLeft += (pick.left + pick.right) / 2 - (room.left + view.clientLeft + view.clientWidth / 2);
    view.scrollTop += (pick.top + pick.bottom) / 2 - (room.top + view.clientTop + view.clientHeight / 2);
  }
  function toggleFit() {
    var on = document.body.classList.toggle("fit");
    fit.setAttribute("aria-pressed", on ? "true" : "false");
    arrange();
  }
  function stop() {
    if (timer !== null) { clearInterval(timer); timer = null; }
    play.textContent = "\\u25B6 play";
    play.setAttribute("aria-pressed", "false");
  }
  function start() {
    if (current === frames.length - 1) { show(0); }
    timer = setInterval(function () {
      if (current >= frames.length - 1) { stop(); } else { show(current + 1); }
    }, interval);
    play.textContent = "\\u275A\\u275A pause";
    play.setAttribute("aria-pressed", "true");
  }
  function toggle() { if (timer === null) { start(); } else { stop(); } }

  document.getElementById("first").addEventListener("click", function () { stop(); show(0); });
  document.getElementById("prev").addEventListener("click", function () { stop(); show(current - 1); });
  document.getElementById("next").addEventListener("click", function () { stop(); show(current + 1); });
  document.getElementById("last").addEventListener("click", function () { stop(); show(frames.length - 1); });
  play.addEventListener("click", toggle);
  fit.addEventListener("click", toggleFit);
  slider.addEventListener("input", function () { stop(); show(Number(slider.value)); });
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) { return; }
    var key = event.key;
    if (key === "ArrowRight" || key === "ArrowDown") { stop(); show(current + 1); }
    else if (key === "ArrowLeft" || key === "ArrowUp") { stop(); show(current - 1); }
    else if (key === "Home") { stop(); show(0); }
    else if (key === "End") { stop(); show(frames.length - 1); }
    else if (key === " " || key === "k") { toggle(); }
    else if (key === "f") { toggleFit(); }
    else { return; }
    event.preventDefault();
  });
  window.addEventListener("resize", arrange);
  show(0);
})();
"""


def page(heading: str, level: str, every: list[Frame], pictures: list[str], interval: float,
         text_size: float, mode: str = "vjp") -> str:
    """The player's page: ``every`` frame with its picture, the controls and the script; ``mode``
    is the simulated run's ("forward": tangents, coloured as the diagrams colour them)."""
    esc = quoting.html_page
    pieces: dict[str, int] = {}  # each distinct piece of text, numbered in order of first use
    drawn = [[pieces.setdefault(piece, len(pieces)) for piece in _pieces(svg)] for svg in pictures]
    sections = []
    for k, frame in enumerate(every):
        phase = f'<span class="phase {esc(frame.phase)}">{esc(frame.phase)}</span>'
        sections.append(
            f'<section class="frame" id="frame-{k}" data-phase="{esc(frame.phase)}" data-current="{esc(frame.current)}"'
            f' data-detail="{esc(frame.detail)}"{"" if k == 0 else " hidden"}>'
            f'<template class="caption-source">{phase}{esc(frame.caption)}</template>'
            f'<div class="diagram">{"".join(_pieces(pictures[0])) if k == 0 else ""}</div></section>'
        )
    data = _script_json({"pieces": list(pieces), "frames": drawn})
    count = len(every)
    colours = ("blue: tangents d(node)/d(direction), pushed forward along each edge" if mode == "forward" else
               "red: gradients")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(heading)}</title>
<style>{_STYLE}</style>
</head>
<body class="{"fit forward-mode" if mode == "forward" else "fit"}" data-interval="{int(round(interval * 1000))}" data-level="{esc(level)}" data-frame="0"
 data-highlight="{esc(PALETTE[0])}" data-min-scale="{READABLE_PX / text_size:.4f}">
<header>
<h1>{esc(heading)}</h1>
<div id="controls" role="toolbar" aria-label="player">
<button id="first" type="button" title="First step (Home)" aria-label="first step">|\u25c0</button>
<button id="prev" type="button" title="Step back (\u2190)" aria-label="step back">\u25c0</button>
<button id="play" type="button" title="Play / pause (space)" aria-pressed="false">\u25b6 play</button>
<button id="next" type="button" title="Step forward (\u2192)" aria-label="step forward">\u25b6</button>
<button id="last" type="button" title="Last step (End)" aria-label="last step">\u25b6|</button>
<input id="slider" type="range" min="0" max="{count - 1}" value="0" step="1" aria-label="step">
<span id="counter">step 1 / {count}</span>
<button id="fit" type="button" title="Fit the diagram to the window, as far as its numbers stay readable, or show it at natural size (f)"
 aria-pressed="true">fit</button>
</div>
<p class="caption" id="caption"></p>
<p class="detail" id="detail"></p>
<p class="help">\u2190 \u2192 step, space play/pause, Home/End first/last, f fit to the window or natural size. Black: forward values; {colours};
highlighted: the current step.</p>
</header>
<main>
{chr(10).join(sections)}
</main>
<script type="application/json" id="pictures">{data}</script>
<script>{_SCRIPT}</script>
</body>
</html>
"""
