"""kiln.report: one self-contained HTML file, checked as text and in headless Chromium.

The Chromium tests skip, saying why, when /usr/bin/chromium (Debian's `chromium`) or
Playwright is missing, unless KILN_REQUIRE_SERVICES=1 (CI), where they fail instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

import kiln
from browser_helpers import chromium, open_page
from kiln import plots
from kiln.report import Report

PNG = plots.feature_importance({"a": 1.0}).to_png()


def test_report_renders_sections_in_order_with_every_block(tmp_path: Path) -> None:
    report = Report("Quarterly model", subtitle="held-out data")
    first = report.section("Summary", "Two <b>models</b> compared.")
    first.metrics({"auc": 0.912345678, "rows": 100000, "missing": float("nan")})
    first.table(pd.DataFrame({"model": ["a", "<script>x</script>"], "auc": [0.9, 0.85]}))
    second = report.section("Plots").image(PNG, alt="importance", caption="bars")
    second.figure(plots.roc([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.3]))
    html = report.save(tmp_path / "r.html").read_text(encoding="utf-8")

    assert html.index("Summary") < html.index("Plots")
    assert "Two &lt;b&gt;models&lt;/b&gt; compared." in html  # text is escaped
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert "0.9123" in html
    assert "100,000" in html
    assert 'src="data:image/png;base64,' in html
    assert html.count('class="kiln-plotly"') == 1
    assert "Plotly.newPlot" in html
    # Offline: no asset of the page is fetched from anywhere (the inlined scripts aside).
    markup = re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    assert not re.search(r'(src|href)="(https?:)?//', markup)
    assert "<script src=" not in html


def test_report_without_charts_leaves_plotly_out(tmp_path: Path) -> None:
    report = Report("Small", interactive=False)
    report.section("Plot").figure(plots.roc([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.3]))
    html = report.to_html()
    assert "Plotly.newPlot" not in html
    assert len(html) < 200_000
    assert html.count("data:image/png;base64,") == 1


def test_report_refuses_bad_input(tmp_path: Path) -> None:
    report = Report("x")
    section = report.section("s")
    with pytest.raises(kiln.ConfigurationError, match="expects the bytes of a PNG"):
        section.image(b"GIF89a")
    with pytest.raises(
        kiln.ConfigurationError, match="a pandas DataFrame or a list of dicts; got int"
    ):
        section.table(42)
    with pytest.raises(kiln.ConfigurationError, match="expects a dict of name -> value"):
        section.metrics([1, 2])  # type: ignore[arg-type]
    with pytest.raises(kiln.ConfigurationError, match=r"save it to a \.html file"):
        report.save(tmp_path / "r.pdf")
    with pytest.raises(kiln.NoActiveRunError, match="no run is active"):
        report.log()


def test_report_logs_to_the_active_run(tracked: str) -> None:
    report = Report("Logged")
    report.section("Numbers").table([{"a": 1, "b": 2}, {"a": 3}])
    with kiln.start_run(system_metrics=False) as run:
        info = report.log("reports/r.html")
    assert info.path == "reports/r.html"
    html = kiln.get_client().read_artifact(run.id, "reports/r.html").decode()
    assert "<td>3</td><td></td>" in html


# ---------------------------------------------------------------- Chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's) driven by Playwright, or a skip saying why."""
    with chromium() as launched:
        yield launched


@pytest.mark.slow
def test_evaluation_report_opens_in_chromium_without_errors(browser: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=1500), "b": rng.normal(size=1500)})
    y = (X["a"] + rng.normal(scale=0.5, size=1500) > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X[:1000], y[:1000])
    region = np.where(X["b"][1000:] > 0, "east", "west")
    result = kiln.evaluate(forest, X[1000:], y[1000:], segments=region)
    assert result.importance_kind == "Importance (the model's own)"
    path = result.save_report(tmp_path / "evaluation.html")

    page, problems = open_page(browser, path)
    page.wait_for_function(
        "document.querySelectorAll('.kiln-plot .main-svg').length > 0", timeout=60_000
    )
    charts = page.eval_on_selector_all(".kiln-plot", "els => els.length")
    drawn = page.eval_on_selector_all(
        ".kiln-plot", "els => els.filter(e => e.querySelector('.main-svg')).length"
    )
    assert charts == len(result.figures) == drawn
    legend = page.inner_text("#" + _chart_id(page, "ROC curve"))
    assert f"AUC = {result.metrics['roc_auc']:.3f}" in legend
    assert page.title() == "Evaluation of RandomForestClassifier"
    assert problems == []
    page.close()


def _chart_id(page: Any, title: str) -> str:
    found = page.evaluate(
        """title => [...document.querySelectorAll('.kiln-plot')]
            .find(e => e.getAttribute('aria-label') === title).id""",
        title,
    )
    return str(found)


@pytest.mark.slow
def test_png_only_report_opens_in_chromium(browser: Any, tmp_path: Path) -> None:
    report = Report("PNG only", interactive=False)
    report.section("Plot").figure(plots.roc([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.3]))
    page, problems = open_page(browser, report.save(tmp_path / "png.html"))
    loaded = page.eval_on_selector("img", "img => img.complete && img.naturalWidth")
    assert loaded == 528  # a square plot: 5.28 x 4.8 inches at 100 dpi
    assert problems == []
    page.close()
