"""The segregation-levels study: both worlds through the evaluation layer, paired by seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import TINY
from experiments import levels

ARGS = [o for o in TINY if o != "start=fresh"] + [
    "start=settled", "burn_in_years=5", "seeds=3", "years=3", "backend=serial"]


def test_levels_pair_the_choice_off_world_by_seed(tmp_path) -> None:
    out = levels.levels([*ARGS, f"out={tmp_path}", f"checkpoint_dir={tmp_path / 'ck'}"])
    table = pd.read_csv(out / "levels.csv").set_index(["measure", "dimension"])
    runs = pd.read_parquet(out / "runs.parquet")
    assert set(runs["world"]) == {"choice", "choice_off"}
    assert sorted(runs["year"].unique()) == [1, 2, 3]
    per_seed = runs.groupby(["world", "replicate"])["seg_school_ses_H"].mean()
    paired = per_seed["choice"] - per_seed["choice_off"]
    assert table.loc[("excess_vs_choice_off", "ses"), "mean"] == pytest.approx(paired.mean())
    assert table.loc[("excess_vs_choice_off", "ses"), "seeds"] == 3
    # Choice moves pupils: the two worlds' school H differ.
    assert not np.allclose(per_seed["choice"], per_seed["choice_off"])
    # Amsterdam stands beside the status rows only.
    assert table.loc[("school_H", "ses"), "amsterdam"] == pytest.approx(0.206)
    assert np.isnan(table.loc[("school_H", "lang"), "amsterdam"])
    assert (out / "levels.png").stat().st_size > 0


def test_levels_refuse_a_fresh_start(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        levels.main([*ARGS, "start=fresh", f"out={tmp_path}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: start='fresh': the levels are of the settled city; expected "
                   "start=settled")
