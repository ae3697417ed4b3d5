"""The dashboard in headless Chromium: every page loads cleanly, the heatmap has one cell per
grid point, trials reported meanwhile appear without a reload, the forms create and
explain, the report shows its verdict and figures."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import PHONE, Console, Site, screenshot
from tests.browser.seed import LIVE_GRID, report_some

PLOTTED = "n => document.querySelectorAll('.plot .main-svg').length >= n"


def _pages(site: Site) -> dict[str, tuple[str, int]]:
    """Screenshot name → (path, plots drawn once loaded)."""
    s = site.seeded
    return {
        "overview": ("/", 0),
        "workers": ("/workers", 0),
        "study": (f"/studies/{s.live_study}", 3),
        "study-bounds": (f"/studies/{s.bounds_study}", 3),
        "experiment-report": (f"/experiments/{s.report_experiment}", 3),
        "experiment-progress": (f"/experiments/{s.live_experiment}", 1),
        "new-study": ("/studies/new", 0),
        "new-experiment": ("/experiments/new", 0),
    }


def _open(page: Any, site: Site, path: str, plots: int = 0) -> None:
    response = page.goto(site.url + path)
    assert response is not None and response.status == 200, path
    if plots:
        page.wait_for_function(PLOTTED, arg=plots)


def _filled(page: Any) -> int:
    return page.evaluate(
        "() => document.getElementById('heatmap').data[0].z.flat().filter(v => v !== null).length"
    )


def test_every_page_loads_without_console_errors(page: Any, console: Console, site: Site) -> None:
    for name, (path, plots) in _pages(site).items():
        _open(page, site, path, plots)
        assert console.errors == [], f"{name}: {console.errors}"
        assert page.locator("h1").count() == 1, name
        screenshot(page, name)


def test_pages_fit_a_phone_screen(browser: Any, site: Site) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        for name, (path, plots) in _pages(site).items():
            _open(page, site, path, plots)
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 1, f"{name} is {overflow}px wider than a phone"
            if name in ("study", "overview"):
                screenshot(page, f"{name}-phone")
    finally:
        context.close()


def test_heatmap_has_one_cell_per_grid_point(page: Any, site: Site) -> None:
    _open(page, site, f"/studies/{site.seeded.live_study}", 3)
    shape = page.evaluate(
        "() => { const z = document.getElementById('heatmap').data[0].z;"
        " return [z.length, z[0].length]; }"
    )
    assert tuple(shape) == LIVE_GRID
    finished = site.http.get(f"/api/studies/{site.seeded.live_study}").json()["trainings_done"]
    assert _filled(page) == finished > 0
    _open(page, site, f"/studies/{site.seeded.bounds_study}", 3)
    assert page.evaluate("() => document.getElementById('heatmap').data[0].z.length") == 24


def test_a_trial_reported_meanwhile_appears_without_a_reload(
    page: Any, console: Console, site: Site
) -> None:
    _open(page, site, f"/studies/{site.seeded.live_study}", 3)
    page.evaluate("() => { window.stillThisPage = true; }")
    before = _filled(page)
    finished = int(page.locator('[data-field="finished"]').first.inner_text())
    assert report_some(site.http, 1) == 1
    page.wait_for_function(
        "n => document.getElementById('heatmap').data[0].z.flat()"
        ".filter(v => v !== null).length === n",
        arg=before + 1,
    )
    assert page.evaluate("() => window.stillThisPage === true")
    page.wait_for_function(
        "n => document.querySelector('[data-field=\"finished\"]').textContent === String(n)",
        arg=finished + 1,
    )
    assert page.locator("#trials tr.fresh").count() == 1
    assert console.errors == []


def test_trial_table_sorts_and_pages_in_place(page: Any, site: Site) -> None:
    _open(page, site, f"/studies/{site.seeded.live_study}", 3)
    page.evaluate("() => { window.stillThisPage = true; }")
    page.get_by_role("link", name=re.compile(r"^value")).click()
    page.wait_for_function("() => location.search.includes('sort=value')")
    page.wait_for_selector("th[aria-sort='ascending'] >> text=value")
    values = [
        float(v)
        for v in page.locator("table.trials tbody td:nth-child(6)").all_inner_texts()
        if v != "–"
    ]
    assert values == sorted(values) and values
    page.select_option("#state-filter", "queued")
    page.wait_for_function("() => location.search.includes('state=queued')")
    states = set(page.locator("table.trials tbody td:nth-child(3)").all_inner_texts())
    assert states == {"queued"}
    assert page.evaluate("() => window.stillThisPage === true")


def test_ticking_a_trial_plots_its_curve(page: Any, site: Site) -> None:
    _open(page, site, f"/studies/{site.seeded.live_study}", 3)
    before = page.evaluate("() => document.getElementById('curves-plot').data.length")
    page.locator("table.trials input[name=curve]:not(:checked)").first.check()
    page.wait_for_function(
        "n => document.getElementById('curves-plot').data.length === n", arg=before + 1
    )


def test_create_study_form_explains_errors_then_creates(page: Any, site: Site) -> None:
    _open(page, site, "/studies/new")
    page.get_by_label("Budget (distinct trainings)").fill("-3")
    page.get_by_label("log-scale bounds").check()
    assert page.get_by_label("α from").is_visible()
    assert not page.get_by_label("α values (explicit grid)").is_visible()
    page.get_by_label("α from").fill("1")
    page.get_by_label("α to").fill("0.1")
    page.get_by_role("button", name="Create study").click()
    summary = page.locator("#error-summary")
    summary.wait_for()
    text = summary.inner_text()
    assert "Name" in text and "at least 1 character" in text
    assert "Budget" in text and "greater than or equal to 1" in text
    assert "swap them" in text
    assert page.get_by_label("Name").get_attribute("aria-invalid") == "true"
    screenshot(page, "new-study-errors")

    page.get_by_label("Name").fill("made in the browser")
    page.get_by_label("Optimizer").select_option("adam")
    page.get_by_label("Tuner", exact=True).select_option("random")
    page.get_by_label("α from").fill("1e-4")
    page.get_by_label("α to").fill("1")
    page.get_by_label("Budget (distinct trainings)").fill("5")
    page.get_by_role("button", name="Create study").click()
    page.wait_for_url(re.compile(r"/studies/\d+$"))
    assert "made in the browser" in page.locator("h1").inner_text()
    study_id = int(page.url.rsplit("/", 1)[1])
    created = site.http.get(f"/api/studies/{study_id}").json()
    assert (created["optimizer"], created["tuner"], created["budget"]) == ("adam", "random", 5)


def test_create_experiment_form(page: Any, site: Site) -> None:
    _open(page, site, "/experiments/new")
    page.get_by_label("Name").fill("from the form")
    page.get_by_label("an explicit grid").check()
    page.get_by_label("α values (explicit grid)").fill("1e-3, 1e-2")
    page.get_by_label("ε values (explicit grid)").fill("1e-8 1e-6")
    page.get_by_role("button", name="Create experiment").click()
    page.wait_for_url(re.compile(r"/experiments/\d+$"))
    experiment_id = int(page.url.rsplit("/", 1)[1])
    created = site.http.get(f"/api/experiments/{experiment_id}").json()
    assert [s["optimizer"] for s in created["studies"]] == ["adam", "avagrad"]
    for study in created["studies"]:  # keep the live study the only one workers get
        site.http.post(f"/api/studies/{study['id']}/cancel").raise_for_status()


@pytest.mark.parametrize("width", [1280, 800])
def test_report_page_shows_verdict_figures_and_metrics(
    browser: Any, site: Site, width: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        _open(page, site, f"/experiments/{site.seeded.report_experiment}", 3)
        verdict = page.locator("#verdict").inner_text()
        assert "interaction" in verdict and "CI" in verdict
        report = site.http.get(f"/api/experiments/{site.seeded.report_experiment}/report").json()
        conclusion = report["metrics"]["conclusion"]
        assert page.locator("#conclusion").inner_text() == conclusion
        assert "needs the CI above 1" in page.locator("#decided-by").inner_text()
        assert "seeds per cell: 2" in page.locator("#decided-by").inner_text()
        assert page.locator("#conclusion-rule").inner_text().startswith("Rule:")
        assert page.locator("#line-search-table tbody tr").count() == 2
        curves = page.evaluate(
            "() => document.getElementById('tunability').data.filter(t => t.showlegend !== false)"
            ".map(t => t.name)"
        )
        assert curves == ["adam", "avagrad"]
        assert page.get_by_role("columnheader", name="adam: KM median").count() >= 1
        heatmaps = page.evaluate(
            "() => document.getElementById('figure1').data.filter(t => t.type === 'heatmap')"
            ".map(t => [t.z.length, t.z[0].length])"
        )
        assert heatmaps == [[5, 5], [5, 5]]
        bars = page.evaluate(
            "() => document.getElementById('figure2-costs').data.filter(t => t.type === 'bar')"
            ".map(t => t.x.length)"
        )
        assert bars == [4, 4]
        assert page.locator("#figure2-curves").count() == 1
        assert page.get_by_role("columnheader", name="adam/avagrad").count() >= 1
        row = page.get_by_role("rowheader", name="avagrad (weight_decay 0.001) (reference)")
        assert row.count() == 1
    finally:
        context.close()
