"""Issue #7: scenario files of one's own are run or refused with one clear line.

Each message of the scenario-file path has a test (the issue's holes 2 and 3), and a fuzz
test mutates a valid file (missing fields, wrong types, nulls, bad YAML): the comparison's
own loading and checking (``scenario_config`` then ``check_levers``) either accepts it or
raises one ``ValueError`` line naming the file; never another exception.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from conftest import tiny_config
from experiments.compare import CompareConfig, check_levers, compare, scenario_config
from scenarios import build_levers
from sim.config import CONF_DIR, load_config

VALID = {
    "name": "my_plan",
    "description": "Needs-based money and engagement in the renewal areas.",
    "levers": [
        {"lever": "tp_funding", "budget_eur": 5_000_000, "target": "renewal", "start_year": 2,
         "end_year": 4},
        {"lever": "engagement", "target": "renewal", "coverage": 0.5},
        {"lever": "urban_renewal", "districts": "renewal", "dwellings_per_year": 50},
    ],
}


def write(tmp_path: Path, text: str, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def one_clear_line(msg: str, path: Path) -> bool:
    """One line naming the file (file checks) or the scenario's name (checks on the city)."""
    return "\n" not in msg and msg.startswith((f"scenario file {path}: ", "scenario "))


def refused(path: Path, *extra: str) -> str:
    """The one-line message refusing the scenario file ``path``."""
    with pytest.raises(ValueError) as info:
        cfg = scenario_config(tiny_config(*extra), str(path))
        check_levers({cfg.scenario.name: cfg})
    msg = str(info.value)
    assert one_clear_line(msg, path), msg
    return msg


def test_valid_file_is_accepted(tmp_path: Path) -> None:
    cfg = scenario_config(tiny_config(), str(write(tmp_path, yaml.safe_dump(VALID))))
    check_levers({cfg.scenario.name: cfg})
    assert cfg.scenario.name == "my_plan" and len(cfg.scenario.levers) == 3


@pytest.mark.parametrize(("text", "message"), [
    ("name: x\nlevers: [\n", "not valid YAML at line 3, column 1"),
    ("name: x\ndescription: y\nlevers:\n\t- lever: engagement\n", "not valid YAML at line 4"),
    ("", "the file holds NoneType None; expected a mapping"),
    ("- lever: engagement\n", "the file holds list"),
    ("description: y\nlevers: []\n", "name missing; expected a mapping with name, "
                                     "description, levers"),
    ("name: ''\ndescription: y\nlevers: []\n", "scenario.name='' is not allowed; expected a "
                                               "non-empty string"),
    ("name: x\ndescription: y\nlevers: []\nlevres: []\n", "scenario.levres=[] is not allowed; "
                                                          "expected a known key"),
    ("name: x\ndescription: y\nlevers: engagement\n", "scenario.levers='engagement' is not "
                                                      "allowed; expected a list"),
    ("name: x\ndescription: y\nlevers: {lever: engagement}\n", "scenario.levers={'lever': "
                                                               "'engagement'} is not allowed"),
    ("name: x\ndescription: y\nlevers:\n  - null\n", "lever #1=None is not allowed; expected a "
                                                     "mapping with a 'lever' name"),
    ("name: x\ndescription: y\nlevers:\n  - engagement\n", "lever #1='engagement' is not "
                                                           "allowed; expected a mapping"),
    ("name: x\ndescription: y\nlevers:\n  - lever: tp_funding\n",
     "lever tp_funding: missing argument(s) ['budget_eur']"),
    ("name: x\ndescription: y\nlevers:\n  - lever: engagement\n    end_year: never\n",
     "end_year='never' is not allowed; expected None or an integer >= start_year (1)"),
    ("name: x\ndescription: y\nlevers:\n  - lever: engagement\n    target: tp_index_above:abc\n",
     "target='tp_index_above:abc' is not allowed; expected 'tp_index_above:<x>' with a number"),
    ("name: x\ndescription: y\nlevers:\n  - lever: engagement\n    coverage: [1]\n",
     "coverage=[1] is not allowed"),
])
def test_bad_scenario_file_message(tmp_path: Path, text: str, message: str) -> None:
    msg = refused(write(tmp_path, text))
    assert message in msg, msg


@pytest.mark.parametrize("spec", [
    {"lever": "engagement", "target": "renewal"},
    {"lever": "urban_renewal", "districts": "renewal"},
    {"lever": "shared_catchment", "groups": "renewal"},
])
def test_renewal_lever_on_a_city_without_renewal_areas(tmp_path: Path, spec: dict) -> None:
    path = write(tmp_path, yaml.safe_dump({"name": "r", "description": "d", "levers": [spec]}))
    msg = refused(path, "city.n_renewal_areas=0")
    assert "this city has no urban-renewal areas" in msg or "give none" in msg, msg


def test_two_scenarios_with_one_name(tmp_path: Path) -> None:
    path = write(tmp_path, "name: baseline\ndescription: same name\nlevers: []\n")
    cfg = CompareConfig(scenarios=["baseline", str(path)], years=2)
    with pytest.raises(ValueError, match=f"{path} has name: baseline, as an earlier scenario"):
        compare(cfg, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------- fuzz
ODD = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**12), st.floats(allow_nan=True),
                st.text(max_size=12), st.lists(st.integers(0, 3), max_size=3),
                st.dictionaries(st.sampled_from(["lever", "a", "target"]),
                                st.sampled_from(["engagement", "x", 1]), max_size=2))


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """The text of a scenario file: ``VALID`` with one to three mutations."""
    data = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["drop_key", "set_key", "drop_arg", "set_arg",
                                     "set_lever", "yaml"]))
        levers = data.get("levers")
        lever_ok = isinstance(levers, list) and levers and isinstance(levers[0], dict)
        if kind == "drop_key" and data:
            data.pop(draw(st.sampled_from(sorted(data))))
        elif kind == "set_key":
            data[draw(st.sampled_from(["name", "description", "levers", "extra"]))] = draw(ODD)
        elif kind in ("drop_arg", "set_arg") and lever_ok:
            spec = levers[draw(st.integers(0, len(levers) - 1))]
            if isinstance(spec, dict) and spec:
                key = draw(st.sampled_from(sorted(spec)))
                if kind == "drop_arg":
                    spec.pop(key)
                else:
                    spec[key] = draw(ODD)
        elif kind == "set_lever" and lever_ok:
            levers[draw(st.integers(0, len(levers) - 1))] = draw(ODD)
    text = yaml.safe_dump(data, allow_unicode=True)
    if draw(st.integers(0, 5)) == 0:  # bad YAML: a tab indent or an unclosed bracket
        text = draw(st.sampled_from([text.replace("  ", "\t", 1), text + "levers: [\n",
                                     "name: [x\n" + text]))
    return text


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(text=mutated())
def test_mutated_scenario_file_runs_or_gives_one_clear_line(tmp_path: Path, text: str) -> None:
    note(text)
    path = write(tmp_path, text)
    try:
        cfg = scenario_config(tiny_config(), str(path))
        check_levers({cfg.scenario.name: cfg})
    except ValueError as exc:
        assert one_clear_line(str(exc), path), str(exc)


@pytest.mark.parametrize(("specs", "message"), [
    ("engagement", "scenario s: levers='engagement' is not allowed; expected a list of levers"),
    ([{"lever": "catchment_redraw", "level": [1]}],
     "scenario s: lever catchment_redraw: arguments {'level': [1]} are not allowed; expected "
     "the types its docstring lists"),
    ([{"lever": "engagement", "start_year": True}],
     "scenario s: lever engagement: start_year=True is not allowed; expected an integer >= 1"),
    ([{"lever": 5}], "scenario s: lever #1 5 is unknown; known levers:"),
])
def test_build_levers_messages(specs: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        build_levers(specs, "scenario s")
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize("preset", ["small", "helsinki"])
def test_every_shipped_scenario_is_accepted_on_every_preset(preset: str) -> None:
    """A preset's school network must let every shipped lever find its targets."""
    names = sorted(p.stem for p in (CONF_DIR / "scenario").glob("*.yaml"))
    check_levers({n: load_config([f"city={preset}", f"scenario={n}", "start=fresh"])
                  for n in names})
