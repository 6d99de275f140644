"""The dashboard: its model and views, and the page driven in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_config
from experiments.twin import TwinModel, custom_levers, noise_band
from experiments.views import LAYERS, SCHOOL_COLOURS, city_map, index_charts, key_numbers

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tmp" / "pytest"  # screenshots and timings of the page test (not in git)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def test_custom_levers_take_the_shipped_settings_and_the_control() -> None:
    assert custom_levers() == []
    specs = custom_levers(tp_budget_meur=5, tp_allocation="equal_per_pupil",
                          engagement_coverage=0.5, catchments="catchment_mix",
                          renewal_dwellings=100)
    assert [s["lever"] for s in specs] == ["tp_funding", "engagement", "catchment_redraw",
                                           "catchment_redraw", "urban_renewal"]
    tp, eng, *_, ren = specs
    assert (tp["budget_eur"], tp["allocation"], tp["kind"]) == (5e6, "equal_per_pupil", "school")
    assert eng["coverage"] == 0.5 and eng["trust_gain"] == 0.5  # the rest as in the file
    assert ren["dwellings_per_year"] == 100
    with pytest.raises(ValueError, match="catchments='moat'"):
        custom_levers(catchments="moat")


def test_twin_runs_in_step_and_differs_only_where_the_lever_acts() -> None:
    twin = TwinModel(tp_budget_meur=30.0, seed=4, years=3)
    assert twin.policy.cfg.seed == twin.baseline.cfg.seed == 4
    assert [lv.lever_name for lv in twin.policy.levers] == ["tp_funding"]
    assert twin.baseline.levers == []
    while twin.running:
        twin.step()
    assert twin.year == twin.baseline.year == 3 and twin.steps == 3
    numbers = key_numbers(twin).set_index("metric")
    assert numbers.at["policy_cost_eur", "baseline"] == 0
    assert numbers.at["policy_cost_eur", "policy"] > 1.0  # million euros
    charts = index_charts(twin)
    base, pol = (np.array([v for _, v in s["data"]], dtype=float)
                 for s in charts["outcome_gap_decile"]["series"])
    assert base[0] == pol[0] and not np.allclose(base[1:], pol[1:])  # money from year 1
    with pytest.raises(ValueError, match="policy='nothing'"):
        TwinModel(policy="nothing")


@pytest.mark.parametrize("layer", LAYERS)
def test_every_map_layer_and_school_colour_draws(layer: str) -> None:
    twin = TwinModel(years=1)
    twin.step()
    for colour in SCHOOL_COLOURS:
        drawn = city_map(twin.policy, layer, colour, selected="S001")
        assert drawn.png[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(drawn.spots) == len(twin.policy.schools.cell)
        assert all(0 < s.x < drawn.width and 0 < s.y < drawn.height for s in drawn.spots)
        assert drawn.layer.lo < drawn.layer.hi and drawn.schools.lo < drawn.schools.hi


def test_noise_band_spans_the_seeds_runs() -> None:
    cfg = tiny_config("years=2")
    band = noise_band(cfg, [1, 2, 3])
    assert list(band.index) == [0, 1, 2]
    runs = [noise_band(cfg, [s]) for s in (1, 2, 3)]
    col = "seg_school_ses_H"
    lows = np.min([r[f"{col}_lo"].to_numpy() for r in runs], axis=0)
    highs = np.max([r[f"{col}_hi"].to_numpy() for r in runs], axis=0)
    np.testing.assert_array_equal(band[f"{col}_lo"], lows)
    np.testing.assert_array_equal(band[f"{col}_hi"], highs)
    assert (runs[0][f"{col}_lo"] == runs[0][f"{col}_hi"]).all()  # one seed: no spread


def test_helsinki_twin_steps_and_draws() -> None:
    twin = TwinModel(city="helsinki", years=1, engagement_coverage=0.79)
    twin.step()
    drawn = city_map(twin.policy)
    assert drawn.width >= 600 and len(drawn.spots) == 127  # 97 + 30 school units
    assert len(index_charts(twin)["seg_school_ses_H"]["series"][1]["data"]) == 2


def test_command_line_offers_host_and_port_and_defaults_to_localhost() -> None:
    proc = subprocess.run([sys.executable, "-m", "experiments.app", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=True)
    assert "--host" in proc.stdout and "--port" in proc.stdout
    assert "default 127.0.0.1" in proc.stdout


# ---------------------------------------------------------------- the page in Chromium
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, float]]:
    """The dashboard on a free localhost port; yields its URL and the start-up time."""
    port = free_port()
    log = (ARTIFACTS / "app.log")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "experiments.app", "--port", str(port),
                                 "--lang", "en"], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)  # noqa: S310 (localhost)
                break
            except OSError:
                assert proc.poll() is None, log.read_text()
                assert time.perf_counter() - t0 < 120, "the app did not start in 120 s"
                time.sleep(0.2)
        yield url, time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return exe


def test_dashboard_in_headless_chromium(server: tuple[str, float]) -> None:
    exe = chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    url, startup = server
    timings: dict[str, float | list[float]] = {"startup_s": startup}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 2300})
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("img.kk-map")
        page.wait_for_selector(".kk-chart canvas")
        timings["page_load_s"] = time.perf_counter() - t0
        year = page.locator(".kk-year")
        assert year.inner_text() == "Year 0 of 10"

        def slider(param: str, key: str) -> None:
            thumb = page.locator(f".kk-control[data-param={param}] [role=slider]")
            thumb.focus()
            page.keyboard.press(key)

        def control(param: str) -> str:
            return page.locator(f".kk-control[data-param={param}] .kk-control-label").inner_text()

        def series(metric: str) -> tuple[list, list]:
            chart = page.locator(f".kk-chart[data-metric={metric}]")
            return (json.loads(chart.get_attribute("data-baseline")),
                    json.loads(chart.get_attribute("data-policy")))

        def numbers(metric: str) -> tuple[float, float]:
            row = page.locator(f".kk-numbers tr[data-metric={metric}]")
            return float(row.get_attribute("data-baseline")), float(
                row.get_attribute("data-policy"))

        # Every slider shows its value; Mesa's generic controls are not on the page.
        assert control("tp_budget_meur") == "TP funding of schools, MEUR a year: 0.0"
        assert control("engagement_coverage") == ("Engagement: share of renewal-area units: "
                                                  "79\u00a0%")
        assert control("years") == "Years: 10"
        text = page.locator("body").inner_text()
        for generic in ("Play Interval", "Render Interval", "Use Threads", "Page 0", "Time:"):
            assert generic.lower() not in text.lower(), generic
        # The lever: TP funding at its maximum, engagement off; Reset builds the new runs.
        slider("tp_budget_meur", "End")
        slider("engagement_coverage", "Home")
        for param, value in (("tp_budget_meur", "30.0"), ("engagement_coverage", "0\u00a0%")):
            page.wait_for_function(  # the label follows the slider
                f"document.querySelector('.kk-control[data-param={param}] .kk-control-label')"
                f".innerText.endsWith(': {value}')")
        page.get_by_role("button", name="Reset").click()
        page.locator(".kk-policy", has_text="levers: tp_funding;").wait_for()
        map0 = page.locator("img.kk-map").get_attribute("src")
        cost0 = numbers("policy_cost_eur")
        assert cost0 == (0.0, 0.0)

        steps = []
        for k in (1, 2, 3):
            t = time.perf_counter()
            page.get_by_role("button", name="Step").click()
            page.wait_for_selector(f"img.kk-map[data-year='{k}']")
            page.wait_for_function(  # the charts have this year's point
                "JSON.parse(document.querySelector('.kk-chart[data-metric=seg_school_ses_H]')"
                f".dataset.policy).length === {k + 1}")
            assert year.inner_text() == f"Year {k} of 10"
            steps.append(time.perf_counter() - t)
        timings["step_with_redraw_s"] = steps
        # Run (play) to the end: the progress bar reaches the last year.
        t = time.perf_counter()
        page.locator("button", has_text="▶").click()
        page.wait_for_selector("img.kk-map[data-year='10']", timeout=60_000)
        page.wait_for_function(  # the charts redraw after the map: wait for year 10's point
            "JSON.parse(document.querySelector('.kk-chart[data-metric=outcome_gap_decile]')"
            ".dataset.policy).length === 11", timeout=60_000)
        timings["run_7_years_s"] = time.perf_counter() - t
        # The run ends cleanly: a plain word, no play or step button left.
        page.locator(".kk-finished", has_text="Finished: year 10 of 10").wait_for()
        assert page.locator("button", has_text="▶").count() == 0
        assert page.get_by_role("button", name="Step").count() == 0
        # The run-to-run band of the baseline over other seeds, beside the differences.
        page.wait_for_selector(".kk-chart[data-band=true]", timeout=180_000)
        spread = page.locator(".kk-numbers tr[data-metric=seg_school_ses_H] .kk-spread")
        assert spread.inner_text().startswith("±")

        assert page.locator("img.kk-map").get_attribute("src") != map0  # the map changed
        base, pol = series("outcome_gap_decile")
        assert len(base) == len(pol) == 11  # year 0 and ten years: the charts grew
        assert base[0] == pol[0]  # same city and seed: identical before the lever acts
        assert not np.allclose(base[1:], pol[1:])  # TP money changes outcomes
        b_cost, p_cost = numbers("policy_cost_eur")
        assert b_cost == 0 and p_cost > 1.0  # million euros a year
        assert numbers("seg_school_ses_H") != cost0

        # A school's details: hover text on the map, and a click selects it.
        area = page.locator("area[data-school=S003]")
        assert "pupils" in area.get_attribute("title")
        area.dispatch_event("click")
        page.locator(".kk-school th", has_text="S003").wait_for()

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "dashboard.png"
        page.screenshot(path=shot)
        assert shot.stat().st_size > 50_000

        # The language switch: the page in Finnish, the slider values written the Finnish way.
        page.get_by_role("button", name="suomi").click()
        page.locator(".kk-year", has_text="Vuosi 10/10").wait_for()
        for finnish in ("Keskeiset indeksit", "Mallin asetukset", "Valmis: vuosi 10/10"):
            page.get_by_text(finnish).first.wait_for()  # the views redraw one after another
        assert control("tp_budget_meur") == ("Koulujen tasa-arvorahoitus, milj. euroa vuodessa: "
                                             "30,0")
        text = page.locator("body").inner_text()
        for english in ("Key indices", "Model parameters", "Progress", "Finished", "Reset"):
            assert english.lower() not in text.lower(), english
        page.get_by_role("button", name="svenska").click()
        page.locator(".kk-year", has_text="År 10 av 10").wait_for()
        browser.close()
    (ARTIFACTS / "dashboard_timings.json").write_text(json.dumps(timings, indent=1))
    # Generous bounds for a shared CI machine; docs/dashboard.md reports the measured values.
    assert timings["page_load_s"] < 15
    assert max(steps) < 5
