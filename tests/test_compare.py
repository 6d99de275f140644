"""Scenario comparison: paired effects, common random numbers, the report, bad scenarios."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from babel.messages.pofile import read_po
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from scipy import stats

from conftest import TINY, TINY_VALUES, tiny_config
from experiments.collect import collect
from experiments.compare import CompareConfig, compare, finish, paired_effects, split
from experiments.i18n import LOCALE_DIR, Text
from experiments.report import district_names, verdict_words
from experiments.summary import report_cells
from scenarios.base import Lever
from sim.evaluation import EvaluationConfig, load
from sim.geodata import build_city
from sim.model import SegregationModel

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def test_paired_effects_hand_computed() -> None:
    # Two replicates, one year: baseline 1, 3; scenario 2, 6 -> differences 1, 3.
    raw = pd.DataFrame({
        "scenario": ["baseline", "baseline", "s", "s"], "replicate": [0, 1, 0, 1],
        "year": [5, 5, 5, 5], "m": [1.0, 3.0, 2.0, 6.0],
    })
    e = paired_effects(raw, ("m",)).iloc[0]
    assert (e["baseline_mean"], e["scenario_mean"], e["mean_diff"]) == (2.0, 4.0, 2.0)
    half = 12.706204736174698 * np.sqrt(2.0) / np.sqrt(2)  # t(0.975, 1) * sd / sqrt(n)
    assert e["ci_low"] == pytest.approx(2.0 - half)
    assert e["ci_high"] == pytest.approx(2.0 + half)
    assert e["n_replicates"] == 2


class MoreResources(Lever):
    """Test lever with a real effect: extra resources for schools in renewal areas."""

    def act(self, model: SegregationModel) -> None:
        sel = self.resolve(model, "renewal")
        model.schools.resources[sel] = 3.0


def final_metrics(seed: int, levers: list[Lever], scenario: str) -> pd.DataFrame:
    model = SegregationModel(tiny_config(f"seed={seed}", "years=6"), levers=levers)
    model.run()
    df = model.recorder.metrics_frame()
    df.insert(0, "replicate", seed % 100)
    df.insert(0, "scenario", scenario)
    return df


def test_common_random_numbers_shrink_intervals() -> None:
    n = 6
    base = [final_metrics(r, [], "baseline") for r in range(n)]
    crn = [final_metrics(r, [MoreResources(start_year=3)], "s") for r in range(n)]
    indep = [final_metrics(100 + r, [MoreResources(start_year=3)], "s") for r in range(n)]
    metric = ("outcome_gap_decile", "seg_school_ses_H")
    e_crn = paired_effects(pd.concat(base + crn), metric)
    e_ind = paired_effects(pd.concat(base + indep), metric)
    width_crn = (e_crn["ci_high"] - e_crn["ci_low"]).groupby(e_crn["metric"]).mean()
    width_ind = (e_ind["ci_high"] - e_ind["ci_low"]).groupby(e_ind["metric"]).mean()
    assert (width_crn < width_ind).all(), (width_crn, width_ind)
    # Before the lever starts the paired difference is exactly zero.
    early = e_crn[e_crn["year"] < 3]
    assert (early["mean_diff"] == 0).all() and (early["ci_high"] == early["ci_low"]).all()


def run_compare(out: Path, *args: str) -> subprocess.CompletedProcess:
    # city=small: the command's default city is helsinki; the tiny city resizes small.
    cmd = [sys.executable, "-m", "experiments.compare", "city=small", *TINY, *args,
           f"hydra.run.dir={out}"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cmp") / "run"
    proc = run_compare(out, "scenarios=[baseline,engagement,catchment_mix]", "replicates=2",
                       "years=3", "evaluation.n_jobs=2")
    assert proc.returncode == 0, proc.stderr
    assert "outputs written to" in proc.stdout
    return out


def test_compare_writes_effects_and_raw(comparison: Path) -> None:
    eff = pd.read_csv(comparison / "effects.csv")
    assert list(eff.columns) == ["scenario", "metric", "year", "baseline_mean", "scenario_mean",
                                 "mean_diff", "ci_low", "ci_high", "n_replicates", "p_value"]
    assert set(eff["scenario"]) == {"engagement", "catchment_mix"}
    assert set(eff["year"]) == {0, 1, 2, 3}
    # Every replicate counts, except for rates that have no value in year 0.
    empty = eff["mean_diff"].isna()
    assert (eff.loc[~empty, "n_replicates"] == 2).all()
    assert (eff.loc[empty, "n_replicates"] == 0).all() and (eff.loc[empty, "year"] == 0).all()
    full = eff[~empty]
    assert (full["ci_low"] <= full["mean_diff"] + 1e-12).all()
    assert (full["ci_high"] >= full["mean_diff"] - 1e-12).all()
    raw = pd.read_parquet(comparison / "replicates.parquet")
    assert len(raw) == 3 * 2 * 4  # scenarios x replicates x years
    # Common random numbers: every scenario's replicate r used the same seed.
    assert raw.groupby("replicate")["seed"].nunique().eq(1).all()


def test_serial_backend_gives_the_same_bytes(comparison: Path, tmp_path: Path) -> None:
    """In process, one run after another, as the CLI fixture's joblib processes gave."""
    cfg = OmegaConf.to_object(OmegaConf.merge(
        OmegaConf.structured(CompareConfig),
        OmegaConf.from_dotlist([*TINY_VALUES, "scenarios=[baseline,engagement,catchment_mix]",
                                "replicates=2", "years=3", "evaluation.backend=serial"])))
    compare(cfg, tmp_path, progress=False)
    for name in ("effects.csv", "replicates.parquet"):
        assert (tmp_path / name).read_bytes() == (comparison / name).read_bytes(), name
    assert {"git", "git_dirty", "versions", "config"} <= set(
        json.loads((comparison / "provenance.json").read_text()))


def test_collect_rebuilds_the_comparison(comparison: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(comparison, copy)
    for name in ("effects.csv", "replicates.parquet", "report.html"):
        (copy / name).unlink()
    assert collect(copy) == 0
    for name in ("effects.csv", "replicates.parquet"):
        assert (copy / name).read_bytes() == (comparison / name).read_bytes(), name
    assert (copy / "report.html").exists()


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_in_headless_chromium(comparison: Path, tmp_path: Path) -> None:
    exe = chromium()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium not installed")
    report = comparison / "report.html"
    html = report.read_text()
    assert "<img" in html and "data:image/png;base64," in html and "src=\"http" not in html
    shot = tmp_path / "report.png"
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run([exe, *flags, "--window-size=1300,3000", f"--screenshot={shot}",
                    report.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 50_000
    dom = subprocess.run([exe, *flags, "--dump-dom", report.as_uri()], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    loaded = dom.split('data-images-loaded="', 1)[1].split('"', 1)[0]
    ok, total = (int(x) for x in loaded.split("/"))
    assert total >= 3 and ok == total, loaded  # summary figures, maps, catchment maps


BAD = {
    "unknown lever": ("- lever: teleport\n", "lever #1 'teleport' is unknown"),
    "unknown school id": ("- lever: engagement\n  target: [S999]\n", "target='S999'"),
    "negative budget": ("- lever: tp_funding\n  budget_eur: -5\n", "budget_eur=-5"),
    "overlapping shared catchments": (
        "- lever: shared_catchment\n  groups: [[S000, S001], [S001, S002]]\n", "S001"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_scenario_file_gives_one_clear_error(case: str, tmp_path: Path) -> None:
    levers, message = BAD[case]
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\ndescription: broken\nlevers:\n{levers}")
    out = tmp_path / "run"
    proc = run_compare(out, f"scenarios=[baseline,{path}]", "replicates=2", "years=2")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()  # nothing half-written


def test_one_pair_has_no_interval() -> None:
    """Issue #7: n=1 gives mean 0.2 with no interval, not [0.2, 0.2], and no verdict."""
    raw = pd.DataFrame({"scenario": ["baseline", "s"], "replicate": [0, 0], "year": [5, 5],
                        "outcome_gap_decile": [1.0, 1.2]})
    e = paired_effects(raw, ("outcome_gap_decile",))
    assert e["mean_diff"].iloc[0] == pytest.approx(0.2) and e["n_replicates"].iloc[0] == 1
    assert np.isnan(e["ci_low"].iloc[0]) and np.isnan(e["ci_high"].iloc[0])
    assert np.isnan(e["p_value"].iloc[0])
    cell = report_cells(e, [5]).iloc[0]
    assert cell["verdict"] == "no_interval" and not cell["clear"]
    assert verdict_words(Text("en"))[cell["verdict"]] == "no interval (fewer than 2 replicates)"


@given(n_years=st.integers(1, 3), n=st.integers(1, 6), seed=st.integers(0, 2**16))
@settings(max_examples=40, deadline=None)
def test_paired_effects_match_scipy(n_years: int, n: int, seed: int) -> None:
    """Random replicate tables, some values empty: mean and t-interval as scipy.stats gives."""
    rng = np.random.default_rng(seed)
    years = range(n_years)
    base = rng.normal(size=(n, n_years))
    scen = base + rng.normal(size=(n, n_years))
    scen[rng.random(scen.shape) < 0.2] = np.nan  # empty values leave pairs out
    rows = [{"scenario": name, "replicate": r, "year": y, "m": vals[r, y]}
            for name, vals in (("baseline", base), ("s", scen)) for r in range(n) for y in years]
    effects = paired_effects(pd.DataFrame(rows), ("m",))
    for y in years:
        d = (scen[:, y] - base[:, y])
        d = d[~np.isnan(d)]
        e = effects[effects["year"] == y].iloc[0]
        assert e["n_replicates"] == len(d)
        if len(d) < 2:
            assert np.isnan(e["ci_low"]) and np.isnan(e["ci_high"])
            continue
        test = stats.ttest_1samp(d, 0.0)
        ci = test.confidence_interval(0.95)
        assert e["mean_diff"] == pytest.approx(d.mean())
        if d.std() > 0:
            assert e["p_value"] == pytest.approx(test.pvalue)
        assert e["ci_low"] == pytest.approx(ci.low) and e["ci_high"] == pytest.approx(ci.high)


@pytest.mark.parametrize(("options", "message"), [
    ({"evaluation": EvaluationConfig(n_jobs=-1)},
     "evaluation.n_jobs=-1 is not allowed; expected an integer >= 0 (0 = all cores)"),
    ({"horizons": [-1]}, "horizons=[-1] is not allowed; expected years >= 1"),
    ({"horizons": []}, "horizons=[] is not allowed; expected years >= 1"),
])
def test_comparison_options_are_checked(options: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        split(CompareConfig(**options))
    assert str(info.value).startswith(message), str(info.value)


def report_in(comparison: Path, lang: str, tmp_path: Path) -> Path:
    """The fixture's report written again in ``lang`` (collect rebuilds it from the chunks)."""
    copy = tmp_path / lang
    shutil.copytree(comparison, copy)
    cfg = OmegaConf.load(copy / "config.yaml")
    cfg.lang = lang
    OmegaConf.save(cfg, copy / "config.yaml")
    assert collect(copy) == 0
    return copy / "report.html"


def english_fragments() -> set[str]:
    """Pieces of English source text (between placeholders) long enough to be telling."""
    with (LOCALE_DIR / "messages.pot").open("rb") as f:
        pot = read_po(f)
    out = set()
    for m in pot:
        for msgid in (m.id if isinstance(m.id, tuple) else (m.id,)):
            for piece in re.split(r"\{[^}]*\}|<[^>]+>", msgid or ""):
                piece = piece.strip(" .,:;()\n")
                if len(piece) >= 12 and " " in piece:
                    out.add(piece)
    return out


ENGLISH_WORDS = re.compile(r"\b(the|and|with|after|which|would|this|are)\b", re.IGNORECASE)


@pytest.mark.parametrize("lang", ["fi", "sv", "en"])
def test_report_in_each_language_in_chromium(comparison: Path, tmp_path: Path,
                                             lang: str) -> None:
    """The report opens with its generated summary; fi and sv show no English text."""
    exe = chromium()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    report = report_in(comparison, lang, tmp_path)
    expected = finish(load(report.parent))["summary"].splitlines()[0]  # the lead sentence
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.goto(report.as_uri())
        assert page.locator("html").get_attribute("lang") == lang
        # The summary is the first thing after the title.
        assert page.locator("body > *").nth(1).get_attribute("id") == "summary"
        assert page.locator("#summary p.lead").inner_text() == expected
        visible = page.locator("body").inner_text()  # closed <details> do not show
        browser.close()
    assert "scenario(s)" not in visible
    if lang == "en":
        assert "School segregation under 2 policy scenarios" in visible
        assert re.search(r"changes most:\s+engagement: district \d+",
                         visible)
        return
    shown = [piece for piece in english_fragments() if piece in visible]
    assert not shown, shown
    assert not ENGLISH_WORDS.findall(visible), ENGLISH_WORDS.findall(visible)


def test_districts_carry_names() -> None:
    """The data's district names where the city has them, else numbered (``area_id``)."""
    city = build_city(tiny_config().city)
    assert district_names(city, Text("en"))[:2] == ["district 0", "district 1"]
    assert district_names(city, Text("sv"))[1] == "område 1"
    city.labels["district"] = ([f"D{i}" for i in range(city.n_districts)],
                               [f"Kallio {i}" for i in range(city.n_districts)])
    assert district_names(city, Text("fi"))[:2] == ["Kallio 0", "Kallio 1"]
