"""The model the Mesa way: keyword parameters, ``datacollector``, ``mesa.batch_run``."""

from __future__ import annotations

import mesa
import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import TINY, tiny_config
from scenarios import ScenarioModel
from sim.config import config_from_params, preset_families
from sim.model import SegregationModel

# The tiny city of conftest.TINY as keyword parameters (dotted keys, Python values).
TINY_PARAMS = {key: yaml.safe_load(value) for key, value in (ov.split("=") for ov in TINY)}


def test_keyword_parameters_build_the_same_config_as_overrides() -> None:
    expected = tiny_config("seed=5", "city.n_families=300")
    dotted = config_from_params(seed=5, **{**TINY_PARAMS, "city.n_families": 300})
    underscored = config_from_params(rng=5, city__n_families=300,
                                     **{k.replace(".", "__"): v for k, v in TINY_PARAMS.items()
                                        if k != "city.n_families"})
    assert dotted == expected
    assert underscored == expected


def test_presets_strings_and_lists_pass_through_hydra() -> None:
    cfg = config_from_params(city="helsinki", scenario="engagement",
                             **{"scenario.description": "A plan, with 'quotes' = and commas",
                                "city.ses_shares_native": [0.2, 0.5, 0.3],
                                "behaviour.reputation.feedback": False})
    assert cfg.city.preset == "helsinki" and cfg.city.n_families == preset_families("helsinki")
    assert cfg.scenario.name == "engagement"
    assert cfg.scenario.description == "A plan, with 'quotes' = and commas"
    assert cfg.city.ses_shares_native == [0.2, 0.5, 0.3]
    assert cfg.behaviour.reputation.feedback is False
    assert config_from_params().seed == 0  # no seed: the config's, so runs are reproducible


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"city.n_familys": 3}, ValueError, "n_familys"),
    ({"city.foreign_share": 1.5}, ValueError, "city.foreign_share=1.5"),
    ({"city": "tampere"}, ValueError, "city='tampere' is not a preset"),
    ({"seed": 1, "rng": 2}, ValueError, "disagree"),
    ({"rng": np.random.default_rng(1)}, TypeError, "integer seed"),
])
def test_bad_parameters_name_the_problem(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        config_from_params(**kwargs)


def test_model_takes_cfg_or_parameters_not_both() -> None:
    with pytest.raises(TypeError, match="either cfg or keyword"):
        SegregationModel(tiny_config(), seed=1)


def test_datacollector_holds_the_yearly_metrics() -> None:
    model = SegregationModel(seed=2, **{**TINY_PARAMS, "years": 3})
    assert isinstance(model.datacollector, mesa.DataCollector)
    while model.running:
        model.step()
    assert model.year == 3 and model.steps == 3
    df = model.datacollector.get_model_vars_dataframe()
    assert list(df["year"]) == [0, 1, 2, 3]  # year 0 and once per year
    assert df.iloc[-1].to_dict() == pytest.approx(model.recorder.current, nan_ok=True)


def test_batch_run_on_the_model_and_on_scenarios() -> None:
    params = {**TINY_PARAMS, "years": 2, "city.n_families": [300, 400]}
    rows = mesa.batch_run(SegregationModel, params, rng=[1, 2], data_collection_period=1,
                          number_processes=1, display_progress=False)
    df = pd.DataFrame(rows)
    assert len(df) == 2 * 2 * 3  # families x seeds x (year 0 + 2 years)
    assert set(df["seed"]) == {1, 2} and list(df["year"][:3]) == [0, 1, 2]
    direct = SegregationModel(tiny_config("seed=2", "years=2", "city.n_families=400"))
    direct.run()
    last = df[(df["seed"] == 2) & (df["city.n_families"] == 400) & (df["year"] == 2)]
    assert last["seg_school_ses_H"].item() == direct.recorder.current["seg_school_ses_H"]

    rows = mesa.batch_run(ScenarioModel, {**TINY_PARAMS, "years": 2,
                                          "scenario": ["baseline", "engagement"]},
                          rng=[3], number_processes=1, display_progress=False)
    cost = {r["scenario"]: r["policy_cost_eur"] for r in rows}
    assert cost["baseline"] == 0 and cost["engagement"] > 0


def test_scenario_model_uses_the_scenario_levers_and_custom_specs() -> None:
    model = ScenarioModel("tp_funding", seed=1, **TINY_PARAMS)
    assert [lv.lever_name for lv in model.levers] == ["tp_funding", "tp_funding"]
    spec = {"lever": "engagement", "coverage": 0.5, "target": "renewal"}
    custom = ScenarioModel(seed=1, **TINY_PARAMS, **{"scenario.name": "mine",
                                                     "scenario.levers": [spec]})
    assert custom.cfg.scenario.name == "mine"
    assert [(lv.lever_name, lv.coverage) for lv in custom.levers] == [("engagement", 0.5)]
