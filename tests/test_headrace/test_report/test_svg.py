"""Unit tests of the inline SVG charts."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from headrace.report import svg

NS = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)


def test_hbar_draws_one_bar_per_item_scaled_to_the_largest() -> None:
    root = parse(svg.hbar("x", [("a", 10.0), ("b", 5.0), ("c", 0.0)], width=500, label_width=100))
    assert root.get("data-plot") == "x" and root.get("data-points") == "3"
    widths = [float(r.get("width", 0)) for r in root.iter(f"{NS}rect")]
    assert widths[0] == 500 - 100 - 70
    assert widths[1] == widths[0] / 2
    assert widths[2] == 0.0
    texts = "".join(root.itertext())
    assert "a" in texts and "10" in texts


def test_labels_are_escaped() -> None:
    markup = svg.hbar("x", [("<script>alert(1)</script>", 1.0)])
    assert "<script>" not in markup
    parse(markup)


def test_empty_chart_still_draws_a_box_with_the_reason() -> None:
    root = parse(svg.hbar("nothing", []))
    assert root.get("data-points") == "0"
    assert "no data" in "".join(root.itertext())
    assert root.find(f"{NS}rect") is not None


def test_histogram_counts_every_value_and_draws_thresholds() -> None:
    values = [0.1, 0.2, 0.2, 0.3, 0.9]
    markup = svg.histogram("h", values, bins=10, thresholds=[("max", 0.5)], second=[0.8, 0.85], x_label="ratio")
    root = parse(markup)
    assert root.get("data-points") == "7"
    counts = [int(t.text or 0) for r in root.iter(f"{NS}rect") for t in r.iter(f"{NS}title")]
    assert sum(counts) == 7
    lines = [ln for ln in root.iter(f"{NS}line") if ln.get("stroke-dasharray")]
    assert len(lines) == 1
    x = float(lines[0].get("x1", 0))
    left, plot_w = 48, 640 - 48 - 12
    lo, hi = 0.1, 0.9
    assert abs(x - (left + (0.5 - lo) / (hi - lo) * plot_w)) < 0.2
    assert "max 0.5" in "".join(root.itertext())


def test_histogram_log_scale_ignores_non_positive_values() -> None:
    root = parse(svg.histogram("h", [0, -1, 10, 100, 1000], log_x=True))
    assert root.get("data-points") == "3"
    assert "log scale" in "".join(root.itertext())


def test_histogram_of_one_repeated_value() -> None:
    root = parse(svg.histogram("h", [5.0, 5.0, 5.0]))
    counts = [int(t.text or 0) for r in root.iter(f"{NS}rect") for t in r.iter(f"{NS}title")]
    assert counts == [3]


def test_histogram_without_finite_values_is_empty() -> None:
    assert parse(svg.histogram("h", [float("nan"), float("inf")])).get("data-points") == "0"


def test_stacked_share_folds_the_tail_into_other() -> None:
    items = [(f"l{i}", float(10 - i)) for i in range(10)]
    markup = svg.stacked_share("langs", items)
    root = parse(markup)
    titles = [t.text or "" for t in root.iter(f"{NS}title")]
    assert len(titles) == 8 and titles[-1].startswith("other")
    total = sum(float(r.get("width", 0)) for r in root.iter(f"{NS}rect") if r.get("y") == "4")
    assert abs(total - 640) < 1
    assert re.search(r"l0 18\.2%", "".join(root.itertext()))


def test_funnel_is_a_bar_per_stage() -> None:
    root = parse(svg.funnel("f", [("input", 10.0), ("after x", 4.0)]))
    assert root.get("data-points") == "2"
