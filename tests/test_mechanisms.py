"""The mechanism decomposition: its accounts add up, its baseline is a plain baseline run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import TINY
from experiments import mechanisms
from experiments.mechanism_records import run_mechanism_task, unit_terms
from experiments.tasks import run_scenario_task
from sim.config import CONF_DIR
from sim.evaluation import load, load_context
from sim.indices import theil_h

ARGS = [o for o in TINY if o != "start=fresh"] + [
    "start=settled", "burn_in_years=5", "replicates=2", "years=3", "backend=serial"]
KEYS = ["scenario", "replicate", "year"]


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> dict[str, pd.DataFrame]:
    """One decomposition of urban renewal on the tiny city; its tables by name.

    The scenario is a file of one's own (urban_renewal renamed ``my_renewal``): the results
    are labelled by its name.
    """
    tmp = tmp_path_factory.mktemp("mechanisms")
    spec = yaml.safe_load((CONF_DIR / "scenario" / "urban_renewal.yaml").read_text())
    (tmp / "mine.yaml").write_text(yaml.safe_dump({**spec, "name": "my_renewal"}))
    out = mechanisms.mechanisms([*ARGS, f"scenario={tmp / 'mine.yaml'}",
                                 f"out={tmp / 'run'}", f"checkpoint_dir={tmp / 'ck'}"])
    names = ("housing", "families", "flows", "intake", "school_h", "metrics", "effects")
    tables = {k: pd.read_parquet(out / f"{k}.parquet") for k in names}
    tables["out"] = out
    return tables


def test_unit_terms_add_up_to_theil_h() -> None:
    mat = np.array([[5, 1, 0], [2, 2, 2], [0, 3, 9], [0, 0, 0]])
    terms, _ = unit_terms(mat)
    assert terms.sum() == pytest.approx(theil_h(mat), abs=1e-12)
    assert terms[3] == 0.0


def test_school_h_splits_into_home_and_choice_parts(study) -> None:
    h = study["school_h"]
    assert np.allclose(h["school_H"], h["home_H"] + h["choice_H"], atol=1e-15)
    for dim in ("ses", "lang"):
        d = h[h["dim"] == dim]
        city = d[d["school_area"] == "city"].set_index(KEYS).sort_index()
        parts = d[d["school_area"] != "city"].groupby(KEYS)[["school_H", "home_H"]].sum()
        assert np.allclose(parts["school_H"], city["school_H"], atol=1e-12)
        assert np.allclose(parts["home_H"], city["home_H"], atol=1e-12)
    # The school part is the model's own school status H.
    city = h[(h["dim"] == "ses") & (h["school_area"] == "city")].set_index(KEYS)
    m = study["metrics"].set_index(KEYS)
    assert np.allclose(city["school_H"], m.loc[city.index, "seg_school_ses_H"], atol=1e-12)
    # The effects add up too: the change of school H is its two parts' changes.
    e = study["effects"]
    e = e[(e["table"] == "school_h") & (e["dim"] == "ses") & (e["school_area"] == "city")]
    w = e.pivot(index="year", columns="measure", values="diff")
    assert np.allclose(w["school_H"], w["home_H"] + w["choice_H"], atol=1e-12)


def test_flows_account_for_every_family(study) -> None:
    fl, fam, m = study["flows"], study["families"], study["metrics"].set_index(KEYS)
    by = fl.groupby(["kind", *KEYS])["n"].sum().unstack(0, fill_value=0)
    y = by.index
    assert (by["entry"] == (m["arrivals"] + m["first_births"] + m["returns"])[y]).all()
    assert (by["exit_aged"] == m["aged_out"][y]).all()
    assert (by["exit_left"] == m["left_city"][y]).all()
    # A move within one cell and tenure is not seen; no move is seen twice.
    assert (by["move"] <= m["moves"][y]).all() and by["move"].sum() > 0
    # Each area's families change by what came in minus what went out.
    stock = fam.groupby([*KEYS, "area", "ses"])["n"].sum()
    inflow = fl[fl["destination"] != "outside"].groupby(
        [*KEYS, "destination", "ses"])["n"].sum().rename_axis(stock.index.names)
    outflow = fl[fl["origin"] != "outside"].groupby(
        [*KEYS, "origin", "ses"])["n"].sum().rename_axis(stock.index.names)
    t = pd.DataFrame({"stock": stock, "in": inflow, "out": outflow}).fillna(0)
    prev = t["stock"].rename(lambda yr: yr + 1, level="year")
    later = t.index.get_level_values("year") > 1
    expect = prev.reindex(t.index[later]).fillna(0) + t["in"][later] - t["out"][later]
    assert (expect == t["stock"][later]).all()
    # Dwellings: occupied plus vacant.
    h = study["housing"]
    assert (h["occupied"] + h["vacant"] == h["dwellings"]).all()
    assert h.groupby(KEYS)["occupied"].sum().equals(
        fam.groupby(KEYS)["n"].sum().rename("occupied"))


def test_the_baseline_twin_is_a_plain_baseline_run(study) -> None:
    root = study["out"] / "study"
    context = load_context(root)
    raw = load(root).table()
    for r in range(2):
        task = {"scenario": "baseline", "seed": context["config"]["seed"] + r, "replicate": r}
        plain = run_scenario_task(context, task)["table"]
        twin = raw[(raw["scenario"] == "baseline") & (raw["replicate"] == r)]
        pd.testing.assert_frame_equal(twin.reset_index(drop=True), plain)
    # And the mechanism runner returns the plain runner's table for a scenario too.
    task = {"scenario": "my_renewal", "seed": context["config"]["seed"], "replicate": 0}
    pd.testing.assert_frame_equal(run_mechanism_task(context, task)["table"],
                                  run_scenario_task(context, task)["table"])


def test_the_outputs_are_written(study) -> None:
    out = study["out"]
    for name in ("summary.md", "my_renewal_h.png", "my_renewal_families.png"):
        assert (out / name).stat().st_size > 0
    text = (out / "summary.md").read_text()
    assert "## my_renewal" in text and "### School status H and its parts" in text
    assert set(study["metrics"]["scenario"]) == {"baseline", "my_renewal"}
    # The renewal areas got the new dwellings, and only they.
    e = study["effects"]
    dw = e[(e["table"] == "housing") & (e["measure"] == "dwellings") & (e["year"] == 3)]
    by_area = dw.groupby("area")["diff"].sum()
    assert by_area["renewal"] > 0 and by_area["rest"] == 0 and by_area["neighbour"] == 0


@pytest.mark.parametrize(("args", "message"), [
    ([], "error: scenario is missing; expected scenario=NAME (one of "),
    (["scenario=baseline"], "error: scenario='baseline' is not allowed; expected distinct "
     "scenarios other than baseline (the baseline twin always runs)"),
    (["scenario=urban_renewal", "replicates=1"],
     "error: replicates='1' is not allowed; expected an integer >= 2"),
    (["scenario=urban_renewal", "years=x"],
     "error: years='x' is not allowed; expected an integer >= 1"),
    (["scenario=nope"], "error: scenarios: 'nope' is not a scenario; available: "),
])
def test_bad_input_is_one_line(tmp_path, capsys, args, message) -> None:
    with pytest.raises(SystemExit) as exc:
        mechanisms.main([*ARGS, *args, f"out={tmp_path / 'run'}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_help(capsys) -> None:
    mechanisms.main(["--help"])
    assert capsys.readouterr().out.startswith("usage: python -m experiments.mechanisms")
