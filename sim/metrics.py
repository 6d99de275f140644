"""Yearly metrics, flows and the unit/area knowledge base.

``YearRecorder`` books the year's flows as the model runs and, at the end of each year,
builds two tables and one row of metrics from the *same* count matrices:

* ``areas``: one row per district, lower and upper catchment and cell: families, children
  (0-15), children aged 7-12 and 13-15, each by status class and language group, vacancies,
  move-ins and move-outs, and the net moves within the city of children by age band and
  language group (``NET_MOVE_COLS``);
* ``units``: one row per school and daycare: capacity, enrolment by status and language,
  intake, reputation, mean outcome, funding;
* ``metrics``: the indices of ``sim.indices`` over those counts, plus flows and rates.

So every index in ``metrics.parquet`` can be recomputed from ``areas.parquet`` and
``units.parquet`` (``tests/test_outputs.py`` does so). Status D and isolation contrast the
low class (group 0) with the rest, exposure is of low to high status, H uses all three
classes; language indices contrast foreign-language (group 1) with native. Metrics go
through Mesa's ``DataCollector``.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING

import mesa
import numpy as np
import pandas as pd

from sim.indices import index_set
from sim.kernels import add_rows, tally
from sim.units import DAYCARE, SCHOOL, unit_ids

if TYPE_CHECKING:
    from sim.model import SegregationModel

SES_COLS = [f"ses{k}" for k in range(3)]
LANG_COLS = [f"lang{k}" for k in range(2)]
GROUPS = ["families", "children", "age7_12", "age13_15"]
# Children moving with their family within the city, in minus out, by age band and language
# group: the flows between catchments that Bernelius & Vilkama (2019) classify
# (``calibration.studies``). Moves inside one area cancel.
NET_MOVE_BANDS = ((0, 6), (7, 12), (13, 15))
NET_MOVE_COLS = [f"net_moves_age{lo}_{hi}_{c}" for lo, hi in NET_MOVE_BANDS for c in LANG_COLS]
AREA_COLS = [f"{g}_{c}" for g in GROUPS for c in SES_COLS + LANG_COLS] + [
    "vacancies", "move_ins", "move_outs", *NET_MOVE_COLS]
# Metric columns that may be empty (NaN), as ``fnmatch`` patterns, and when: a share or an
# index over a group that is absent has no value (it is not 0). Every other column of
# ``metrics.parquet`` is finite in every year (tests/test_properties.py); docs/runs.md, "What a
# run writes", shows this table.
MAY_BE_EMPTY: dict[str, str] = {
    "seg_*_lang_*": "the units hold no foreign-language child, or only foreign-language "
                    "children (city.foreign_share=0 and no foreign-language arrivals)",
    "seg_*_ses_[Die]*": "the units hold no low-status (ses0) child, or only low-status ones",
    "seg_*_ses_H": "the units hold children of one status class only",
    "excess_school_*_H": "the school or catchment H of that dimension is empty",
    "excess_school_*_H_res": "the school or district H of that dimension is empty",
    "local_school_share_g[17]": "no child started grade 1 (grade 7) that year",
    "local_school_share_*_renewal": "no entrant lives in a renewal area that year (always "
                                    "with city.n_renewal_areas=0)",
    "outcome_gap_decile": "fewer than two schools have pupils",
    "move_rate*": "year 0 (no year behind it), or no family of that age band or status",
    "outmigration_rate": "year 0",
    "outmigration_preschool_share": "year 0, or no family left the city that year",
    "daycare_participation*": "no child aged 1-6 of that group",
    "foreign_share_age1_6": "no child aged 1-6",
    "born_here_share_age0_6": "no child aged 0-6",
    "g9_*": "no pupil finished grade 9 that year (with a fresh start, year 0), or none of "
            "that language group",
}


def may_be_empty(column: str) -> bool:
    """True if the metric ``column`` may be NaN (see ``MAY_BE_EMPTY``)."""
    return any(fnmatch.fnmatchcase(column, pattern) for pattern in MAY_BE_EMPTY)


AGES = 16  # children aged 0-15
AGE_COLS = ([f"children_ses{k}" for k in range(3)] + [f"left_ses{k}" for k in range(3)]
            + ["born_here", "left_born_here", "returned_born_here", "first_moves"])
# Grade-9 leavers per school by language group (``sim.phases.transitions``): leavers, those
# who do not continue to upper secondary ("dropout"), those entering general upper secondary.
G9_COLS = [f"g9_{what}_lang{k}" for what in ("leavers", "dropout", "general") for k in range(2)]
FLOW_KEYS = ("aged_out", "left_city", "returns", "arrivals", "births", "first_births",
             "moves", "capacity_added", "daycare_waitlist")


def counts(unit: np.ndarray, group: np.ndarray, n_units: int, n_groups: int) -> np.ndarray:
    """Count matrix (n_units, n_groups) of people by unit and group."""
    flat = np.bincount(unit * n_groups + group, minlength=n_units * n_groups)
    return flat.reshape(n_units, n_groups)


def indices(prefix: str, ses: np.ndarray, lang: np.ndarray) -> dict[str, float]:
    """Status and language index sets over one kind of unit, keyed ``{prefix}_{dim}_{index}``."""
    out = {}
    for dim, cnt, grp, oth in (("ses", ses, 0, 2), ("lang", lang, 1, 0)):
        for name, value in index_set(cnt, group=grp, other=oth).items():
            out[f"{prefix}_{dim}_{name}"] = value
    return out


def gap_top_bottom_decile(values: np.ndarray) -> float:
    """Mean of the top decile of ``values`` minus the mean of the bottom decile."""
    if len(values) < 2:
        return float("nan")
    lo, hi = np.quantile(values, [0.1, 0.9])
    return float(values[values >= hi].mean() - values[values <= lo].mean())


def record(model: SegregationModel) -> None:
    """Phase: the year's metrics row and unit and area tables (``YearRecorder.collect``)."""
    model.recorder.collect()


def _rate(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray | float:
    return np.where(np.asarray(den) > 0, num / np.maximum(den, 1), np.nan)


class YearRecorder:
    """Books flows during a year and collects metrics and tables at its end."""

    def __init__(self, model: SegregationModel) -> None:
        self.m = model
        self.unit_frames: list[pd.DataFrame] = []
        self.age_counts: list[tuple[int, np.ndarray]] = []  # (year, AGE_COLS x age)
        self.area_counts: list[tuple[int, dict[str, np.ndarray]]] = []  # (year, areas)
        self.datacollector: mesa.DataCollector | None = None
        self.current: dict[str, float] = {}
        self.start_year()
        self.booked = False  # no simulated year behind the set-up yet

    # The year's flow accounts: what a settled-state checkpoint carries into year 0.
    ACCOUNTS = ("n_start", "move_in", "move_out", "net_moves", "leaver_band", "moves_band",
                "moves_ses", "fam_band", "fam_ses", "intake", "intake_school", "ages", "g9",
                "booked")

    # -------------------------------------------------------------- booking
    def start_year(self) -> None:
        """Reset the year's flow accounts."""
        n_c = self.m.city.n_cells
        self.flows = dict.fromkeys(FLOW_KEYS, 0)
        self.n_start = self.m.families.n_active if hasattr(self.m, "families") else 0
        self.move_in = np.zeros(n_c, dtype=np.int64)
        self.move_out = np.zeros(n_c, dtype=np.int64)
        self.net_moves = np.zeros((n_c, len(NET_MOVE_COLS)), dtype=np.int64)
        self.leaver_band = np.zeros(3)
        self.moves_band = np.zeros(3)
        self.moves_ses = np.zeros(3)
        self.fam_band = np.zeros(3)
        self.fam_ses = np.zeros(3)
        self.intake = np.zeros((2, 4))  # level x (entrants, local, renewal entrants, local)
        self.intake_school = np.zeros((2, len(self.m.schools.cell)))  # entrants, local
        self.ages = np.zeros((len(AGE_COLS), AGES), dtype=np.int64)  # AGE_COLS x age
        self.g9 = np.zeros((len(self.m.schools.cell), len(G9_COLS)), dtype=np.int64)
        self.booked = True

    def grow_schools(self, n_s: int) -> None:
        """Widen the intake accounts after a school is added."""
        pad = n_s - self.intake_school.shape[1]
        self.intake_school = np.pad(self.intake_school, ((0, 0), (0, pad)))
        self.g9 = np.pad(self.g9, ((0, pad), (0, 0)))

    def book_exit(self, slots: np.ndarray) -> None:
        """Families leaving the model (aged out or left the city)."""
        cells = self.m.families.cell[slots]
        self.move_out += np.bincount(cells[cells >= 0], minlength=len(self.move_out))

    def book_leavers(self, slots: np.ndarray, band: np.ndarray) -> None:
        """Families leaving the city, by youngest child's age band; children by age.

        The children at risk (every child in the city at the out-migration step), the
        children leaving, each by age and status, and, of the children born in the city
        who have never left it, those at risk and those leaving (a first leaving): the
        synthetic-cohort accounts of ``ages_frame``.
        """
        m = self.m
        ch, ses = m.children, m.families.ses
        self.flows["left_city"] = len(slots)
        self.leaver_band = np.bincount(band, minlength=3).astype(float)
        a = ch.active
        left = m.children_of(slots)
        col = {c: i for i, c in enumerate(AGE_COLS)}
        for sel, name in ((a, "children"), (left, "left")):
            mat = counts(ses[ch.family[sel]], ch.age[sel], 3, AGES)
            self.ages[col[f"{name}_ses0"]:col[f"{name}_ses0"] + 3] = mat
        first = ch.born_here & ~ch.left
        for sel, name in ((a & first, "born_here"), (left & first, "left_born_here")):
            self.ages[col[name]] = np.bincount(ch.age[sel], minlength=AGES)

    def book_entries(self, flow: str, slots: np.ndarray) -> None:
        """Book families that entered the city and found a dwelling.

        ``flow`` is ``arrivals``, ``first_births`` (families formed here) or ``returns``
        (leavers coming back, whose born-here children are also counted by age).
        """
        m = self.m
        self.flows[flow] = len(slots)
        self.move_in += np.bincount(m.families.cell[slots], minlength=len(self.move_in))
        if flow == "returns":
            # Children who left (a baby born on the way back has not) and were born here.
            kids = m.children_of(slots) & m.children.born_here & m.children.left
            self.ages[AGE_COLS.index("returned_born_here")] = np.bincount(
                m.children.age[kids], minlength=AGES)

    def book_moves(self, slots: np.ndarray, old_cells: np.ndarray, band: np.ndarray,
                   first: np.ndarray) -> None:
        """Moves within the city; ``band`` is the youngest-age band of every family slot.

        ``first``: child slots whose first move within the city this is (born here).
        """
        self.ages[AGE_COLS.index("first_moves")] = np.bincount(
            self.m.children.age[first], minlength=AGES)
        f = self.m.families
        self.flows["moves"] = len(slots)
        n_c = len(self.move_in)
        self.move_out += np.bincount(old_cells, minlength=n_c)
        self.move_in += np.bincount(f.cell[slots], minlength=n_c)
        self.book_child_moves(slots, old_cells)
        self.moves_band = np.bincount(band[slots], minlength=3).astype(float)
        self.moves_ses = np.bincount(f.ses[slots], minlength=3).astype(float)
        a = f.active & (f.arrived < self.m.year)  # this year's arrivals do not move again
        self.fam_band = np.bincount(band[a], minlength=3).astype(float)
        self.fam_ses = np.bincount(f.ses[a], minlength=3).astype(float)

    def book_child_moves(self, slots: np.ndarray, old_cells: np.ndarray) -> None:
        """Net moves of the movers' children by cell, age band and language (``NET_MOVE_COLS``)."""
        m = self.m
        f, ch = m.families, m.children
        kids = np.flatnonzero(m.children_of(slots))
        if not len(kids):
            return
        origin = np.full(f.capacity, -1, dtype=np.int64)
        origin[slots] = old_cells
        fam = ch.family[kids]
        col = np.searchsorted([hi for _, hi in NET_MOVE_BANDS], ch.age[kids]) * 2 + f.lang[fam]
        n = self.net_moves.size
        width = len(NET_MOVE_COLS)
        self.net_moves += (np.bincount(f.cell[fam] * width + col, minlength=n)
                           - np.bincount(origin[fam] * width + col, minlength=n)
                           ).reshape(self.net_moves.shape)

    def book_intake(self, lev: int, kids: np.ndarray, is_local: np.ndarray, got: np.ndarray,
                    n_s: int) -> None:
        """Book entrants at grade 1 (lev 0) or 7 (lev 1) and the school each got.

        ``is_local``: the school is their catchment's or, in a shared catchment, the one that
        admission gave them.
        """
        m = self.m
        ren = m.renewal_cell[m.families.cell[m.children.family[kids]]]
        self.intake[lev] = [len(kids), is_local.sum(), ren.sum(), (is_local & ren).sum()]
        self.intake_school[0] += np.bincount(got, minlength=n_s)
        self.intake_school[1] += np.bincount(got[is_local], minlength=n_s)

    def book_transitions(self, school: np.ndarray, lang: np.ndarray, dropout: np.ndarray,
                         general: np.ndarray) -> None:
        """Grade-9 leavers (their school and language group) and their transitions."""
        n_s = len(self.g9)
        for j, sel in enumerate((np.ones(len(school), dtype=bool), dropout, general)):
            for k in range(2):
                pick = sel & (lang == k)
                self.g9[:, 2 * j + k] = np.bincount(school[pick], minlength=n_s)

    # -------------------------------------------------------------- tables
    def cell_matrix(self) -> np.ndarray:
        """Per-cell statistics, columns ``AREA_COLS``."""
        m = self.m
        f, ch = m.families, m.children
        out = np.zeros((m.city.n_cells, len(AREA_COLS)), dtype=np.int64)
        # Each group's five columns: status 0-2, then language 0-1 (the order of tally).
        tally(np.where(f.active, f.cell, -1), np.arange(f.capacity), f.ses, f.lang, out[:, :5])
        home = np.where(ch.active, f.cell[ch.family], -1)
        for k, (lo, hi) in enumerate(((0, 15), (7, 12), (13, 15)), start=1):
            in_ages = (ch.age >= lo) & (ch.age <= hi)
            tally(np.where(in_ages, home, -1), ch.family, f.ses, f.lang,
                  out[:, 5 * k:5 * k + 5])
        n = 5 * len(GROUPS)
        out[:, n] = m.city.dwellings.sum(1) - out[:, :3].sum(1)  # vacancies
        out[:, n + 1], out[:, n + 2] = self.move_in, self.move_out
        out[:, n + 3:] = self.net_moves
        return out

    def area_tables(self, cellmat: np.ndarray) -> dict[str, np.ndarray]:
        """Aggregate the cell matrix to districts and catchments (land cells only)."""
        c = self.m.city
        n_l, n_u = len(self.m.level_ids(0)), len(self.m.level_ids(1))
        out = {}
        for kind, lab, n in (("district", c.district, c.n_districts),
                             ("catchment_lower", c.catchment_lower, n_l),
                             ("catchment_upper", c.catchment_upper, n_u)):
            out[kind] = np.zeros((n, cellmat.shape[1]), dtype=np.int64)
            add_rows(lab, cellmat, out[kind])  # sea cells (label -1) belong to no area
        out["cell"] = cellmat
        return out

    def unit_matrices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Enrolment by status and language for schools and daycares."""
        m = self.m
        ch, f = m.children, m.families
        res = []
        for unit, n in ((ch.school, len(m.schools.cell)), (ch.daycare, len(m.daycares.cell))):
            out = np.zeros((n, 5), dtype=np.int64)
            tally(unit, ch.family, f.ses, f.lang, out)
            res += [out[:, :3], out[:, 3:]]
        return res[0], res[1], res[2], res[3]

    # -------------------------------------------------------------- collect
    def collect(self) -> None:
        """End-of-year: metrics row (via Mesa's DataCollector) and unit/area tables."""
        m = self.m
        cellmat = self.cell_matrix()
        areas = self.area_tables(cellmat)
        s_ses, s_lang, d_ses, d_lang = self.unit_matrices()
        self.current = self.metrics(areas, s_ses, s_lang, d_ses, d_lang)
        if self.datacollector is None:
            reporters = {k: (lambda mod, k=k: mod.recorder.current[k]) for k in self.current}
            self.datacollector = mesa.DataCollector(model_reporters=reporters)
        self.datacollector.collect(m)
        # The area and age tables are what reports and the calibration read, not every run:
        # their counts are kept and the frames built when asked (``areas_frame``).
        self.area_counts.append((m.year, areas))
        self.age_counts.append((m.year, self.ages.copy()))
        self.unit_frames.append(self.unit_frame(s_ses, s_lang, d_ses, d_lang))

    def metrics(self, areas: dict, s_ses: np.ndarray, s_lang: np.ndarray, d_ses: np.ndarray,
                d_lang: np.ndarray) -> dict[str, float]:
        """One year's metrics from the count matrices and booked flows."""
        m = self.m
        ch, f = m.children, m.families
        col = {c: i for i, c in enumerate(AREA_COLS)}

        def cols(mat: np.ndarray, group: str) -> tuple[np.ndarray, np.ndarray]:
            ses = mat[:, [col[f"{group}_{c}"] for c in SES_COLS]]
            lang = mat[:, [col[f"{group}_{c}"] for c in LANG_COLS]]
            return ses, lang

        out: dict[str, float] = {"year": m.year, "n_families": f.n_active,
                                 "n_children": ch.n_active}
        out.update(indices("seg_res", *cols(areas["district"], "children")))
        out.update(indices("seg_cell", *cols(areas["cell"], "children")))
        lo_s, lo_l = cols(areas["catchment_lower"], "age7_12")
        up_s, up_l = cols(areas["catchment_upper"], "age13_15")
        out.update(indices("seg_catchment", np.vstack([lo_s, up_s]), np.vstack([lo_l, up_l])))
        lower = m.schools.level == 0
        out.update(indices("seg_school", s_ses, s_lang))
        out.update(indices("seg_school_lower", s_ses[lower], s_lang[lower]))
        out.update(indices("seg_school_upper", s_ses[~lower], s_lang[~lower]))
        out.update(indices("seg_daycare", d_ses, d_lang))
        for dim in ("ses", "lang"):
            out[f"excess_school_{dim}_H"] = out[f"seg_school_{dim}_H"] - out[
                f"seg_catchment_{dim}_H"]
            # Against neighbourhoods (districts, children 0-15), as Dignum et al. 2022
            # compare school H with neighbourhood H.
            out[f"excess_school_{dim}_H_res"] = out[f"seg_school_{dim}_H"] - out[
                f"seg_res_{dim}_H"]
        for lev, g in ((0, "g1"), (1, "g7")):
            n, loc, n_r, loc_r = self.intake[lev]
            out[f"local_school_share_{g}"] = float(_rate(loc, n))
            out[f"local_school_share_{g}_renewal"] = float(_rate(loc_r, n_r))
        has = m.schools.mean_outcome[(s_ses.sum(1) > 0)]
        out["outcome_gap_decile"] = gap_top_bottom_decile(has)
        # Rates of flows need a year behind them: empty (NaN) on a fresh start's year 0.
        n0 = self.n_start if self.booked else 0
        out["move_rate"] = float(_rate(self.flows["moves"], self.fam_ses.sum()))
        for k, band in enumerate(("0_6", "7_12", "13_15")):
            out[f"move_rate_age{band}"] = float(_rate(self.moves_band[k], self.fam_band[k]))
        for k in range(3):
            out[f"move_rate_ses{k}"] = float(_rate(self.moves_ses[k], self.fam_ses[k]))
        out["outmigration_rate"] = float(_rate(self.flows["left_city"], n0))
        out["outmigration_preschool_share"] = float(
            _rate(self.leaver_band[0], self.leaver_band.sum()))
        # Children aged 1-6 by age (rows) and by status and language (tally's columns).
        young = np.where(ch.active & (ch.age >= 1) & (ch.age <= 6), ch.age, -1)
        kids, inday = np.zeros((7, 5), dtype=np.int64), np.zeros((7, 5), dtype=np.int64)
        tally(young, ch.family, f.ses, f.lang, kids)
        tally(np.where(ch.daycare >= 0, young, -1), ch.family, f.ses, f.lang, inday)
        out["daycare_participation"] = float(_rate(inday[:, :3].sum(), kids[:, :3].sum()))
        out["foreign_share_age1_6"] = float(_rate(kids[:, 4].sum(), kids[:, 3:].sum()))
        under7 = ch.active & (ch.age <= 6)
        out["born_here_share_age0_6"] = float(
            _rate((under7 & ch.born_here).sum(), under7.sum()))
        for k in range(2):
            out[f"daycare_participation_lang{k}"] = float(
                _rate(inday[:, 3 + k].sum(), kids[:, 3 + k].sum()))
        for k in range(3):
            out[f"daycare_participation_ses{k}"] = float(_rate(inday[:, k].sum(), kids[:, k].sum()))
        for lo, hi in ((1, 2), (3, 6)):
            out[f"daycare_participation_age{lo}_{hi}"] = float(
                _rate(inday[lo:hi + 1, :3].sum(), kids[lo:hi + 1, :3].sum()))
        g9 = self.g9.sum(0)  # G9_COLS
        out["g9_dropout_share"] = float(_rate(g9[2] + g9[3], g9[0] + g9[1]))
        out["g9_general_share"] = float(_rate(g9[4] + g9[5], g9[0] + g9[1]))
        for k in range(2):
            out[f"g9_dropout_share_lang{k}"] = float(_rate(g9[2 + k], g9[k]))
            out[f"g9_general_share_lang{k}"] = float(_rate(g9[4 + k], g9[k]))
        out.update({k: float(v) for k, v in self.flows.items()})
        out["policy_cost_eur"] = m.ledger.total(m.year)
        return {k: float(v) for k, v in out.items()}

    def area_frame(self, year: int, areas: dict[str, np.ndarray]) -> pd.DataFrame:
        """Long table of one year's areas."""
        kinds = [k for k in areas if k != "cell" or self.m.cfg.output.cells_in_areas]
        sizes = [len(areas[k]) for k in kinds]
        mat = np.vstack([areas[k] for k in kinds])
        kind = np.repeat(kinds, sizes)
        renewal = np.full(len(mat), np.nan, dtype=object)  # a district flag; empty elsewhere
        renewal[kind == "district"] = self.m.city.renewal
        return pd.DataFrame({  # one constructor: inserts and concatenations copy the frame
            "year": np.full(len(mat), year), "kind": kind,
            "area_id": np.concatenate([np.arange(n) for n in sizes]),
            **dict(zip(AREA_COLS, mat.T, strict=True)), "renewal": renewal})

    def unit_frame(self, s_ses: np.ndarray, s_lang: np.ndarray, d_ses: np.ndarray,
                   d_lang: np.ndarray) -> pd.DataFrame:
        """Long table of this year's schools and daycares."""
        m = self.m
        sch, dcs = m.schools, m.daycares
        n_s, n_d = len(sch.cell), len(dcs.cell)
        kind = np.where(sch.level == 0, "school_lower", "school_upper")
        enrol = np.vstack([np.hstack([s_ses, s_lang]), np.hstack([d_ses, d_lang])])
        nan_d = np.full(n_d, np.nan)
        return pd.DataFrame({
            "year": np.full(n_s + n_d, m.year),
            "unit_id": unit_ids(SCHOOL, range(n_s)) + unit_ids(DAYCARE, range(n_d)),
            "kind": np.concatenate([kind, np.where(dcs.private, "daycare_private",
                                                   "daycare_municipal")]),
            "index": np.concatenate([np.arange(n_s), np.arange(n_d)]),
            "cell": np.concatenate([sch.cell, dcs.cell]),
            "capacity": np.concatenate([sch.capacity, dcs.capacity]),
            "design_capacity": np.concatenate([sch.design_capacity, dcs.capacity]),
            **{f"enrol_{c}": enrol[:, j] for j, c in enumerate(SES_COLS + LANG_COLS)},
            "enrolled": enrol[:, :3].sum(1),
            "intake": np.concatenate([self.intake_school[0], nan_d]),
            "intake_local": np.concatenate([self.intake_school[1], nan_d]),
            **{c: np.concatenate([self.g9[:, j], nan_d]) for j, c in enumerate(G9_COLS)},
            "reputation_native": np.concatenate([sch.rep_perceived[0], dcs.rep_perceived[0]]),
            "reputation_foreign": np.concatenate([sch.rep_perceived[1], dcs.rep_perceived[1]]),
            "mean_outcome": np.concatenate([sch.mean_outcome, nan_d]),
            "turnover": np.concatenate([sch.turnover, nan_d]),
            "resources": np.concatenate([sch.resources, dcs.resources]),
            "funding_eur": np.concatenate([sch.needs_funding, dcs.needs_funding]),
            "emphasis": np.concatenate([sch.emphasis, np.zeros(n_d, dtype=bool)]),
            "open": np.concatenate([sch.open, np.ones(n_d, dtype=bool)]),
        })

    def metrics_frame(self) -> pd.DataFrame:
        """All years' metrics, one row a year."""
        df = self.datacollector.get_model_vars_dataframe().reset_index(drop=True)
        df["year"] = df["year"].astype(np.int64)
        return df

    def units_frame(self) -> pd.DataFrame:
        """All years' unit rows."""
        return pd.concat(self.unit_frames, ignore_index=True)

    def ages_frame(self) -> pd.DataFrame:
        """All years' child flows by age (0-15), one row per year and age.

        Columns ``AGE_COLS``: children at the out-migration step and those leaving the city,
        by status; children born in the city, those of them leaving, and first moves within
        the city of children born here. In a settled city these period counts stand for a
        synthetic birth cohort (``calibration.moments``). Year 0 of a fresh start is empty.
        """
        frames = []
        for year, mat in self.age_counts:
            ages = pd.DataFrame(mat.T, columns=AGE_COLS)
            ages.insert(0, "age", np.arange(AGES))
            ages.insert(0, "year", year)
            frames.append(ages)
        return pd.concat(frames, ignore_index=True)

    def areas_frame(self) -> pd.DataFrame:
        """All years' area rows."""
        return pd.concat([self.area_frame(year, areas) for year, areas in self.area_counts],
                         ignore_index=True)
