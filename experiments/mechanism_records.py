"""What a mechanism decomposition records of a run, year by year, from the model's state.

Nothing here touches the model or slows an ordinary run: :func:`run_mechanism_task` runs a
task as ``experiments.tasks.run_scenario_task`` does (same config, levers, checkpoint and
metrics table) and, after each year, reads the family, child, school and dwelling arrays
and compares them with the year before. Families are followed by their Mesa id
(``families.uid``, kept while a family is away), so slot reuse does not confuse them.

Cells fall into three *area types*: ``renewal`` (the urban-renewal districts), ``neighbour``
(districts that share a border with one) and ``rest``. The tables, one row per year and
group (``year`` 1..years, labels of the task added by the runner):

* ``housing``: dwellings, occupied and vacant dwellings by area type and tenure
  (0 social rental, 1 private rental, 2 owner-occupied), at the end of the year;
* ``families``: housed families by area type, status (``ses``) and language (``lang``);
* ``flows``: families by ``kind`` (``move``: within the city, home cell or tenure changed;
  ``entry``: not in the city last year; ``exit_left``: gone, youngest child under 15 last
  year, i.e. out-migration; ``exit_aged``: gone, youngest was 15, i.e. aged out), origin
  and destination area type (``outside`` for the city's edge), status, language and
  destination tenure. Each area's families change by its entries and moves in minus its
  exits and moves out (``tests/test_mechanisms.py``);
* ``intake``: this year's grade-1 and grade-7 entrants by home area type, status and
  language, and whether the school they got is their catchment school (``catchment``),
  another school of their shared catchment (``shared``) or another school (``away``), with
  the summed status (mean 0-2 over its pupils) and low-status share of the schools got;
* ``school_h``: the decomposition of school status and language H over all pupils:
  ``school_H`` (the pupils in their schools, as ``seg_school_*_H``), ``home_H`` (the same
  pupils counted at the catchment school of their home at their school's level: where the
  homes alone would put them) and ``choice_H = school_H - home_H`` (what choice and
  admission add given the homes); each also split by the area type of the school as Theil
  H's additive unit terms, and the city entropy ``E`` (a changed city mix changes every H).
"""

from __future__ import annotations

import gc
import logging
from typing import Any

import numpy as np
import pandas as pd

from experiments.tasks import build_task_model, metrics_table
from sim.metrics import counts
from sim.units import ENTRY_AGE, LEVEL_AGES

AREAS = ("renewal", "neighbour", "rest")
OUTSIDE = "outside"
CHOICES = ("catchment", "shared", "away")


def neighbours4(width: int, height: int) -> np.ndarray:
    """4-neighbours of each flat cell id (``(x, y) = divmod(id, height)``), -1 off the grid."""
    ids = np.arange(width * height)
    x, y = np.divmod(ids, height)
    return np.column_stack([np.where(x > 0, ids - height, -1),
                            np.where(x < width - 1, ids + height, -1),
                            np.where(y > 0, ids - 1, -1), np.where(y < height - 1, ids + 1, -1)])


def area_types(city: Any) -> np.ndarray:
    """Area type per cell: 0 renewal, 1 neighbour (district bordering one), 2 rest, -1 sea."""
    dist = city.district
    ren = city.renewal_cell
    nb = neighbours4(city.width, city.height)
    touch = ren[np.maximum(nb, 0)] & (nb >= 0)
    border = np.zeros(city.n_districts, dtype=bool)
    edge = touch.any(1) & (dist >= 0) & ~ren
    border[dist[edge]] = True
    kind = np.where(ren, 0, np.where(border[np.maximum(dist, 0)], 1, 2))
    return np.where(dist >= 0, kind, -1).astype(np.int64)


def unit_terms(mat: np.ndarray) -> tuple[np.ndarray, float]:
    """Theil H's additive term of each unit (rows), summing to H, and the city entropy E.

    ``H = sum_i sum_m c_im ln(pi_im / pi_m) / (T E)`` (``sim.indices.theil_h``); the term
    of unit ``i`` is its inner sum over ``T E``.
    """
    c = np.asarray(mat, dtype=np.float64)
    t_i, t_m = c.sum(1), c.sum(0)
    big_t = t_m.sum()
    pi_m = t_m[t_m > 0] / max(big_t, 1.0)
    entropy = float(-(pi_m * np.log(pi_m)).sum())
    if big_t <= 0 or entropy <= 0:
        return np.full(len(c), np.nan), entropy
    nz = c > 0
    ratio = np.divide(c * big_t, np.outer(t_i, t_m), out=np.ones_like(c), where=nz)
    return (c * np.log(ratio)).sum(1) / (big_t * entropy), entropy


class Recorder:
    """Follows one run year by year; ``tables()`` gives the long tables of the module doc."""

    def __init__(self, model: Any) -> None:
        self.m = model
        self.area = area_types(model.city)
        self.rows: dict[str, list[pd.DataFrame]] = {
            k: [] for k in ("housing", "families", "flows", "intake", "school_h")}
        self.prev = self.snapshot()

    def snapshot(self) -> dict[str, np.ndarray]:
        """Housed families (by Mesa id) and their home area, status, language, tenure."""
        f = self.m.families
        s = np.flatnonzero(f.active & (f.cell >= 0))
        young = self.m.youngest()[s]
        order = np.argsort(f.uid[s], kind="stable")
        s = s[order]
        return {"uid": f.uid[s], "cell": f.cell[s], "area": self.area[f.cell[s]],
                "ses": f.ses[s], "lang": f.lang[s], "tenure": f.tenure[s],
                "young": young[order]}

    def record(self) -> None:
        """After a year: add its rows to every table."""
        now = self.snapshot()
        year = self.m.year
        self.rows["housing"].append(self.housing(year))
        self.rows["families"].append(_group(year, {
            "area": np.array(AREAS)[now["area"]], "ses": now["ses"], "lang": now["lang"]}))
        self.rows["flows"].append(self.flows(year, self.prev, now))
        self.rows["intake"].append(self.intake(year))
        self.rows["school_h"].append(self.school_h(year))
        self.prev = now

    def housing(self, year: int) -> pd.DataFrame:
        """Dwellings, occupied and vacant by area type and tenure."""
        f, d = self.m.families, self.m.city.dwellings
        a = f.active & (f.cell >= 0)
        occ = counts(f.cell[a], f.tenure[a], len(d), 3)
        dw = _by_area(self.area, d)
        oc = _by_area(self.area, occ)
        return pd.DataFrame({"year": year, "area": np.repeat(AREAS, 3),
                             "tenure": np.tile(np.arange(3), 3), "dwellings": dw.ravel(),
                             "occupied": oc.ravel(), "vacant": (dw - oc).ravel()})

    @staticmethod
    def flows(year: int, prev: dict, now: dict) -> pd.DataFrame:
        """Moves, entries and exits between last year's and this year's families."""
        names = np.array([*AREAS, OUTSIDE])
        both, i_p, i_n = np.intersect1d(prev["uid"], now["uid"], assume_unique=True,
                                        return_indices=True)
        moved = ((prev["cell"][i_p] != now["cell"][i_n])
                 | (prev["tenure"][i_p] != now["tenure"][i_n]))
        gone = np.setdiff1d(np.arange(len(prev["uid"])), i_p, assume_unique=True)
        new = np.setdiff1d(np.arange(len(now["uid"])), i_n, assume_unique=True)
        mp, mn = i_p[moved], i_n[moved]
        parts = [
            ("move", prev["area"][mp], now["area"][mn], now["ses"][mn], now["lang"][mn],
             now["tenure"][mn]),
            ("entry", np.full(len(new), 3), now["area"][new], now["ses"][new],
             now["lang"][new], now["tenure"][new]),
        ]
        aged = prev["young"][gone] >= 15
        for kind, sel in (("exit_aged", gone[aged]), ("exit_left", gone[~aged])):
            parts.append((kind, prev["area"][sel], np.full(len(sel), 3), prev["ses"][sel],
                          prev["lang"][sel], np.full(len(sel), -1)))
        frames = [_group(year, {"kind": np.full(len(o), k), "origin": names[o],
                                "destination": names[d], "ses": s, "lang": la, "tenure": t})
                  for k, o, d, s, la, t in parts]
        return pd.concat(frames, ignore_index=True)

    def school_status(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per school: pupils by status (n x 3), mean status and low-status share."""
        ch, f = self.m.children, self.m.families
        p = ch.active & (ch.school >= 0)
        by = counts(ch.school[p], f.ses[ch.family[p]], len(self.m.schools.cell), 3)
        n = np.maximum(by.sum(1), 1)
        return by, (by[:, 1] + 2 * by[:, 2]) / n, by[:, 0] / n

    def intake(self, year: int) -> pd.DataFrame:
        """The year's entrants: home area, status, language, kind of school got."""
        m = self.m
        ch, f = m.children, m.families
        _, mean, low = self.school_status()
        frames = []
        for lev in range(len(LEVEL_AGES)):
            k = np.flatnonzero(ch.active & (ch.age == ENTRY_AGE[lev]) & (ch.school >= 0))
            fam = ch.family[k]
            home = f.cell[fam]
            got, nominal = ch.school[k], m.school_of_cell[lev, home]
            grp = m.shared_cell[lev, home]
            in_group = np.zeros(len(k), dtype=bool)
            for g, members in enumerate(m.shared_schools):
                sel = grp == g
                in_group[sel] = np.isin(got[sel], members)
            choice = np.where(got == nominal, 0, np.where(in_group, 1, 2))
            df = pd.DataFrame({"level": lev, "area": np.array(AREAS)[self.area[home]],
                               "ses": f.ses[fam], "lang": f.lang[fam],
                               "choice": np.array(CHOICES)[choice],
                               "school_status": mean[got], "school_low_share": low[got],
                               "school_area": np.array(AREAS)[self.area[m.schools.cell[got]]]})
            frames.append(df)
        df = pd.concat(frames, ignore_index=True)
        keys = ["level", "area", "ses", "lang", "choice", "school_area"]
        out = df.groupby(keys).agg(n=("ses", "size"), school_status_sum=("school_status", "sum"),
                                   school_low_share_sum=("school_low_share", "sum"))
        return out.reset_index().assign(year=year)

    def school_h(self, year: int) -> pd.DataFrame:
        """School H, home H and choice H over all pupils, split by the school's area type."""
        m = self.m
        ch, f = m.children, m.families
        p = np.flatnonzero(ch.active & (ch.school >= 0))
        school = ch.school[p]
        home = m.school_of_cell[m.schools.level[school], f.cell[ch.family[p]]]
        n_s = len(m.schools.cell)
        s_area = self.area[m.schools.cell]
        rows = []
        for dim, group, n_g in (("ses", f.ses[ch.family[p]], 3), ("lang", f.lang[ch.family[p]], 2)):
            terms = {}
            for name, unit in (("school", school), ("home", home)):
                terms[name], entropy = unit_terms(counts(unit, group, n_s, n_g))
            for a in (*range(3), -9):
                sel = s_area == a if a >= 0 else slice(None)
                s_h, h_h = terms["school"][sel].sum(), terms["home"][sel].sum()
                rows.append({"year": year, "dim": dim,
                             "school_area": AREAS[a] if a >= 0 else "city",
                             "school_H": s_h, "home_H": h_h, "choice_H": s_h - h_h,
                             "E": entropy, "pupils": len(p)})
        return pd.DataFrame(rows)

    def tables(self, labels: dict[str, Any]) -> dict[str, pd.DataFrame]:
        """The tables with the task's labels as first columns."""
        out = {}
        for name, frames in self.rows.items():
            df = pd.concat(frames, ignore_index=True)
            lab = pd.DataFrame({k: [v] * len(df) for k, v in labels.items()})
            out[name] = pd.concat([lab, df], axis=1)
        return out


def _by_area(area: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Sum the rows of ``mat`` (cells x k) by area type (3 x k); sea cells left out."""
    out = np.zeros((3, mat.shape[1]), dtype=np.int64)
    land = area >= 0
    np.add.at(out, area[land], mat[land])
    return out


def _group(year: int, cols: dict[str, np.ndarray]) -> pd.DataFrame:
    """Count the rows of ``cols`` by all its columns; ``year`` first, ``n`` last."""
    df = pd.DataFrame(cols)
    out = df.groupby(list(cols), dropna=False).size().rename("n").reset_index()
    out.insert(0, "year", year)
    return out


def run_mechanism_task(context: dict, task: dict) -> dict[str, Any]:
    """Run one task (as ``run_scenario_task``) and record its mechanism tables each year.

    Returns ``{"table": metrics, "mechanisms": {name: DataFrame}}``; the metrics table is
    the one ``run_scenario_task`` returns for the same context and task.
    """
    logging.getLogger("MESA").setLevel(logging.WARNING)
    model = build_task_model(context, task)
    rec = Recorder(model)
    try:  # as SegregationModel.run: long-lived objects out of the collector's scans
        for _ in range(model.cfg.years):
            gc.freeze()
            model.step()
            rec.record()
    finally:
        gc.unfreeze()
    model.finalize()
    labels = {k: v for k, v in task.items() if k != "values"}
    return {"table": metrics_table(model, context, task),
            "mechanisms": rec.tables(labels)}
