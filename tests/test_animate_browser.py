"""The animation in a real browser: Debian's headless Chromium driven by playwright.

Opens the HTML file dp.animate writes, steps through it with the keyboard, the
buttons and the slider, checks that the frame and the highlighted element change,
that no console error appears and nothing is fetched from the network, and that a
screenshot is not blank.
"""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import dagprop as dp
from dagprop.drawing.style import PALETTE

import notes_mlp
from helpers import ci

if ci():  # in CI a missing test requirement is a failure, not a skip
    import playwright.sync_api as sync_api
else:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test requirement: pip install -e '.[test]'")

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ACCENT = PALETTE[0]

if CHROMIUM is None:
    if ci():
        raise RuntimeError("Chromium is missing; scripts/setup.sh --test installs it")
    pytest.skip("Chromium is not installed (scripts/setup.sh --test installs it)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def mlp_html(tmp_path_factory):
    g, _ = notes_mlp.build()
    return dp.animate(g, "L", tmp_path_factory.mktemp("anim") / "mlp.html", interval=0.05)


@pytest.fixture(scope="module")
def element_html(tmp_path_factory):
    g, _ = notes_mlp.build()
    return dp.animate(g, "L", tmp_path_factory.mktemp("anim") / "mlp_elements.html", level="element")


class Page:
    """A page opened on an animation, recording console errors and network requests."""

    def __init__(self, browser, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.route("**/*", self._route)
        self.page.goto(path.resolve().as_uri())

    def _route(self, route):
        url = route.request.url
        if not url.startswith("file://"):
            self.requests.append(url)
            route.abort()
        else:
            route.continue_()

    def frame(self) -> int:
        return int(self.page.get_attribute("body", "data-frame"))

    def visible(self) -> list[str]:
        return self.page.eval_on_selector_all("section.frame", "els => els.filter(e => !e.hidden).map(e => e.id)")

    def highlighted(self) -> list[str]:
        """Titles (Graphviz ids) of the nodes and edges drawn in the highlight colour in the visible frame."""
        return self.page.evaluate(
            """accent => {
                const frame = Array.from(document.querySelectorAll("section.frame")).find(e => !e.hidden);
                const marked = Array.from(frame.querySelectorAll('[stroke="' + accent + '"]'));
                const owners = marked.map(el => el.closest("g.node, g.edge")).filter(Boolean);
                return Array.from(new Set(owners.map(g => g.querySelector("title").textContent)));
            }""", ACCENT)

    def caption(self) -> str:
        return self.page.inner_text("#caption")

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def open_page(browser):
    pages = []

    def opener(path: Path) -> Page:
        page = Page(browser, path)
        pages.append(page)
        return page

    yield opener
    for page in pages:
        page.close()


def test_opens_on_the_first_frame_without_errors_or_network(open_page, mlp_html):
    page = open_page(mlp_html)
    count = page.page.eval_on_selector_all("section.frame", "els => els.length")
    g, _ = notes_mlp.build()
    steps = list(dp.simulate(g, "L"))
    assert count == len(steps) + 3  # start, backward seed, done
    assert page.frame() == 0 and page.visible() == ["frame-0"]
    assert page.page.inner_text("#counter") == f"step 1 / {count}"
    assert page.caption().startswith("START")
    assert page.errors == [] and page.requests == []


def test_arrow_keys_step_and_the_highlight_follows(open_page, mlp_html):
    page = open_page(mlp_html)
    seen_highlights = []
    seen_captions = []
    for expected in range(1, 8):
        page.page.keyboard.press("ArrowRight")
        assert page.frame() == expected and page.visible() == [f"frame-{expected}"]
        seen_highlights.append(tuple(page.highlighted()))
        seen_captions.append(page.caption())
    assert all(seen_highlights), "every step highlights something"
    assert all(a != b for a, b in zip(seen_highlights, seen_highlights[1:])), seen_highlights
    assert all(a != b for a, b in zip(seen_captions, seen_captions[1:]))
    assert "Forward: a1 = matmul(W1, x)" in seen_captions[0]
    page.page.keyboard.press("ArrowLeft")
    assert page.frame() == 6
    assert tuple(page.highlighted()) == seen_highlights[5]  # frame k is seen_highlights[k - 1]
    page.page.keyboard.press("End")
    last = page.frame()
    page.page.keyboard.press("ArrowRight")  # past the end: stays
    assert page.frame() == last and page.caption().endswith("Done: every gradient is known")
    page.page.keyboard.press("Home")
    assert page.frame() == 0
    assert page.errors == []


def test_buttons_slider_and_play(open_page, mlp_html):
    page = open_page(mlp_html)
    page.page.click("#next")
    page.page.click("#next")
    assert page.frame() == 2
    page.page.click("#prev")
    assert page.frame() == 1
    page.page.click("#last")
    last = page.frame()
    assert last > 10
    page.page.click("#first")
    assert page.frame() == 0
    page.page.eval_on_selector("#slider", "(s) => { s.value = '9'; s.dispatchEvent(new Event('input')); }")
    assert page.frame() == 9
    page.page.focus("#slider")
    page.page.keyboard.press("ArrowRight")  # one step, not two (the slider's own key handling is replaced)
    assert page.frame() == 10
    page.page.click("#first")
    page.page.click("#play")
    assert page.page.inner_text("#play").endswith("pause")
    page.page.wait_for_function("() => Number(document.body.dataset.frame) >= 3", timeout=5000)
    page.page.click("#play")
    stopped = page.frame()
    page.page.wait_for_timeout(300)
    assert page.frame() == stopped and page.page.inner_text("#play").endswith("play")
    page.page.keyboard.press(" ")
    page.page.wait_for_function(f"() => Number(document.body.dataset.frame) > {stopped}", timeout=5000)
    page.page.keyboard.press(" ")
    assert page.errors == []


def test_running_sum_appears_when_a_node_gets_a_second_contribution(open_page, tmp_path):
    g = dp.Graph()
    x = g.param("x", 3.0)
    loss = g.op("add", g.op("mul", x, x, name="y"), x, name="L")
    page = open_page(dp.animate(g, loss, tmp_path / "sum.html"))
    details = []
    for _ in range(8):
        page.page.keyboard.press("ArrowRight")
        details.append(page.page.inner_text("#detail"))
    assert "x.grad = 1 + 3 = 4, a running sum of 2 contributions" in details
    assert "x.grad = 1 + 3 + 3 = 7, a running sum of 3 contributions" in details
    # and the diagram draws the sum at x: the renderer's "via ..." captions
    assert "via y" in page.page.inner_text("section.frame:not([hidden])")
    assert page.errors == []


def test_element_level_highlights_the_elements_of_the_step(open_page, element_html):
    page = open_page(element_html)
    page.page.keyboard.press("ArrowRight")  # forward a1: its four elements and their in-edges
    forward_a1 = page.highlighted()
    page.page.keyboard.press("End")
    page.page.keyboard.press("ArrowLeft")  # the last backward step: a1 -> W1, sixteen weights
    backward_w1 = page.highlighted()
    assert len(forward_a1) > 4 and len(backward_w1) > 16 and set(forward_a1) != set(backward_w1)
    assert "W1" in page.caption()
    assert page.errors == [] and page.requests == []


def test_hostile_names_show_as_text(open_page, tmp_path):
    g = dp.Graph()
    x = g.param('<img src=x onerror="alert(1)">', [1.0, 2.0])
    loss = g.op("sum", g.op("mul", x, x, name="</section><script>alert(2)</script>"), name="L&amp;")
    page = open_page(dp.animate(g, loss, tmp_path / "hostile.html", title="<b>title</b>"))
    page.page.keyboard.press("End")
    assert page.dialogs == [] and page.errors == [] and page.requests == []
    assert page.page.inner_text("h1") == "<b>title</b>"
    page.page.keyboard.press("Home")
    assert '<img src=x onerror="alert(1)">' in page.caption()
    # start, 2 forward steps, the seed, 3 backward steps (x feeds both slots of mul), done
    assert page.page.eval_on_selector_all("section.frame", "els => els.length") == 8
    page.page.keyboard.press("ArrowRight")
    assert "</section><script>alert(2)</script>" in page.caption()


def test_screenshot_is_not_blank(open_page, mlp_html, tmp_path):
    page = open_page(mlp_html)
    for _ in range(12):
        page.page.keyboard.press("ArrowRight")
    png = page.page.screenshot(path=str(tmp_path / "frame.png"))
    pixels = decode_png(png)
    assert pixels.shape[0] >= 800 and pixels.shape[1] >= 1200
    colours = {tuple(p) for p in pixels.reshape(-1, pixels.shape[2])[::97]}
    assert len(colours) > 20, "a blank or single-colour screenshot"
    background = np.array([250, 250, 250])[: pixels.shape[2]]
    drawn = np.abs(pixels[..., :3].astype(int) - background[:3]).sum(axis=2) > 30
    assert drawn.mean() > 0.02
    # the highlight colour is really on screen
    accent = np.array([int(ACCENT[i:i + 2], 16) for i in (1, 3, 5)])
    assert (np.abs(pixels[..., :3].astype(int) - accent).sum(axis=2) < 40).sum() > 50


def decode_png(data: bytes) -> np.ndarray:
    """A minimal PNG decoder (8-bit RGB or RGBA, not interlaced): enough for Chromium's screenshots."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat, header = 8, b"", None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0
    channels = 3 if colour_type == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    rows = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=start + 1).astype(np.int32)
        if kind == 0:
            current = line
        elif kind == 2:
            current = (line + previous) % 256
        else:
            current = np.zeros(stride, dtype=np.int32)
            for x in range(stride):
                left = current[x - channels] if x >= channels else 0
                up = previous[x]
                if kind == 1:
                    predictor = left
                elif kind == 3:
                    predictor = (left + up) // 2
                else:
                    upper_left = previous[x - channels] if x >= channels else 0
                    estimate = left + up - upper_left
                    pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - upper_left)
                    predictor = left if pa <= pb and pa <= pc else up if pb <= pc else upper_left
                current[x] = (line[x] + predictor) % 256
        rows[y] = current
        previous = current
    return rows.reshape(height, width, channels)


def test_the_animate_command_writes_a_playable_file(open_page, tmp_path, capsys):
    from dagprop.cli import main

    g, _ = notes_mlp.build()
    dp.save(g, tmp_path / "mlp.json")
    out = tmp_path / "run.html"
    assert main(["animate", str(tmp_path / "mlp.json"), "-o", str(out), "--loss", "L", "--level", "element"]) == 0
    assert "wrote" in capsys.readouterr().out
    page = open_page(out)
    page.page.keyboard.press("ArrowRight")
    assert page.frame() == 1 and page.highlighted() and page.errors == []
    assert main(["animate", str(tmp_path / "mlp.json"), "-o", str(out), "--loss", "nope"]) == 1
    assert "no node named 'nope'" in capsys.readouterr().err
    assert main(["animate", str(tmp_path / "mlp.json"), "-o", str(tmp_path / "circuit.html"), "--expand", "softmax"]) == 0
    assert "yhat.exp_1" in (tmp_path / "circuit.html").read_text()


def test_a_large_chain_plays_folded_with_the_summary_highlighted(open_page, tmp_path):
    g = dp.Graph()
    h = g.param("x", 0.5)
    for _ in range(298):
        h = h.tanh()
    loss = g.op("sum", h, name="L")
    with pytest.warns(dp.errors.LargeGraphWarning, match="playing a collapsed view"):
        path = dp.animate(g, loss, tmp_path / "chain.html")
    page = open_page(path)
    page.page.keyboard.press("ArrowRight")  # forward tanh_1, inside the summarised chain
    assert page.frame() == 1 and page.highlighted() and "tanh_1 = tanh(x)" in page.caption()
    assert "ops summarised" in page.page.inner_text("section.frame:not([hidden])")
    page.page.keyboard.press("End")
    page.page.keyboard.press("ArrowLeft")
    assert page.frame() == 2 * 299 + 1 and "tanh_1 sends" in page.caption() and page.highlighted()
    # only the frame shown holds a picture: the others are drawn from the shared pieces when shown
    assert page.page.eval_on_selector_all("section.frame svg", "els => els.length") == 1
    assert page.errors == [] and page.requests == []


# -- readable at open and with "fit", the current step in view --------------------------------

READABLE_PX = 9  # the numbers' text (10 pt in Graphviz's units): never smaller than this on screen
SMALLEST_PX = 7  # the smallest captions (8 pt: "value", "grad", slot names)


@pytest.fixture(scope="module")
def attention_html(tmp_path_factory):
    from dagprop.demo import build_attention

    g, loss = build_attention()
    return dp.animate(g, loss, tmp_path_factory.mktemp("anim") / "attention.html")


def view_of_step(page: Page) -> dict:
    """How the visible frame is drawn: its scale (CSS pixels per point), the rendered size of each
    highlighted node's texts, and whether each highlighted node lies inside the diagram's visible box."""
    return page.page.evaluate(
        """accent => {
            const frame = Array.from(document.querySelectorAll("section.frame")).find(e => !e.hidden);
            const view = frame.querySelector(".diagram"), svg = view.querySelector("svg");
            const box = view.getBoundingClientRect();
            const left = Math.max(box.left + view.clientLeft, 0), top = Math.max(box.top + view.clientTop, 0);
            const right = Math.min(left + view.clientWidth, innerWidth), bottom = Math.min(top + view.clientHeight, innerHeight);
            const marked = Array.from(frame.querySelectorAll('[stroke="' + accent + '"]'))
                .map(el => el.closest("g.node")).filter(Boolean);
            const nodes = Array.from(new Set(marked)).map(g => {
                const r = g.getBoundingClientRect();
                return {name: g.querySelector("title").textContent,
                        inside: r.left >= left - 1 && r.right <= right + 1 && r.top >= top - 1 && r.bottom <= bottom + 1,
                        texts: Array.from(g.querySelectorAll("text")).map(t =>
                            [Number(t.getAttribute("font-size")), Number(t.getAttribute("font-size")) * t.getScreenCTM().a])};
            });
            return {scale: svg.getBoundingClientRect().width / svg.viewBox.baseVal.width, nodes: nodes,
                    fit: document.body.classList.contains("fit"), whole: svg.getBoundingClientRect().width <= view.clientWidth};
        }""", ACCENT)


def assert_readable_and_in_view(drawn: dict, first_only: bool = False) -> None:
    nodes = drawn["nodes"][:1] if first_only else drawn["nodes"]
    assert nodes, "the step highlights a node"
    for node in nodes:
        assert node["inside"], f"{node['name']} is scrolled out of view: {drawn}"
        for points, pixels in node["texts"]:
            assert pixels >= (READABLE_PX if points >= 10 else SMALLEST_PX) - 0.01, (node["name"], points, pixels)


@pytest.mark.parametrize("size", ["small", "attention"])
def test_opens_readable_with_the_current_step_in_view_and_fit_never_shrinks_text_below_readable(
        open_page, attention_html, tmp_path, size):
    if size == "small":
        g = dp.Graph()
        x = g.param("x", 3.0)
        path = dp.animate(g, g.op("add", g.op("mul", x, x, name="y"), x, name="L"), tmp_path / "small.html")
    else:
        path = attention_html
    page = open_page(path)
    natural = 4 / 3  # Graphviz draws in points
    opened = view_of_step(page)
    assert opened["fit"] and page.page.get_attribute("#fit", "aria-pressed") == "true"
    assert_readable_and_in_view(opened, first_only=True)  # the start highlights every leaf: the first is in view
    page.page.keyboard.press("End")
    for _ in range(3):
        page.page.keyboard.press("ArrowLeft")
    assert "Backward:" in page.caption()
    fitted = view_of_step(page)
    assert_readable_and_in_view(fitted)
    page.page.keyboard.press("f")
    actual = view_of_step(page)
    assert not actual["fit"] and page.page.get_attribute("#fit", "aria-pressed") == "false"
    assert actual["scale"] == pytest.approx(natural, rel=1e-3)
    assert_readable_and_in_view(actual)
    if size == "small":  # fit never enlarges: the small graph is whole, at natural size
        assert fitted["scale"] == pytest.approx(natural, rel=1e-3) and fitted["whole"]
    else:  # 3335 pt wide: fit shrinks it as far as the numbers stay readable (10 pt at 9 px), then scrolls
        assert fitted["scale"] == pytest.approx(READABLE_PX / 10, rel=1e-3) and not fitted["whole"]
    page.page.keyboard.press("f")
    page.page.set_viewport_size({"width": 800, "height": 600})  # a smaller window: arranged again
    assert_readable_and_in_view(view_of_step(page))
    assert page.errors == [] and page.requests == []


def test_inline_players_in_one_page_play_apart_in_their_iframes(open_page, tmp_path):
    g = dp.Graph()
    x = g.param("x", 3.0)
    loss = g.op("add", g.op("mul", x, x, name="y"), x, name="L")
    player = dp.animate(g, loss)  # without a path: for a notebook
    notebook = tmp_path / "notebook.html"  # two output cells showing it, as a notebook page would
    notebook.write_text(f"<!DOCTYPE html><html><body><div id='slider'>the notebook's own</div>"
                        f"{player._repr_html_()}{player._repr_html_()}</body></html>", encoding="utf-8")
    page = open_page(notebook)
    page.page.wait_for_function("() => document.querySelectorAll('iframe').length === 2")
    inline = [frame for frame in page.page.frames if frame != page.page.main_frame]
    assert len(inline) == 2
    for frame in inline:
        frame.wait_for_selector("section.frame:not([hidden]) svg")
    inline[0].click("#next")
    inline[0].click("#next")
    assert [frame.get_attribute("body", "data-frame") for frame in inline] == ["2", "0"]
    assert "Forward: L = add(y, x) = 12" in inline[0].inner_text("#caption")
    assert page.page.inner_text("#slider") == "the notebook's own"
    assert player.frames == inline[1].eval_on_selector_all("section.frame", "els => els.length") == 9
    assert page.errors == [] and page.requests == []


def test_forward_mode_plays_the_tangents_in_their_own_colour(open_page, tmp_path):
    from dagprop.drawing.style import TANGENT

    g = dp.Graph()
    x = g.param("x", [1.0, -0.5])
    y = g.op("add", g.op("mul", x, g.param("w", [2.0, 3.0]), name="m"), x, name="y")
    g.op("sum", g.op("tanh", y, name="t"), name="L")
    page = open_page(dp.animate(g, "L", tmp_path / "forward.html", mode="forward", tangents={x: [1.0, 1.0]}))
    colours = []
    for _ in range(8):  # through the forward steps, to the second tangent pushed into y
        page.page.keyboard.press("ArrowRight")
        colours.append(page.page.evaluate(
            "t => document.querySelectorAll('section.frame:not([hidden]) text[fill=\"' + t + '\"]').length", TANGENT))
    assert colours[:4] == [0] * 4 and 0 < colours[4] < colours[-1]  # none while forward, then they grow
    assert page.caption().endswith("Tangent: x pushes [1, 1] forward into y (input b of add)")
    assert page.page.inner_text("#detail") == "y.tangent = [2, 3] + [1, 1] = [3, 4], a running sum of 2 contributions"
    detail_colour = page.page.eval_on_selector("#detail", "e => getComputedStyle(e).color")
    assert detail_colour == "rgb({}, {}, {})".format(*(int(TANGENT[k:k + 2], 16) for k in (1, 3, 5)))
    assert page.errors == [] and page.requests == []
