"""The portal's SVG charts (portal/charts.py): hostile text escaped, nothing a strict
Content-Security-Policy blocks, honest empty charts, marks in proportion to their values."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from cortex_change.portal import charts

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert('x')</script>\" onload=\"alert(1)\" & 'q'"
WEEKS = ["2026-01-05", "2026-01-12", "2026-01-19"]


def parse(svg: str) -> ET.Element:
    """The chart as XML (it must be well-formed), after the checks every chart passes."""
    assert not re.search(r"\sstyle\s*=", svg), "a style attribute: blocked without 'unsafe-inline'"
    assert "<style" not in svg
    assert "<script" not in svg.lower()
    assert "javascript:" not in svg.lower()
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert re.fullmatch(r"0 0 \d+ \d+(\.\d+)?", root.get("viewBox", ""))
    assert "width" not in root.attrib and "height" not in root.attrib
    title_id, desc_id = root.get("aria-labelledby", "").split()
    assert root.find(f"{SVG}title").get("id") == title_id  # type: ignore[union-attr]
    assert root.find(f"{SVG}desc").get("id") == desc_id  # type: ignore[union-attr]
    for element in root.iter():
        assert not any(name.startswith("on") for name in element.attrib), element.attrib
    return root


def texts(root: ET.Element) -> list[str]:
    return [t for element in root.iter() for t in (element.text, element.tail) if t and t.strip()]


def marks(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    """The `tag` elements inside the group of class `cls` (a series)."""
    groups = [g for g in root.iter(f"{SVG}g") if cls in g.get("class", "").split()]
    return [m for g in groups for m in g.iter(f"{SVG}{tag}")]


def test_hostile_text_is_escaped_everywhere() -> None:
    outputs = [
        charts.stacked_bars(HOSTILE, [HOSTILE, "b"], {HOSTILE: [1, 2], "ok": [3, 0]}, ident=HOSTILE),
        charts.lines(HOSTILE, [HOSTILE, "b"], {HOSTILE: [1.5, None]}, unit=HOSTILE),
        charts.bars(HOSTILE, [(HOSTILE, 3), ("ok", 1)]),
        charts.bars(HOSTILE, []),
    ]
    for svg in outputs:
        root = parse(svg)
        assert "&lt;script&gt;" in svg
        assert 'onload="' not in svg
        assert root.find(f"{SVG}title").text == HOSTILE  # type: ignore[union-attr]
        assert HOSTILE in texts(root) or any(HOSTILE in t for t in texts(root))
        for element in root.iter():  # classes and ids: CSS identifiers only
            for name in ("class", "id"):
                assert re.fullmatch(r"[a-z0-9 _-]*", element.get(name, "")), element.get(name)


def test_stacked_bars_scale_stack_and_label() -> None:
    svg = charts.stacked_bars("Outcomes", WEEKS, {"successful": [2, 4, 1], "failed": [0, 2, 1]})
    root = parse(svg)
    ok = marks(root, "rect", "series-0")
    failed = marks(root, "rect", "series-1")
    assert len(ok) == 3 and len(failed) == 2  # a zero draws nothing
    heights = [float(r.get("height", "0")) for r in ok]
    assert heights[1] == pytest.approx(2 * heights[0], abs=0.2)
    assert heights[0] == pytest.approx(2 * heights[2], abs=0.2)
    # week 2's failed bar sits on top of its successful bar, as tall as 2 of them
    assert float(failed[0].get("y", "0")) + float(failed[0].get("height", "0")) == pytest.approx(
        float(ok[1].get("y", "0")), abs=0.2
    )
    assert float(failed[0].get("height", "0")) == pytest.approx(heights[1] / 2, abs=0.2)
    assert [r.find(f"{SVG}title").text for r in ok] == [  # type: ignore[union-attr]
        "2026-01-05: successful 2",
        "2026-01-12: successful 4",
        "2026-01-19: successful 1",
    ]
    legend = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "chart-legend")
    assert [t.text for t in legend.iter(f"{SVG}text")] == ["successful", "failed"]
    assert "key-successful" in svg and "key-failed" in svg
    assert "Totals: successful 7, failed 3. Highest: 2026-01-12 with 6." in (
        root.find(f"{SVG}desc").text or ""  # type: ignore[union-attr]
    )


def test_lines_scale_leave_gaps_and_carry_units() -> None:
    root = parse(charts.lines("MTTA", WEEKS, {"MTTA": [1.0, None, 3.0], "MTTI": [2.0, 2.0, 2.0]}, "h"))
    dots = marks(root, "circle", "series-0")
    assert len(dots) == 2  # None is no point
    (path,) = marks(root, "path", "series-0")
    assert path.get("d", "").count("M") == 2 and "L" not in path.get("d", "")  # the gap splits it
    (flat,) = marks(root, "path", "series-1")
    assert flat.get("d", "").count("M") == 1 and flat.get("d", "").count("L") == 2
    assert flat.get("stroke-dasharray")  # told apart by more than colour
    zero = next(float(t.get("y", "0")) - 4 for t in root.iter(f"{SVG}text") if t.text == "0 h")
    y1, y3 = (float(c.get("cy", "0")) for c in dots)
    assert zero - y3 == pytest.approx(3 * (zero - y1), abs=0.3)
    assert "3 h" in texts(root)
    assert [c.find(f"{SVG}title").text for c in dots] == [  # type: ignore[union-attr]
        "2026-01-05: MTTA 1 h",
        "2026-01-19: MTTA 3 h",
    ]


def test_bars_scale_and_long_labels_are_cut() -> None:
    long = "a very long risk level name that would not fit beside its bar"
    root = parse(charts.bars("Risk", [("low", 40), ("high", 10), (long, 0)]))
    rects = marks(root, "rect", "series-0")
    widths = [float(r.get("width", "0")) for r in rects]
    assert widths[0] == pytest.approx(4 * widths[1], abs=0.2)
    assert widths[2] == 0
    assert [r.find(f"{SVG}title").text for r in rects][2] == f"{long}: 0"  # type: ignore[union-attr]
    shown = texts(root)
    assert long not in shown and any(t.endswith("…") and long.startswith(t[:-1]) for t in shown)
    assert [t for t in shown if t.isdigit()] == ["40", "10", "0"]


@pytest.mark.parametrize(
    "svg",
    [
        charts.stacked_bars("Outcomes", [], {}),
        charts.stacked_bars("Outcomes", WEEKS, {"successful": [0, 0, 0]}),
        charts.lines("MTTA", WEEKS, {"MTTA": [None, None, None]}, "h"),
        charts.lines("MTTA", WEEKS, {"MTTA": [float("nan"), float("inf"), None]}, "h"),
        charts.lines("MTTA", [], {}),
        charts.bars("Risk", []),
        charts.bars("Risk", [("low", 0)]),
    ],
)
def test_empty_data_says_so(svg: str) -> None:
    root = parse(svg)
    assert "No data for this period" in texts(root)
    assert root.find(f"{SVG}desc").text == "No data for this period"  # type: ignore[union-attr]
    assert not list(root.iter(f"{SVG}rect")) and not list(root.iter(f"{SVG}path"))


def test_all_zero_lines_are_data_not_nothing() -> None:
    root = parse(charts.lines("Rate", WEEKS, {"rate": [0.0, 0.0, 0.0]}, "%"))
    assert len(marks(root, "circle", "series-0")) == 3
    assert "0%" in texts(root)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="2 values for 3 labels"):
        charts.stacked_bars("x", WEEKS, {"a": [1, 2]})
    with pytest.raises(ValueError, match="2 values for 3 labels"):
        charts.lines("x", WEEKS, {"a": [1.0, 2.0]})
    with pytest.raises(ValueError, match="negative"):
        charts.stacked_bars("x", WEEKS, {"a": [1, -2, 3]})
    with pytest.raises(ValueError, match="negative"):
        charts.bars("x", [("a", -1)])


def test_ids_differ_between_charts_and_follow_ident() -> None:
    one, two = (parse(charts.bars(title, [("a", 1)])) for title in ("MTTA", "MTTI"))
    assert one.get("aria-labelledby") != two.get("aria-labelledby")
    named = parse(charts.bars("MTTA", [("a", 1)], ident="Dashboard MTTA"))
    assert named.get("aria-labelledby") == "chart-dashboard-mtta-title chart-dashboard-mtta-desc"


def _luminance(colour: str) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(int(colour[i : i + 2], 16) / 255) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@pytest.mark.parametrize("colour", [*charts.PALETTE, charts.TEXT, charts.MUTED])
def test_colours_meet_wcag_aa_against_white(colour: str) -> None:
    assert 1.05 / (_luminance(colour) + 0.05) >= 4.5


def test_numbers() -> None:
    assert charts.number(3.0, "h") == "3 h"
    assert charts.number(2.5, "%") == "2.5%"
    assert charts.number(1.234) == "1.23"
    assert charts.number(12) == "12"


def test_small_values_get_distinct_tick_labels_and_room_for_them() -> None:
    svg = charts.lines("MTTI", ["a", "b"], {"MTTI": [0.0, 0.02]}, "min")
    ticks = re.findall(r'text-anchor="end">([^<]*)<', svg)
    assert ticks == ["0 min", "0.005 min", "0.01 min", "0.015 min", "0.02 min"]
    x = float(re.findall(r'<text x="([0-9.]+)"[^>]*text-anchor="end"', svg)[0])
    assert x >= len("0.015 min") * charts._CHAR  # the widest label fits left of the axis
