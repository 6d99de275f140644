"""How far to trust a comparison: the fit, the levers' assumptions, what is not modelled.

Read, not written by hand: the fit from the shipped ``calibration/fit_<preset>.csv``
(moments met within two standard errors), the lever assumptions from the scenarios that
were compared (``LEVER_ASSUMPTIONS``: lever arguments and model parameters whose values no
source pins down), and ``NOT_MODELLED``, the list the docs show (``docs/report.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from experiments.i18n import Text
from experiments.summary import N_
from sim.config import Config

CALIBRATION_DIR = Path(__file__).resolve().parent.parent / "calibration"

# Lever -> the effect sizes it rests on that are assumptions, as (where, name, what it means).
# "lever": an argument of the lever in the scenario file; "config": a model parameter.
LEVER_ASSUMPTIONS: dict[str, list[tuple[str, str, str]]] = {
    "tp_funding": [("config", "behaviour.outcomes.resource_effect",
                    N_("school years of learning per unit of extra resources per pupil; "
                       "Silliman's 2017 study, replicated in the model, points to a value "
                       "about 40 times larger, see docs/studies.md"))],
    "engagement": [
        ("lever", "trust_gain", N_("how much more families trust a reached school")),
        ("lever", "optout_reduction",
         N_("how much less often local families look for another school")),
        ("lever", "info_gain", N_("how much of their information gap on school choice "
                                  "low-income and foreign-language families close a year")),
    ],
    "urban_renewal": [("lever", "amenity_gain", N_("how much more attractive renewed "
                                                   "neighbourhoods become"))],
}

NOT_MODELLED = (
    N_("Families who leave the city come back at a fitted yearly rate, more often when a "
       "child reaches school age; why they return is not modelled."),
    N_("Housing prices and rents do not respond to demand; only urban renewal changes them."),
    N_("Families arriving from elsewhere replace a fixed share of those who leave; the "
       "policies do not change how many arrive or who they are."),
    N_("One school network is modelled (Finnish-language by default); Swedish-language "
       "schools and the families who choose them are outside it."),
    N_("Teachers are not modelled one by one: teacher turnover is a rate that follows a "
       "school's pupils and resources."),
    N_("Learning is one number, school years ahead of or behind the grade norm; well-being, "
       "health and later life are not modelled."),
    N_("Only the levers' own costs are booked; savings elsewhere (for example in social "
       "services) are not."),
)


def fit_file(preset: str) -> Path:
    """The shipped fit of a city preset."""
    return CALIBRATION_DIR / f"fit_{preset}.csv"


def fit_statement(base: Config, t: Text) -> str:
    """How well the model reproduces the city's observed figures (its shipped fit)."""
    _ = t.gettext
    path = fit_file(base.city.preset)
    if not path.is_file():
        return _("This city has no fit of its own: its behaviour parameters were fitted on "
                 "another city, so its figures have not been checked against observations.")
    fit = pd.read_csv(path)
    fitted = fit[fit["role"] == "fitted"]
    met = int(fitted["met"].sum())
    text = _("The model was fitted to {n} observed figures of Helsinki (file {file}) and "
             "reproduces {met} of them within two standard errors.").format(
        n=len(fitted), file=f"calibration/{path.name}", met=met)
    missed = fitted.loc[~fitted["met"].astype(bool), "moment"].tolist()
    if missed:
        text += " " + _("Not reproduced: {names}.").format(names=", ".join(missed))
    return text


def uncertainty_statement(effects: pd.DataFrame, year: int, t: Text) -> str:
    """What the intervals include: chance only, or the parameters' posterior too.

    With ``uncertainty=posterior`` (``experiments.uncertainty``) it gives the median share
    of an effect's spread that comes from the parameters, over the key metrics at ``year``.
    """
    _ = t.gettext
    if "param_share" not in effects.columns:
        return _("The intervals show chance only (the random events of each run); they do not "
                 "include the uncertainty of the fitted parameters, which the comparison "
                 "option uncertainty=posterior adds.")
    at = effects[effects["year"] == year]
    share = float(at["param_share"].median()) if len(at) else float("nan")
    return _("The intervals include the uncertainty of the fitted parameters: each scenario "
             "ran over {k} parameter sets drawn from the calibration's posterior, each with "
             "the same random events as its baseline. In year {year}, typically {share} of "
             "an effect's spread comes from the parameters and the rest from chance.").format(
        k=int(at["n_draws"].max()) if len(at) else 0, year=year,
        share=t.pct(share, 0) if share == share else "-")


def lever_assumptions(scenarios: dict[str, dict[str, Any]], base: Config,
                      t: Text) -> list[str]:
    """One line per assumed effect size that the compared scenarios' levers use."""
    _ = t.gettext
    lines, seen = [], set()
    for scen in scenarios.values():
        for spec in scen.get("levers", []):
            for where, name, meaning in LEVER_ASSUMPTIONS.get(spec.get("lever"), []):
                if where == "lever":
                    value = spec.get(name)
                else:
                    value = base
                    for part in name.split("."):
                        value = getattr(value, part)
                key = (spec["lever"], name, value)
                if value is None or key in seen:
                    continue
                seen.add(key)
                lines.append(_("{lever}: {name} = {value} ({meaning}) is an assumption, not "
                               "a measured effect.").format(
                    lever=spec["lever"], name=name, value=t.num(float(value), 2),
                    meaning=_(meaning)))
    return lines
