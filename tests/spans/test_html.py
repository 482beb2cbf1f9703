"""`--html FILE` rendered by headless Chromium (Debian's `chromium`): the waterfall is drawn and the
N+1 run is highlighted."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser

import pytest

from otel_sqla_doctor.spans import analyze_files
from otel_sqla_doctor.spans.reporters.html import render_html

N_PLUS_ONE_ORANGE = (0xE8, 0x59, 0x0C)  # --n1 in the page's CSS
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def chromium():
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    return binary


@pytest.fixture(scope="module")
def page(tmp_path_factory, fixtures):
    report = analyze_files([fixtures / "n_plus_one.otlp.jsonl", fixtures / "unended.otlp.jsonl"])
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    return path


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def _dump_dom(chromium, path) -> str:
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=90
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_page_is_self_contained(page):
    text = page.read_text()
    parser = _Elements()
    parser.feed(text)
    linked = [(tag, a) for tag, a in parser.elements if a.get("src") or a.get("href") or tag in ("link", "iframe", "img")]
    assert linked == []
    assert "default-src 'none'" in text  # the browser refuses any network fetch
    assert not re.search(r"https?://(?!docs\.sqlalchemy|opentelemetry)", text.split("<script", 1)[0])


def test_chromium_renders_the_waterfall_with_the_run_highlighted(chromium, page):
    dom = _dump_dom(chromium, page)
    parser = _Elements()
    parser.feed(dom)
    body = next(a for tag, a in parser.elements if tag == "body")
    assert body.get("data-rendered") == "true"  # the inline script ran to the end
    waterfalls = [a for tag, a in parser.elements if a.get("data-testid") == "waterfall"]
    assert len(waterfalls) == 3
    runs = [a for tag, a in parser.elements if a.get("data-testid") == "n-plus-one-run"]
    assert [r["data-count"] for r in runs] == ["12"]
    highlighted = [a for tag, a in parser.elements if "n-plus-one" in a.get("class", "").split()]
    assert len(highlighted) == 12 and all("OSD601" in a["data-codes"] for a in highlighted)
    unended = [a for tag, a in parser.elements if "unended" in a.get("class", "").split()]
    assert len(unended) == 3
    assert "N+1 run: 12 × SELECT n1_books.id" in dom


def _png_pixels(data: bytes):
    """Decode an 8-bit RGB/RGBA, non-interlaced PNG (what Chromium writes) with the stdlib."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and colour in (2, 6) and interlace == 0
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    channels = 4 if colour == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    pixels = []
    for y in range(height):
        row_start = y * (stride + 1)
        filter_type = raw[row_start]
        row = bytearray(raw[row_start + 1 : row_start + 1 + stride])
        for x in range(stride):
            left = row[x - channels] if x >= channels else 0
            up = previous[x]
            upper_left = previous[x - channels] if x >= channels else 0
            if filter_type == 1:
                row[x] = (row[x] + left) & 0xFF
            elif filter_type == 2:
                row[x] = (row[x] + up) & 0xFF
            elif filter_type == 3:
                row[x] = (row[x] + (left + up) // 2) & 0xFF
            elif filter_type == 4:
                p = left + up - upper_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - upper_left)
                row[x] = (row[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else upper_left)) & 0xFF
        pixels.append(row)
        previous = row
    return width, height, channels, pixels


def test_screenshot_shows_the_highlighted_bars(chromium, page, tmp_path):
    shot = tmp_path / "shot.png"
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, "--window-size=1000,900", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    width, height, channels, pixels = _png_pixels(shot.read_bytes())

    def orange(row, x):
        i = x * channels
        return all(abs(row[i + c] - N_PLUS_ONE_ORANGE[c]) < 12 for c in range(3))

    def has_bar(row):  # 8+ orange pixels side by side in the timeline lanes (right of the labels)
        run = 0
        for x in range(int(width * 0.4), width):
            run = run + 1 if orange(row, x) else 0
            if run >= 8:
                return True
        return False

    bar_rows = [y for y, row in enumerate(pixels) if has_bar(row)]
    bands = sum(1 for i, y in enumerate(bar_rows) if i == 0 or bar_rows[i - 1] != y - 1)
    assert bands == 12  # one orange bar per lazy load
