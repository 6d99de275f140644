"""The report's rules: Benjamini-Hochberg clear cells, horizons, sizes, the generated summary.

The false-discovery test runs the comparison machinery for real (``experiments.compare`` on a
tiny city) and applies the report's rule to baseline against an independent copy of itself.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from scipy import stats

from conftest import TINY_VALUES
from experiments.compare import CompareConfig, compare, paired_effects
from experiments.i18n import Text
from experiments.summary import (
    FDR,
    METRICS,
    REPORTED,
    Context,
    bh_adjust,
    horizon_pattern,
    report_cells,
    size,
    summary,
)

log = logging.getLogger(__name__)
EN = Text("en")


def label(metric: str) -> str:
    return METRICS[metric].label


@pytest.mark.parametrize("seed", range(5))
def test_bh_adjust_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=30) ** 3
    p[rng.random(30) < 0.2] = np.nan  # cells without an interval are not counted
    q = bh_adjust(p)
    ok = ~np.isnan(p)
    assert np.isnan(q[~ok]).all()
    np.testing.assert_allclose(q[ok], stats.false_discovery_control(p[ok], method="bh"))


def test_bh_adjust_by_hand() -> None:
    # Sorted p 0.01, 0.02, 0.03, 0.5 of m = 4: p m / rank = 0.04, 0.04, 0.04, 0.5.
    np.testing.assert_allclose(bh_adjust(np.array([0.5, 0.03, 0.01, 0.02])),
                               [0.5, 0.04, 0.04, 0.04])


def test_p_values_are_the_paired_t_test() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(size=6)
    scen = base + 0.4 + rng.normal(size=6)
    raw = pd.DataFrame({"scenario": ["baseline"] * 6 + ["s"] * 6, "replicate": [*range(6)] * 2,
                        "year": 1, "m": np.r_[base, scen]})
    e = paired_effects(raw, ("m",)).iloc[0]
    assert e["p_value"] == pytest.approx(stats.ttest_1samp(scen - base, 0.0).pvalue)


def cells_for(diffs: dict[int, list[float]], metric: str = "outcome_gap_decile") -> pd.DataFrame:
    """Report cells of one scenario from replicate differences per horizon (baseline 2.0)."""
    rows = []
    for year, d in diffs.items():
        for r, x in enumerate(d):
            rows += [{"scenario": "baseline", "replicate": r, "year": year, metric: 2.0},
                     {"scenario": "s", "replicate": r, "year": year, metric: 2.0 + x}]
    raw = pd.DataFrame(rows)
    effects = paired_effects(raw, (metric,))
    return report_cells(effects, sorted(diffs), (metric,)), raw, effects


CLEAR_DOWN = [-0.21, -0.19, -0.2, -0.22, -0.18, -0.2]
NOISE = [0.1, -0.12, 0.05, -0.02, 0.03, -0.06]


@pytest.mark.parametrize(("diffs", "pattern"), [
    ({10: CLEAR_DOWN, 20: CLEAR_DOWN}, "steady"),
    ({10: NOISE, 20: CLEAR_DOWN}, "steady"),
    ({10: CLEAR_DOWN, 20: NOISE}, "fades"),
    ({10: CLEAR_DOWN, 20: [-x for x in CLEAR_DOWN]}, "reverses"),
    ({10: NOISE, 20: NOISE}, "none"),
])
def test_horizon_patterns(diffs: dict, pattern: str) -> None:
    cells, _, _ = cells_for(diffs)
    assert horizon_pattern(cells) == pattern


def test_summary_names_size_direction_fade_and_reversal() -> None:
    cells, raw, effects = cells_for({10: CLEAR_DOWN, 20: CLEAR_DOWN})
    raw["policy_cost_eur"] = np.where((raw["scenario"] == "s") & (raw["year"] > 0), 2e6, 0.0)
    lead, (lines,) = summary(cells, Context(raw, effects), EN, label)
    assert lead == "1 of 1 scenarios clearly changes at least one indicator: s."
    text = " ".join(lines).replace("\u00a0", " ")  # numbers keep their units on one line
    # -0.2 school years of a 2.0 gap: -10 %; 2 MEUR a year / (0.2 / 0.1) = 1 MEUR per 0.1.
    assert "better, -0.20 school years (-10.0 % of the baseline gap) after 10 and 20" in text
    assert "Cost: 1.00 million euros a year per 0.1 school years." in text
    assert "It costs 2.00 million euros a year on average." in text
    fade, raw, effects = cells_for({10: CLEAR_DOWN, 20: NOISE})
    lines = summary(fade, Context(raw, effects), EN, label)[1][0]
    assert lines[0].startswith("s: no indicator is clearly changed after 20 years.")
    assert "the change fades: no clear change after 20 years" in lines[1]
    rev, raw, effects = cells_for({10: CLEAR_DOWN, 20: [-x for x in CLEAR_DOWN]})
    assert "the change reverses, -0.20 school years after 10 years but +0.20 school years " \
        "after 20 years" in " ".join(summary(rev, Context(raw, effects), EN, label)[1][0])
    none, raw, effects = cells_for({10: NOISE, 20: NOISE})
    lead, (lines,) = summary(none, Context(raw, effects), EN, label)
    assert lead == "The scenario changes no indicator clearly."
    assert lines[0].startswith("s: no clear change in any of the 1 indicators after 10 and 20")
    assert "smaller changes than these would not show: Learning gap" in lines[1]


def test_sizes_in_units_people_use() -> None:
    raw = pd.DataFrame({
        "scenario": ["baseline", "baseline", "s", "s"], "replicate": [0, 1, 0, 1],
        "year": 5, "seg_school_ses_H": [0.2, 0.2, 0.15, 0.15],
        "seg_school_ses_D": [0.5, 0.5, 0.4, 0.4], "pupils_ses0": [1000.0, 1000.0, 990, 990],
        "outmigration_rate": [0.03, 0.03, 0.02, 0.02], "n_families": [5000.0] * 4})
    effects = paired_effects(raw, ("seg_school_ses_H", "seg_school_ses_D", "outmigration_rate"))
    ctx = Context(raw, effects)
    h = effects[effects["metric"] == "seg_school_ses_H"].iloc[0]
    main, extra = size(h, ctx, EN)
    assert main == "-0.050 (H)"
    # 0.05 of 0.2 is a quarter of the way to H = 0; D falls by 0.1 of 1,000 low-status pupils.
    assert extra == ("25.0\u00a0% of the way to a fully mixed city; by the dissimilarity index, "
                     "100 fewer low-status pupils would need to change school for an even mix")
    out = effects[effects["metric"] == "outmigration_rate"].iloc[0]
    assert size(out, ctx, EN) == ("-1.0\u00a0percentage points",
                                  "baseline 3.0\u00a0%; -50 families a year")
    assert size(out, ctx, Text("fi"))[0] == "-1,0\u00a0prosenttiyksikköä"


# ------------------------------------------------ baseline against a copy of itself, 40 seeds
SEEDS = 40  # independent self-against-self comparisons
# Replicates per arm: the default comparison's 12. The rule reads the far tail of the paired
# t-test (BH's first threshold is 5% / 28 cells); with few pairs that tail is less reliable
# (docs/report.md: 34 of 40 seeds clean at 4 replicates, 36 at 8, 38 at 12).
ARM = 12


@pytest.fixture(scope="module")
def baseline_runs(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """One real comparison of the baseline alone, 2 x 40 x 12 replicates of a tiny city."""
    cfg = OmegaConf.to_object(OmegaConf.merge(
        OmegaConf.structured(CompareConfig),
        OmegaConf.from_dotlist([*TINY_VALUES, "scenarios=[baseline]",
                                f"replicates={2 * SEEDS * ARM}", "years=4", "horizons=[2,4]",
                                "lang=en",
                                "evaluation.n_jobs=2", "evaluation.chunk_size=16"])))
    out = tmp_path_factory.mktemp("self") / "run"
    result = compare(cfg, out, progress=False)
    assert (out / "report.html").exists()  # the report of the baseline alone is written too
    assert {"pupils", "pupils_ses0"} <= set(result["raw"].columns)
    return result["raw"]


def self_comparison(raw: pd.DataFrame, k: int) -> pd.DataFrame:
    """Seed k: the first ARM of replicates 2*ARM*k.. as the baseline, the next ARM as the copy
    (independent random numbers)."""
    first = 2 * ARM * k
    base = raw[raw["replicate"].between(first, first + ARM - 1)].copy()
    copy = raw[raw["replicate"].between(first + ARM, first + 2 * ARM - 1)].copy()
    base["replicate"] -= first
    copy["replicate"] -= first + ARM
    copy["scenario"] = "baseline_copy"
    return pd.concat([base, copy], ignore_index=True)


def test_baseline_against_itself_shows_no_clear_cell(baseline_runs: pd.DataFrame) -> None:
    """The report's rule keeps chance findings rare: >= 95% of 40 seeds without a clear cell.

    Without the correction (each cell at p < 0.05 on its own) chance findings are common.
    """
    clear, raw_p = [], []
    for k in range(SEEDS):
        pair = self_comparison(baseline_runs, k)
        cells = report_cells(paired_effects(pair), [2, 4])
        assert len(cells) == len(REPORTED) * 2
        clear.append(bool(cells["clear"].any()))
        raw_p.append(bool((cells["p_value"] < FDR).any()))
    rate = 1 - np.mean(clear)
    log.warning("self-against-self: %d of %d seeds without a clear cell (%.0f%%); without the "
                "correction %d of %d", SEEDS - sum(clear), SEEDS, 100 * rate,
                SEEDS - sum(raw_p), SEEDS)
    assert rate >= 0.95, (sum(clear), sum(raw_p))
    assert sum(raw_p) > sum(clear)  # the correction is what keeps them out


def test_identical_copy_has_zero_differences(baseline_runs: pd.DataFrame) -> None:
    """With common random numbers an identical copy differs nowhere: nothing can be clear."""
    pair = baseline_runs[baseline_runs["replicate"] < ARM]
    pair = pd.concat([pair, pair.assign(scenario="baseline_copy")], ignore_index=True)
    cells = report_cells(paired_effects(pair), [2, 4])
    assert (cells["mean_diff"] == 0).all() and not cells["clear"].any()
