"""Effects over posterior draws x seeds: the decomposition, the draws and a real comparison."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from scipy import stats

from conftest import TINY_VALUES, tiny_config
from experiments.compare import CompareConfig, compare, split
from experiments.uncertainty import decompose, draw_values

KEY = "behaviour.mobility.base_logit"


def posterior_file(tmp_path: Path, values: list[float], weights: list[float]) -> Path:
    path = tmp_path / "posterior.csv"
    pd.DataFrame({KEY: values, "weight": weights, "distance": 1.0}).to_csv(path, index=False)
    return path


def test_decomposition_recovers_known_variance_components() -> None:
    rng = np.random.default_rng(0)
    k, r, tau, sigma = 400, 6, 0.3, 0.5
    effect = 1.0 + tau * rng.standard_normal(k)
    d = pd.DataFrame({"draw": np.repeat(np.arange(k), r),
                      "d": np.repeat(effect, r) + sigma * rng.standard_normal(k * r)})
    out = decompose(d)
    assert out["tau2_params"] == pytest.approx(tau**2, rel=0.15)
    assert out["sigma2_chance"] == pytest.approx(sigma**2, rel=0.05)
    assert out["param_share"] == pytest.approx(tau**2 / (tau**2 + sigma**2), abs=0.05)
    # The interval is where the true parameters' effect lies: about 95% of the draws' own.
    inside = ((effect >= out["ci_low"]) & (effect <= out["ci_high"])).mean()
    assert 0.92 <= inside <= 0.98
    assert out["ci_high_chance"] - out["ci_low_chance"] < out["ci_high"] - out["ci_low"]


def test_no_parameter_spread_gives_the_chance_interval() -> None:
    d = pd.DataFrame({"draw": np.repeat(np.arange(4), 5), "d": np.tile(
        [0.1, -0.1, 0.2, -0.2, 0.0], 4)})
    out = decompose(d)
    assert out["tau2_params"] == 0 and out["param_share"] == 0
    assert out["ci_high"] - out["ci_low"] == pytest.approx(
        2 * stats.t.ppf(0.975, 16) * math.sqrt(out["sigma2_chance"] / 20))


def test_draws_follow_the_weights_and_are_reproducible(tmp_path) -> None:
    path = posterior_file(tmp_path, [-3.0, -2.0, -1.0], [0.0, 3.0, 1.0])
    base = tiny_config()
    draws = draw_values(path, 8, 5, base)
    assert draws == draw_values(path, 8, 5, base)
    got = [d[KEY] for d in draws]
    assert -3.0 not in got and got.count(-2.0) == 6 and got.count(-1.0) == 2


@pytest.mark.parametrize(("frame", "message"), [
    (pd.DataFrame({"nope.key": [1.0], "weight": [1.0]}), "column 'nope.key' is not a config"),
    (pd.DataFrame({KEY: [1.0], "weight": [0.0]}), "weight must be finite"),
    (pd.DataFrame({"weight": [1.0]}), "has no parameter columns and weight"),
])
def test_bad_posterior_files_are_refused(tmp_path, frame, message) -> None:
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match=message):
        draw_values(path, 2, 0, tiny_config())
    with pytest.raises(ValueError, match="does not exist"):
        draw_values(tmp_path / "missing.csv", 2, 0, tiny_config())


@pytest.mark.parametrize(("options", "message"), [
    ({"uncertainty": "vibes"}, "uncertainty='vibes' is not allowed"),
    ({"draws": 1}, "draws=1 is not allowed; expected an integer >= 2"),
])
def test_uncertainty_options_are_checked(options, message) -> None:
    with pytest.raises(ValueError, match=message):
        split(CompareConfig(**options))


def test_a_posterior_comparison_pairs_by_draw_and_seed(tmp_path) -> None:
    path = posterior_file(tmp_path, [-3.2, -2.2], [1.0, 1.0])
    cfg = OmegaConf.to_object(OmegaConf.merge(
        OmegaConf.structured(CompareConfig),
        OmegaConf.from_dotlist([*TINY_VALUES, "scenarios=[baseline,engagement]",
                                "replicates=2", "years=3", "evaluation.backend=serial",
                                "uncertainty=posterior", "draws=2", f"posterior={path}"])))
    result = compare(cfg, tmp_path / "out", progress=False)
    raw = result["raw"]
    assert len(raw) == 2 * 2 * 2 * 4  # scenarios x draws x seeds x years
    # The same draw and seed in both scenarios; the draws' parameters differ (move rates).
    assert raw.groupby("replicate")[["seed", "draw"]].nunique().eq(1).all().all()
    base = raw[(raw["scenario"] == "baseline") & (raw["year"] == 3)]
    assert base.groupby("draw")["move_rate"].mean().diff().abs().iloc[1] > 0.005
    eff = pd.read_csv(tmp_path / "out" / "effects.csv")
    row = eff[(eff["metric"] == "seg_school_ses_H") & (eff["year"] == 3)].iloc[0]
    assert row["n_draws"] == 2 and row["n_replicates"] == 4
    assert row["ci_low"] <= row["ci_low_chance"] <= row["mean_diff"] <= row["ci_high_chance"]
    assert 0 <= row["param_share"] <= 1
    assert (tmp_path / "out" / "report.html").is_file()
