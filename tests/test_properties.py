"""Issue #7: every config in the allowed space either runs correctly or is refused clearly.

Hypothesis draws configs across the whole range of each key (tiny cities, so each run takes
well under a second): every one must either be refused by ``validate`` with a one-line
``config error`` before anything is built, or run with the model's invariants holding every
year and every metric finite except the documented ``sim.metrics.MAY_BE_EMPTY`` columns.
Drawn this way, the test found the two generator crashes of the issue (too few families for
the units, ``Cannot take a larger sample than population``; a renewal social share above
0.95 giving a negative clip bound) before they were fixed.
"""

from __future__ import annotations

import math
import re

from hypothesis import HealthCheck, Phase, event, given, note, settings
from hypothesis import strategies as st
from test_invariants import check_invariants

from sim.config import Config, as_dict, validate
from sim.metrics import may_be_empty
from sim.model import SegregationModel

MESSAGE = re.compile(r"^config error: [\w.\[\]]+=.+ is not allowed; expected .+$")


def unit(lo: float = 0.0, hi: float = 1.0, **kw: bool) -> st.SearchStrategy[float]:
    """Floats over the whole closed (or half-open) range, boundaries included."""
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, **kw)


@st.composite
def shares(draw: st.DrawFn, n: int) -> list[float]:
    """``n`` non-negative shares that sum to 1 (one may be 1, others 0)."""
    raw = [draw(st.integers(0, 20)) for _ in range(n)]
    if not sum(raw):
        raw[draw(st.integers(0, n - 1))] = 1
    out = [round(r / sum(raw), 6) for r in raw[:-1]]
    return [*out, round(1.0 - sum(out), 6)]


@st.composite
def configs(draw: st.DrawFn) -> dict:
    """A config dict drawn over the allowed range of every key that shapes a run."""
    d = as_dict(Config())
    d.update(seed=draw(st.integers(0, 2**32)), years=draw(st.integers(1, 3)))
    d["output"].update(progress=False, figures=False)
    social = draw(unit())
    width, height = draw(st.integers(4, 24)), draw(st.integers(4, 24))
    sea = draw(unit(0.0, 0.6))
    # Unit counts up to validate's land limit, districts above the renewal areas, and
    # populations of at least 10 families per unit two times in three: most draws run.
    # The third: small populations, where the generator's limits are.
    most = max(1, int(width * height * (1 - sea) / 4))
    units = [draw(st.integers(1, min(hi, most))) for hi in (12, 6, 40)]
    n_districts = draw(st.integers(1, min(8, most)))
    least = 10 * max(units)
    d["city"].update(
        seed=draw(st.integers(0, 1000)), width=width, height=height,
        cell_size_m=draw(unit(10.0, 5000.0)),
        n_families=draw(st.one_of(st.integers(1, 30), st.integers(least, least + 400),
                                  st.integers(least, least + 400))),
        dwellings_per_family=draw(unit(1.0, 3.0, exclude_min=True)),
        n_districts=n_districts, n_renewal_areas=draw(st.integers(0, min(4, n_districts - 1))),
        n_lower_schools=units[0], n_upper_schools=units[1], n_daycares=units[2],
        private_daycare_share=draw(unit()), sea_share=sea, social_share=social,
        owner_share=draw(unit(0.0, 1.0 - social)),
        renewal_social_share=draw(st.one_of(unit(), unit(0.9))),
        foreign_share=draw(unit()), ses_shares_native=draw(shares(3)),
        ses_shares_foreign=draw(shares(3)),
        low_edu_by_ses=draw(st.lists(unit(), min_size=3, max_size=3)),
        unemployed_by_ses=draw(st.lists(unit(), min_size=3, max_size=3)),
        unemployed_foreign_extra=draw(unit(0.0, 0.5)),
        school_capacity_slack=draw(unit(1.0, 5.0)), daycare_capacity_slack=draw(unit(1.0, 5.0)),
        emphasis_school_share=draw(unit()), emphasis_seat_share=draw(unit()),
    )
    b = d["behaviour"]
    age_min = draw(st.integers(15, 59))
    logit = unit(-20.0, 20.0)
    b["demography"].update(
        birth_prob=draw(unit()), birth_max_parent_age=draw(st.integers(max(18, age_min - 2), 60)),
        parent_age_min=age_min, parent_age_max=draw(st.integers(age_min, 70)),
        max_children=draw(st.integers(1, 3)), children_probs=draw(shares(3)),
        youngest_decay=draw(unit(0.001)), arrival_youngest_decay=draw(unit(0.001)),
        sibling_gap_max=draw(st.integers(1, 10)), arrival_ratio=draw(unit(0.0, 3.0)),
        arrival_foreign_share=draw(unit()),
        outmig_logit=[[draw(unit(-20.0, 5.0)) for _ in range(3)] for _ in range(3)],
        outmig_dissatisfaction=draw(logit), outmig_foreign=draw(logit),
        foreign_renewal_taste=draw(logit),
    )
    b["preferences"].update(
        n_candidates=draw(st.integers(1, 256)), n_local_candidates=draw(st.integers(0, 256)),
        x0=draw(unit(0.01, 0.99)), m_homog=draw(unit()),
        w_afford=draw(unit(0.0, 1000.0)), social_max_ses=draw(st.integers(0, 2)),
        stay_bonus=draw(logit), w_school=[draw(logit) for _ in range(3)],
    )
    b["mobility"].update(base_logit=draw(logit), dissatisfaction=draw(logit),
                         crowding=draw(logit))
    b["daycare"].update(join_prob=draw(st.lists(unit(), min_size=6, max_size=6)),
                        n_nearest=draw(st.integers(1, 64)), w_resources=draw(logit),
                        rechoose_km=draw(unit(0.0, 100.0)))
    b["school"].update(enabled=draw(st.booleans()),
                       look_prob=draw(st.lists(unit(), min_size=3, max_size=3)),
                       n_ranked=draw(st.integers(1, 16)), max_km=draw(unit(0.0, 1000.0,
                                                                         exclude_min=True)),
                       g7_look_factor=draw(unit(0.0, 10.0)),
                       g7_distance_factor=draw(unit(0.05, 10.0)),
                       aptitude_ses_corr=draw(unit(-1.0, 1.0)))
    b["outcomes"].update(peer_effect=draw(unit(-10.0, 10.0)), noise_sd=draw(unit(0.0, 10.0)),
                         resource_effect=draw(unit(-10.0, 10.0)), adjustment=draw(unit()))
    b["reputation"].update(feedback=draw(st.booleans()), inertia=draw(unit()),
                           w_outcome=draw(logit))
    return d


# No shrinking: a failing run is reported whole (``note``), and shrinking a config through
# model runs takes minutes.
@settings(max_examples=100, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(d=configs())
def test_every_config_runs_correctly_or_is_refused(d: dict) -> None:
    note(f"config: {d}")
    try:
        cfg = validate(d)
    except ValueError as exc:
        assert MESSAGE.match(str(exc)), str(exc)
        event(f"refused: {str(exc).split()[2].partition('=')[0]}")
        return
    event("ran")
    model = SegregationModel(cfg)
    check_invariants(model, finite=())
    for _ in range(cfg.years):
        prev = model.families.n_active
        model.step()
        check_invariants(model, prev, finite=())
    metrics = model.recorder.metrics_frame()
    for column in metrics.columns:
        if may_be_empty(column):
            continue
        bad = [v for v in metrics[column] if not math.isfinite(v)]
        assert not bad, f"{column} is not finite: {bad}"
