"""Tests for sim.config: one test per error message of ``validate`` / ``load_config``.

Every check in ``validate`` (each ``fail``, ``real``, ``share``, ``positive_int``, ``length``
and ``sums_to_one`` call and every cross-field rule) has a case below that trips exactly that
check, and the message must name the key, the offending value and what is allowed.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from sim.config import (
    CONF_DIR,
    PRESETS,
    Config,
    as_dict,
    flat_fields,
    load_config,
    to_object,
    validate,
)
from sim.geo_sample import SAMPLE_DIR, SAMPLE_FILES

ROOT = Path(__file__).resolve().parent.parent

B = "behaviour"
DEM, PREF, MOB = f"{B}.demography", f"{B}.preferences", f"{B}.mobility"
DC, SCH, OUT, REP = f"{B}.daycare", f"{B}.school", f"{B}.outcomes", f"{B}.reputation"

SHARE = "values in [0.0, 1.0]"
LEN3 = "a list of length 3"
LEN2 = "a list of length 2"
SUM1 = "shares that sum to 1"
LAND = "at most a quarter of the land cells (324)"  # 44 x 36 x (1 - 0.18) / 4, small preset


def case(override: str, shown: str, allowed: str, *extra: str):
    """One parametrised case: ``override`` must fail naming ``shown`` and ``allowed``."""
    key = override.partition("=")[0]
    return pytest.param([*extra, override], shown, allowed, id=key + ":" + allowed[:24])


# (override list, "key=value" as the message shows it, the allowed values in the message)
VALIDATE_CASES = [
    # ----------------------------------------------------------------- top level
    case("city.preset=foo", "city.preset='foo'",
         "the preset chosen as a group, e.g. city=helsinki"),
    case("seed=-1", "seed=-1", "a non-negative integer"),
    case("city.seed=-2", "city.seed=-2", "a non-negative integer"),
    case("behaviour.preferences.n_local_candidates=-1",
         "behaviour.preferences.n_local_candidates=-1", "values in [0, 256]"),
    case("behaviour.preferences.local_radius_km=0", "behaviour.preferences.local_radius_km=0.0",
         "values in (0.0, 50.0]"),
    case("years=0", "years=0", "an integer in [1, 500]"),
    case("threads=0", "threads=0", f"an integer in [1, {os.cpu_count()}]"),
    case("years=501", "years=501", "an integer in [1, 500]"),
    case("threads=0", "threads=0", f"an integer in [1, {os.cpu_count() or 1}]"),
    case("burn_in_years=-1", "burn_in_years=-1", "values in [0, 500]"),
    case("burn_in_years=501", "burn_in_years=501", "values in [0, 500]"),
    case("start=warm", "start='warm'", "one of ['settled', 'fresh']"),
    # ----------------------------------------------------------------- city integers
    *[case(f"city.{k}=0", f"city.{k}=0", "an integer in [1, 1000000000]")
      for k in ("width", "height", "n_families", "n_districts", "n_lower_schools",
                "n_upper_schools", "n_daycares")],
    case("city.n_renewal_areas=-1", "city.n_renewal_areas=-1", "values in [0, 1000000]"),
    case("city.cell_size_m=0.5", "city.cell_size_m=0.5", "values in [10.0, 5000.0]"),
    case("city.cell_size_m=nan", "city.cell_size_m=nan", "values in [10.0, 5000.0]"),
    case("city.cell_size_m=1e9", "city.cell_size_m=1000000000.0", "values in [10.0, 5000.0]"),
    # ----------------------------------------------------------------- city shares
    *[case(f"city.{k}=1.5", f"city.{k}=1.5", SHARE)
      for k in ("private_daycare_share", "sea_share", "social_share", "owner_share",
                "renewal_social_share", "foreign_share", "emphasis_school_share",
                "emphasis_seat_share")],
    case("city.sea_share=-0.1", "city.sea_share=-0.1", SHARE),
    case("city.ses_shares_native=[1.5,-0.5,0.0]", "city.ses_shares_native=[1.5, -0.5, 0.0]",
         SHARE),
    case("city.ses_shares_foreign=[1.5,-0.5,0.0]", "city.ses_shares_foreign=[1.5, -0.5, 0.0]",
         SHARE),
    case("city.low_edu_by_ses=[0.5,0.1]", "city.low_edu_by_ses=[0.5, 0.1]", LEN3),
    case("city.low_edu_by_ses=[1.5,0.1,0.0]", "city.low_edu_by_ses=[1.5, 0.1, 0.0]", SHARE),
    case("city.unemployed_by_ses=[0.5,0.1]", "city.unemployed_by_ses=[0.5, 0.1]", LEN3),
    case("city.unemployed_by_ses=[0.5,-0.1,0.0]", "city.unemployed_by_ses=[0.5, -0.1, 0.0]",
         SHARE),
    case("city.unemployed_foreign_extra=0.6", "city.unemployed_foreign_extra=0.6",
         "values in [0.0, 0.5]"),
    # ----------------------------------------------------------------- city cross-field
    case("city.sea_share=0.7", "city.sea_share=0.7", "at most 0.6 so the city has land"),
    case("city.owner_share=0.9", "city.owner_share=0.9", "at most 1 - city.social_share = 0.8"),
    case("city.social_share=0.6", "city.owner_share=0.45", "at most 1 - city.social_share = 0.4"),
    case("city.ses_shares_native=[0.5,0.5]", "city.ses_shares_native=[0.5, 0.5]", LEN3),
    case("city.ses_shares_native=[0.5,0.4,0.05]", "city.ses_shares_native=[0.5, 0.4, 0.05]",
         SUM1),
    case("city.ses_shares_foreign=[0.5,0.5]", "city.ses_shares_foreign=[0.5, 0.5]", LEN3),
    case("city.ses_shares_foreign=[0.5,0.4,0.05]", "city.ses_shares_foreign=[0.5, 0.4, 0.05]",
         SUM1),
    case("city.dwellings_per_family=1.0", "city.dwellings_per_family=1.0", "values in (1.0, 3.0]"),
    case("city.dwellings_per_family=3.5", "city.dwellings_per_family=3.5", "values in (1.0, 3.0]"),
    case("city.school_capacity_slack=0.9", "city.school_capacity_slack=0.9",
         "values in [1.0, 5.0]"),
    case("city.daycare_capacity_slack=5.5", "city.daycare_capacity_slack=5.5",
         "values in [1.0, 5.0]"),
    case("city.n_renewal_areas=40", "city.n_renewal_areas=40", "fewer than city.n_districts = 40"),
    case("city.n_districts=4", "city.n_renewal_areas=4", "fewer than city.n_districts = 4"),
    *[case(f"city.{k}=400", f"city.{k}=400", LAND)
      for k in ("n_districts", "n_lower_schools", "n_upper_schools", "n_daycares")],
    # ----------------------------------------------------------------- demography
    case(f"{DEM}.birth_prob=1.5", f"{DEM}.birth_prob=1.5", SHARE),
    case(f"{DEM}.birth_max_parent_age=17", f"{DEM}.birth_max_parent_age=17", "values in [18, 60]"),
    case(f"{DEM}.max_children=4", f"{DEM}.max_children=4", "values in [1, 3]"),
    case(f"{DEM}.arrival_ratio=3.5", f"{DEM}.arrival_ratio=3.5", "values in [0.0, 3.0]"),
    case(f"{DEM}.arrival_foreign_share=-0.1", f"{DEM}.arrival_foreign_share=-0.1", SHARE),
    case(f"{DEM}.children_probs=[0.5,0.5]", f"{DEM}.children_probs=[0.5, 0.5]", LEN3),
    case(f"{DEM}.children_probs=[1.5,-0.5,0.0]", f"{DEM}.children_probs=[1.5, -0.5, 0.0]",
         SHARE),
    case(f"{DEM}.children_probs=[0.5,0.3,0.1]", f"{DEM}.children_probs=[0.5, 0.3, 0.1]", SUM1),
    case(f"{DEM}.youngest_decay=0", f"{DEM}.youngest_decay=0.0", "values in [0.001, 1.0]"),
    case(f"{DEM}.arrival_youngest_decay=1.5", f"{DEM}.arrival_youngest_decay=1.5",
         "values in [0.001, 1.0]"),
    case(f"{DEM}.sibling_gap_max=0", f"{DEM}.sibling_gap_max=0", "values in [1, 10]"),
    case(f"{DEM}.parent_age_min=14", f"{DEM}.parent_age_min=14", "values in [15, 60]"),
    case(f"{DEM}.parent_age_max=20", f"{DEM}.parent_age_max=20", "values in [25, 70]"),
    case(f"{DEM}.outmig_logit=[[-3.0,-3.0,-3.0],[-4.0,-4.0,-4.0]]",
         f"{DEM}.outmig_logit=[[-3.0, -3.0, -3.0], [-4.0, -4.0, -4.0]]",
         "a list of length 3 x 3"),
    case(f"{DEM}.outmig_logit=[[-3.0,-3.0],[-4.0,-4.0],[-5.0,-5.0]]",
         f"{DEM}.outmig_logit=[[-3.0, -3.0], [-4.0, -4.0], [-5.0, -5.0]]",
         "a list of length 3 x 3"),
    case(f"{DEM}.outmig_logit=[[-3.0,-3.0,-3.0],[-4.0,-4.0,-4.0],[-5.0,-5.0,6.0]]",
         f"{DEM}.outmig_logit=[[-3.0, -3.0, -3.0], [-4.0, -4.0, -4.0], [-5.0, -5.0, 6.0]]",
         "values in [-20, 5]"),
    # ----------------------------------------------------------------- preferences
    case(f"{PREF}.n_candidates=0", f"{PREF}.n_candidates=0", "an integer in [1, 256]"),
    case(f"{PREF}.n_candidates=257", f"{PREF}.n_candidates=257", "an integer in [1, 256]"),
    case(f"{PREF}.x0=0", f"{PREF}.x0=0.0", "values in [0.01, 0.99]"),
    case(f"{PREF}.x0=1.0", f"{PREF}.x0=1.0", "values in [0.01, 0.99]"),
    case(f"{PREF}.m_homog=1.5", f"{PREF}.m_homog=1.5", SHARE),
    case(f"{PREF}.local_weight=-0.1", f"{PREF}.local_weight=-0.1", SHARE),
    *[case(f"{PREF}.{k}=[1.0,1.0]", f"{PREF}.{k}=[1.0, 1.0]", LEN3)
      for k in ("w_comp_ses", "w_school", "w_amenity", "budget", "tenure_cost")],
    case(f"{PREF}.w_comp_lang=[1.0]", f"{PREF}.w_comp_lang=[1.0]", LEN2),
    case(f"{PREF}.tenure_taste=[[0.0,0.0],[0.0,0.0],[0.0,0.0]]",
         f"{PREF}.tenure_taste=[[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]", "a list of length 3 x 3"),
    case(f"{PREF}.budget=[0.0,0.72,1.05]", f"{PREF}.budget=[0.0, 0.72, 1.05]",
         "values in [0.01, 10.0]"),
    case(f"{PREF}.tenure_cost=[-0.1,0.8,1.0]", f"{PREF}.tenure_cost=[-0.1, 0.8, 1.0]",
         "values in [0.0, 10.0]"),
    case(f"{PREF}.w_afford=-1", f"{PREF}.w_afford=-1.0", "values in [0.0, 1000.0]"),
    case(f"{PREF}.w_distance=101", f"{PREF}.w_distance=101.0", "values in [0.0, 100.0]"),
    case(f"{PREF}.social_max_ses=3", f"{PREF}.social_max_ses=3", "values in [0, 2]"),
    # ----------------------------------------------------------------- mobility
    *[case(f"{MOB}.{k}=[1.0,1.0]", f"{MOB}.{k}=[1.0, 1.0]", LEN3)
      for k in ("age_band", "tenure", "ses", "space")],
    case(f"{MOB}.space=[0.0,1.5,3.0]", f"{MOB}.space=[0.0, 1.5, 3.0]", "values in [0.1, 10.0]"),
    # ----------------------------------------------------------------- daycare
    case(f"{DC}.join_prob=[0.5,0.5,0.5,0.5,0.5]", f"{DC}.join_prob=[0.5, 0.5, 0.5, 0.5, 0.5]",
         "a list of length 6"),
    case(f"{DC}.join_prob=[1.5,0.5,0.5,0.5,0.5,0.5]",
         f"{DC}.join_prob=[1.5, 0.5, 0.5, 0.5, 0.5, 0.5]", SHARE),
    case(f"{DC}.foreign_join_factor=1.5", f"{DC}.foreign_join_factor=1.5", SHARE),
    case(f"{DC}.n_nearest=0", f"{DC}.n_nearest=0", "an integer in [1, 64]"),
    case(f"{DC}.n_nearest=65", f"{DC}.n_nearest=65", "an integer in [1, 64]"),
    case(f"{DC}.w_reputation=[1.0,1.0]", f"{DC}.w_reputation=[1.0, 1.0]", LEN3),
    case(f"{DC}.w_private=[1.0,1.0]", f"{DC}.w_private=[1.0, 1.0]", LEN3),
    case(f"{DC}.rechoose_km=-1", f"{DC}.rechoose_km=-1.0", "values in [0.0, 100.0]"),
    # ----------------------------------------------------------------- school
    case(f"{SCH}.look_prob=[0.1,0.1]", f"{SCH}.look_prob=[0.1, 0.1]", LEN3),
    case(f"{SCH}.look_prob=[0.1,0.1,1.5]", f"{SCH}.look_prob=[0.1, 0.1, 1.5]", SHARE),
    case(f"{SCH}.info_mean=[0.5]", f"{SCH}.info_mean=[0.5]", LEN2),
    case(f"{SCH}.info_mean=[0.5,-0.5]", f"{SCH}.info_mean=[0.5, -0.5]", "values in (0.0, 1.0]"),
    case(f"{SCH}.info_mean=[0.5,0.0]", f"{SCH}.info_mean=[0.5, 0.0]", "values in (0.0, 1.0]"),
    case(f"{SCH}.info_concentration=0", f"{SCH}.info_concentration=0.0",
         "values in (0.0, 1000.0]"),
    case(f"{SCH}.g7_look_factor=11", f"{SCH}.g7_look_factor=11.0", "values in [0.0, 10.0]"),
    case(f"{SCH}.g7_distance_factor=0.01", f"{SCH}.g7_distance_factor=0.01",
         "values in [0.05, 10.0]"),
    case(f"{SCH}.n_ranked=17", f"{SCH}.n_ranked=17", "an integer in [1, 16]"),
    case(f"{SCH}.max_km=0", f"{SCH}.max_km=0.0", "values in (0.0, 1000.0]"),
    *[case(f"{SCH}.{k}=[1.0,1.0]", f"{SCH}.{k}=[1.0, 1.0]", LEN3)
      for k in ("w_reputation", "w_composition", "w_distance", "w_emphasis", "look_reputation")],
    case(f"{SCH}.w_distance=[-0.1,0.6,0.5]", f"{SCH}.w_distance=[-0.1, 0.6, 0.5]",
         "values in [0.0, 100.0]"),
    case(f"{SCH}.aptitude_ses_corr=1.5", f"{SCH}.aptitude_ses_corr=1.5", "values in [-1.0, 1.0]"),
    # ----------------------------------------------------------------- outcomes, reputation
    case(f"{OUT}.ses_effect=[1.0,1.0]", f"{OUT}.ses_effect=[1.0, 1.0]", LEN3),
    case(f"{OUT}.adjustment=1.5", f"{OUT}.adjustment=1.5", SHARE),
    case(f"{OUT}.turnover_base=-0.1", f"{OUT}.turnover_base=-0.1", SHARE),
    case(f"{OUT}.noise_sd=11", f"{OUT}.noise_sd=11.0", "values in [0.0, 10.0]"),
    case(f"{REP}.inertia=1.5", f"{REP}.inertia=1.5", SHARE),
    case(f"{REP}.w_composition=[1.0]", f"{REP}.w_composition=[1.0]", LEN2),
    case(f"{REP}.outcome_scale=0", f"{REP}.outcome_scale=0.0", "values in [0.01, 100.0]"),
    case(f"{REP}.composition_scale=101", f"{REP}.composition_scale=101.0",
         "values in [0.01, 100.0]"),
]


DEFAULTS = flat_fields(Config())
NUMBER_KEYS = sorted(k for k, v in DEFAULTS.items()
                     if isinstance(v, float | list) and k != "scenario.levers")
FLAG_KEYS = sorted(k for k, v in DEFAULTS.items() if isinstance(v, bool))


def with_value(key: str, value: object) -> dict:
    """The default config as a dict, with ``key`` set to ``value``."""
    tree = as_dict(Config())
    *parents, leaf = key.split(".")
    node = tree
    for part in parents:
        node = node[part]
    node[leaf] = value
    return tree


def first_nan(value: object) -> object:
    """``value`` with its first number replaced by NaN (same shape)."""
    if isinstance(value, list):
        return [first_nan(value[0]), *value[1:]]
    return math.nan


@pytest.mark.parametrize("key", NUMBER_KEYS)
def test_every_float_refuses_nan_and_inf(key):
    """Issue #7: every float in the config is finite and in a documented range."""
    bads = [first_nan(DEFAULTS[key])]
    if not isinstance(DEFAULTS[key], list):
        bads += [math.inf, -math.inf]
    for bad in bads:
        with pytest.raises(ValueError, match=rf"^config error: {re.escape(key)}=.* is not "
                                             "allowed; expected "):
            validate(with_value(key, bad))


@pytest.mark.parametrize("key", FLAG_KEYS)
def test_every_flag_refuses_numbers(key):
    """``behaviour.reputation.feedback=2`` is refused, not read as true."""
    pattern = rf"^config error: {re.escape(key)}=2 is not allowed; expected true or false$"
    with pytest.raises(ValueError, match=pattern):
        validate(with_value(key, 2))
    with pytest.raises(ValueError, match=pattern):
        load_config([f"{key}=2"])


@pytest.mark.parametrize(("overrides", "shown", "allowed"), VALIDATE_CASES)
def test_validate_error_names_key_value_and_allowed(overrides, shown, allowed):
    pattern = rf"^config error: {re.escape(shown)} is not allowed; expected {re.escape(allowed)}$"
    with pytest.raises(ValueError, match=pattern):
        load_config(overrides)


def test_every_checked_key_has_a_case(monkeypatch):
    """Every key that ``validate`` range-checks has at least one failing case above."""
    from sim import config as config_mod

    seen: set[str] = set()
    get = config_mod._Checker.get

    def spy(self, key):
        seen.add(key)
        return get(self, key)

    monkeypatch.setattr(config_mod._Checker, "get", spy)
    validate(Config())
    tested = {shown.partition("=")[0] for _, shown, _ in (p.values for p in VALIDATE_CASES)}
    tested |= set(NUMBER_KEYS) | set(FLAG_KEYS) | {"scenario.name", "scenario.description",
                                                   "scenario.levers"}
    assert len(seen) > 60
    assert seen <= tested, sorted(seen - tested)


def test_validate_on_dataclass_and_dict_gives_same_message():
    cfg = Config()
    cfg.city.foreign_share = 1.5
    with pytest.raises(ValueError, match=r"city\.foreign_share=1\.5 is not allowed"):
        validate(cfg)
    with pytest.raises(ValueError, match=r"city\.foreign_share=1\.5 is not allowed"):
        validate({"city": {"foreign_share": 1.5}})


@pytest.mark.parametrize(
    ("overrides", "parts"),
    [
        pytest.param(["city=foo"],
                     ["city='foo' is not a preset; allowed: small, helsinki, from_files"],
                     id="city=foo"),
        pytest.param(["seed=1", "city=foo"], ["city='foo' is not a preset"], id="city=foo-late"),
        pytest.param(["nosuch=1"], ["Could not override 'nosuch'", "nosuch=1"], id="unknown-key"),
        pytest.param(["city.nosuch=1"], ["Could not override 'city.nosuch'", "city.nosuch=1"],
                     id="unknown-nested-key"),
        pytest.param(["years=abc"], ["years=abc", "could not be converted to Integer"],
                     id="years=abc"),
        pytest.param(["seed=1.5"], ["seed=1.5", "could not be converted to Integer"],
                     id="seed=1.5"),
        pytest.param(["city.foreign_share=high"], ["city.foreign_share=high", "Float"],
                     id="foreign_share=high"),
        pytest.param(["behaviour.school.enabled=maybe"],
                     ["behaviour.school.enabled='maybe'", "expected true or false"],
                     id="enabled=maybe"),
    ],
)
def test_load_config_override_errors(overrides, parts):
    """Hydra/OmegaConf errors name the key and value, and say what was expected."""
    with pytest.raises(ValueError) as info:
        load_config(overrides)
    msg = str(info.value)
    for part in parts:
        assert part in msg, (part, msg)


def test_defaults_validate():
    cfg = validate(Config())
    assert cfg == Config()
    # conf/city/small.yaml restates the schema defaults; behaviour=default is the schema's
    assert load_config(["behaviour=default"]) == Config()
    assert load_config(None) == load_config([])


@pytest.mark.parametrize("preset", PRESETS)
def test_the_calibrated_behaviour_of_each_preset_is_the_default(preset):
    cfg = load_config(preset_overrides(preset))
    fit = "helsinki" if preset == "from_files" else preset  # a real city takes Helsinki's fit
    shipped = OmegaConf.load(CONF_DIR / "behaviour" / f"calibrated_{fit}.yaml")
    assert cfg.behaviour != Config().behaviour
    for group, values in shipped.items():
        for key, value in values.items():
            assert getattr(getattr(cfg.behaviour, group), key) == value, (group, key)


def preset_overrides(preset: str) -> list[str]:
    """Select a preset; ``from_files`` also needs its files (the shipped sample)."""
    if preset != "from_files":
        return [f"city={preset}"]
    return ["city=from_files", *(f"city.{k}={SAMPLE_DIR / v}" for k, v in SAMPLE_FILES.items())]


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_validate(preset):
    cfg = load_config([*preset_overrides(preset), "behaviour=default"])
    assert cfg.city.preset == preset
    assert validate(as_dict(cfg)) == cfg  # round trip through a plain dict
    # with behaviour=default every behavioural value is the schema default
    assert cfg.behaviour == Config().behaviour
    assert cfg.seed == 0 and cfg.years == Config().years


def test_helsinki_preset_is_larger():
    small, big = load_config(["city=small"]), load_config(["city=helsinki"])
    assert big.city.n_families > small.city.n_families
    assert big.city.width * big.city.height > small.city.width * small.city.height


def test_every_schema_default_is_valid_for_each_preset():
    """Setting any single key to its own schema default keeps each preset valid."""
    defaults = flat_fields(Config())
    for preset in PRESETS:
        base = as_dict(load_config(preset_overrides(preset)))
        for key, value in defaults.items():
            if key.startswith("city.") or key == "scenario":
                continue  # city keys are the preset's; scenario is filled by its group
            tree = base
            *parents, leaf = key.split(".")
            for part in parents:
                tree = tree[part]
            tree[leaf] = value
        assert validate(base) == to_object(base)


def test_to_object_is_idempotent_and_typed():
    cfg = load_config(["seed=3", "city.foreign_share=0.3"])
    assert isinstance(cfg, Config)
    assert to_object(cfg) is cfg
    assert cfg.seed == 3 and cfg.city.foreign_share == 0.3
    for c in (cfg, load_config(["city=helsinki", "scenario=tp_area_based"]), Config()):
        # as_dict's fast way: the same tree, and the same JSON (hashes), as OmegaConf's
        slow = OmegaConf.to_container(OmegaConf.structured(c), resolve=True)
        assert as_dict(c) == slow
        assert json.dumps(as_dict(c), sort_keys=True) == json.dumps(slow, sort_keys=True)


def test_cli_rejects_bad_config_without_output(tmp_path):
    run_dir = tmp_path / "x"
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.run", "city.foreign_share=1.5",
         f"hydra.run.dir={run_dir}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    assert proc.returncode != 0
    assert "city.foreign_share=1.5 is not allowed" in proc.stderr, proc.stderr
    assert "expected values in [0.0, 1.0]" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not run_dir.exists(), list(run_dir.rglob("*"))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ issue #7: new messages
ISSUE_COMMANDS = [
    (["city.n_families=30", "years=2"], "city.n_families=30",
     "at least 10 families per school and daycare (360 for 36 units of one kind)"),
    (["city.n_families=1000000000"], "city.n_families=1000000000",
     "a city this machine can hold: the run needs about"),
    (["city.width=1000000000"], "city.width=1000000000",
     "a city this machine can hold: the run needs about"),
    (["behaviour.outcomes.peer_effect=nan"], "behaviour.outcomes.peer_effect=nan",
     "values in [-10.0, 10.0]"),
    (["behaviour.mobility.base_logit=nan"], "behaviour.mobility.base_logit=nan",
     "values in [-20.0, 20.0]"),
    (["behaviour.demography.outmig_dissatisfaction=inf"],
     "behaviour.demography.outmig_dissatisfaction=inf", "values in [-20.0, 20.0]"),
    (["behaviour.daycare.w_resources=nan"], "behaviour.daycare.w_resources=nan",
     "values in [-20.0, 20.0]"),
    (["+behaviour.school.lookprob=0.5"], "behaviour.school.lookprob=0.5",
     "a known key; behaviour.school has enabled, look_prob"),
    (["+foo=1"], "foo=1", "a known key; the config has seed, years"),
    (["behaviour.demography.birth_max_parent_age=18"],
     "behaviour.demography.birth_max_parent_age=18",
     "above behaviour.demography.parent_age_min = 25"),
    (["city.preset=helsinki"], "city.preset='helsinki'",
     "the preset chosen as a group, e.g. city=helsinki"),
    (["city.cell_size_m=1e9"], "city.cell_size_m=1000000000.0", "values in [10.0, 5000.0]"),
    (["behaviour.reputation.feedback=2"], "behaviour.reputation.feedback=2", "true or false"),
]


@pytest.mark.parametrize(("overrides", "shown", "allowed"), ISSUE_COMMANDS,
                         ids=[" ".join(c[0]) for c in ISSUE_COMMANDS])
def test_issue_commands_are_refused(overrides, shown, allowed):
    with pytest.raises(ValueError) as info:
        load_config(overrides)
    msg = str(info.value)
    assert msg.startswith(f"config error: {shown} is not allowed; expected {allowed}"), msg
    assert "\n" not in msg


def test_nested_lists_accept_integers():
    cfg = load_config(["behaviour.demography.outmig_logit=[[-4,-3,-3],[-4,-4,-5],[-5,-5,-5]]",
                       "behaviour.preferences.tenure_taste=[[1,0,0],[0,0,1],[-1,0,1]]"])
    assert cfg.behaviour.demography.outmig_logit[0] == [-4.0, -3.0, -3.0]
    assert all(isinstance(v, float) for row in cfg.behaviour.preferences.tenure_taste
               for v in row)


def test_memory_estimate_names_the_estimate(monkeypatch):
    from sim import config as config_mod

    monkeypatch.setattr(config_mod, "machine_memory", lambda: 2**30)
    cfg = Config()
    cfg.city.n_families = 200_000
    with pytest.raises(ValueError, match=r"^config error: city\.n_families=200000 is not "
                                         r"allowed; expected a city this machine can hold: the "
                                         r"run needs about 1\.4 GiB, this machine has 1\.0 GiB$"):
        validate(cfg)
    assert validate(Config()) == Config()  # the small city fits in 1 GiB


@pytest.mark.parametrize(("tree", "message"), [
    ({"city": {"foreign_share": "abc"}},
     "config error: city.foreign_share='abc' is not allowed; expected a number"),
    ({"behaviour": {"school": {"enabled": 3}}},
     "config error: behaviour.school.enabled=3 is not allowed; expected true or false"),
    ({"scenario": {"levers": {"lever": "engagement"}}},
     "config error: scenario.levers={'lever': 'engagement'} is not allowed; expected a list"),
    ({"city": {"widht": 10}}, "config error: city.widht=10 is not allowed; expected a known "
                              "key; city has preset"),
    ({"scenario": {"name": " "}},
     "config error: scenario.name=' ' is not allowed; expected a non-empty string"),
])
def test_config_tree_messages(tree, message):
    with pytest.raises(ValueError) as info:
        validate(tree)
    assert str(info.value).startswith(message), str(info.value)


def test_levers_and_description_of_a_dataclass_are_checked():
    cfg = Config()
    cfg.scenario.levers = "engagement"  # type: ignore[assignment]
    with pytest.raises(ValueError, match=r"scenario\.levers='engagement' is not allowed; "
                                         "expected a list of levers"):
        validate(cfg)
    cfg = Config()
    cfg.scenario.description = 3  # type: ignore[assignment]
    with pytest.raises(ValueError, match=r"scenario\.description=3 is not allowed; expected a "
                                         "string"):
        validate(cfg)


def test_preset_label_of_a_tree_is_checked():
    with pytest.raises(ValueError, match=r"city\.preset='foo' is not allowed; expected one of"):
        validate({"city": {"preset": "foo"}})


def test_hydra_messages_are_one_line():
    for overrides in (["city=nowhere"], ["seed"], ["years=abc"], ["nosuch=1"]):
        with pytest.raises(ValueError) as info:
            load_config(overrides)
        assert "\n" not in str(info.value), str(info.value)
        assert "HYDRA_FULL_ERROR" not in str(info.value)
