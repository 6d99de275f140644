"""Phase: school choice at grades 1 and 7, and admissions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.kernels import Applicants, Programmes, SchoolPrefs, tally
from sim.metrics import counts
from sim.rng import counter_uniform
from sim.units import ENTRY_AGE, LEVEL_AGES, UPPER

if TYPE_CHECKING:
    from sim.model import SegregationModel


def school_choice(model: SegregationModel) -> None:
    """Phase: applications and admissions of this year's grade-1 and grade-7 entrants."""
    admit(model, entrants_only=True)


def initial_assignment(model: SegregationModel) -> None:
    """Set-up: every pupil, of every grade, applies once as if entering."""
    admit(model, entrants_only=False)


def admit(model: SegregationModel, entrants_only: bool) -> None:
    """Applications and admissions at both levels.

    Pupils without a school apply: entrants (or everyone at set-up) may look beyond their
    catchment school, with a probability rising with status and falling with less
    information and with the local school's perceived reputation (kernel
    ``rank_programmes``); admission is deferred acceptance with catchment priority at the
    general class and aptitude at emphasised classes (kernel ``deferred_acceptance``).
    A local child left without a seat gets a temporary place at the catchment school
    (``city.capacity_rule=guarantee``), or with ``hold`` a seat at the nearest school with
    one free, and a temporary place only where no school has one.
    """
    cfg, f, ch, sch = model.cfg, model.families, model.children, model.schools
    sc = cfg.behaviour.school
    rng = model.streams.get("school_choice", model.year)
    u_look = rng.random(ch.capacity)
    lottery = rng.random(ch.capacity)
    key = model.streams.key("school_choice_shocks", model.year)
    n_s = len(sch.cell)
    # Temporary places last only while pupils occupy them.
    sch.capacity = np.maximum(sch.design_capacity, model.enrolment())
    prefs = SchoolPrefs(w_rep=np.asarray(sc.w_reputation, float),
                        w_comp=np.asarray(sc.w_composition, float),
                        w_dist=np.asarray(sc.w_distance, float),
                        w_emph=np.asarray(sc.w_emphasis, float), max_km=float(sc.max_km),
                        n_ranked=int(sc.n_ranked))
    for lev, (lo, hi) in enumerate(LEVEL_AGES):
        app = np.flatnonzero(ch.active & (ch.age >= lo) & (ch.age <= hi) & (ch.school < 0))
        fam = ch.family[app]
        ses, lang, home = f.ses[fam], f.lang[fam], f.cell[fam]
        nominal = model.school_of_cell[lev, home]
        entry = (ch.age[app] == ENTRY_AGE[lev]) | (not entrants_only)
        local = (shared_admission(model, lev, app, nominal, ses, lottery)
                 if len(model.shared_schools) else nominal)
        rep_local = sch.rep_perceived[lang, local] + sch.trust[local]
        p_look = np.asarray(sc.look_prob)[ses] * f.info[fam] / sc.info_mean[0]
        p_look *= np.exp(-np.asarray(sc.look_reputation)[ses] * rep_local)
        p_look *= (sc.g7_look_factor if lev == UPPER else 1.0) * sch.optout[local]
        # Older pupils travel on their own: a km counts g7_distance_factor times as much
        # at grade 7, in the utility and in how far families look.
        level_prefs = (prefs._replace(w_dist=prefs.w_dist * sc.g7_distance_factor,
                                      max_km=prefs.max_km / sc.g7_distance_factor)
                       if lev == UPPER else prefs)
        looks = entry & (u_look[app] < p_look) & sc.enabled
        ids = np.flatnonzero((sch.level == lev) & sch.open)
        progs = np.column_stack([2 * ids, 2 * ids + 1]).ravel()
        # Only the lookers' shocks are read, so only they draw (most applicants do not look).
        gumbel = np.zeros((len(app), len(progs)))
        gumbel[looks] = -np.log(-np.log(counter_uniform(key, app[looks], progs)))
        prefs_lists = model.k.rank_programmes(
            Applicants(looks=looks, ses=ses, lang=lang, home_xy=model.city.xy[home],
                       local=local, gumbel=gumbel),
            Programmes(ids=ids, xy=model.school_xy, emphasis=sch.emphasis,
                       rep_perceived=sch.rep_perceived, lang_share=pupil_lang_share(model),
                       local_bonus=sc.local_bonus + sch.trust),
            level_prefs)
        # Priority: catchment children first at a general class, then lottery;
        # emphasised classes by aptitude.
        p_sch = np.maximum(prefs_lists, 0) // 2
        is_emph = (prefs_lists % 2) == 1
        prio = np.where(is_emph, ch.aptitude[app][:, None],
                        2.0 * (p_sch == local[:, None]) + lottery[app][:, None])
        seats = programme_seats(model, lev)
        got = model.k.deferred_acceptance(prefs_lists, prio, seats)
        if cfg.city.capacity_rule == "hold":  # seats hold: the nearest free seat instead
            seat_elsewhere(model, got, seats, home, lottery[app])
        # The catchment guarantee: a local child left without a seat (the local general
        # class filled with other local children) gets a temporary place there.
        short = got < 0
        got[short] = 2 * local[short]
        added = np.bincount(local[short], minlength=n_s)
        sch.capacity += added
        model.recorder.flows["capacity_added"] += int(added.sum())
        ch.school[app] = got // 2
        # Intake is booked for true entrants only (at set-up too: pupils of higher grades
        # are placed, but the year-0 local share is of grade-1 and grade-7 entrants).
        booked = ch.age[app] == ENTRY_AGE[lev]
        got_s = got[booked] // 2
        is_local = (got_s == nominal[booked]) | (got_s == local[booked])
        model.recorder.book_intake(lev, app[booked], is_local, got_s, n_s)


def shared_admission(model: SegregationModel, lev: int, app: np.ndarray, local: np.ndarray,
                     ses: np.ndarray, lottery: np.ndarray) -> np.ndarray:
    """Controlled choice in shared catchments: balance status across the group's schools.

    Applicants living in a shared catchment are taken in lottery order; each gets, as
    its guaranteed school, the group's open school with a free seat where its status
    class is least represented so far (continuing pupils plus this intake), ties to the
    school with most free seats; when every school of the group is full, the least
    represented one (the guarantee then adds a temporary place). Returns the updated
    guaranteed (local) school per applicant.
    """
    grp = model.shared_cell[lev, model.families.cell[model.children.family[app]]]
    if not (grp >= 0).any():
        return local
    ch, sch = model.children, model.schools
    n_s = len(sch.cell)
    p = ch.school >= 0
    cnt = counts(ch.school[p], model.families.ses[ch.family[p]], n_s, 3).astype(float)
    seats = sch.capacity - cnt.sum(1)
    local = local.copy()
    for j in np.flatnonzero(grp >= 0)[np.argsort(lottery[app[grp >= 0]], kind="stable")]:
        members = model.shared_schools[grp[j]]
        members = members[sch.open[members]]
        tot = np.maximum(cnt[members].sum(1), 1.0)
        share = cnt[members, ses[j]] / tot
        full = seats[members] <= 0
        best = members[np.lexsort((-seats[members], share, full & ~full.all()))[0]]
        local[j] = best
        cnt[best, ses[j]] += 1
        seats[best] -= 1
    return local


def seat_elsewhere(model: SegregationModel, got: np.ndarray, seats: np.ndarray,
                   home: np.ndarray, lottery: np.ndarray) -> None:
    """Place applicants without a seat at the nearest school with a free general seat.

    In lottery order, each unplaced applicant (``got < 0``) takes a general seat left after
    admission at the nearest school (straight-line distance from home) of its level;
    ``got`` is updated in place, and stays -1 where no school has a seat left.
    """
    short = np.flatnonzero(got < 0)
    if not len(short):
        return
    left = seats - np.bincount(got[got >= 0], minlength=len(seats))
    general = left[0::2].copy()  # programmes: 2 s general, 2 s + 1 emphasised
    xy = model.city.xy[home]
    for j in short[np.argsort(lottery[short], kind="stable")]:
        free = np.flatnonzero(general > 0)
        if not len(free):
            return
        s = free[np.argmin(np.hypot(*(model.school_xy[free] - xy[j]).T))]
        got[j], general[s] = 2 * s, general[s] - 1


def programme_seats(model: SegregationModel, lev: int) -> np.ndarray:
    """Free seats per programme (general, emphasised) of this level's open schools."""
    sch = model.schools
    free = np.maximum(sch.capacity - model.enrolment(), 0)
    intake = sch.capacity / (LEVEL_AGES[lev][1] - LEVEL_AGES[lev][0] + 1)
    emph = np.where(sch.emphasis, np.round(model.cfg.city.emphasis_seat_share * intake), 0)
    emph = np.minimum(emph, free).astype(np.int64)
    general = free - emph
    shut = ~sch.open | (sch.level != lev)
    general[shut], emph[shut] = 0, 0
    return np.column_stack([general, emph]).reshape(-1).astype(np.int64)


def pupil_lang_share(model: SegregationModel) -> np.ndarray:
    """Share of each language group among each school's pupils, shape (2, n_schools)."""
    ch, f = model.children, model.families
    out = np.zeros((len(model.schools.cell), 5), dtype=np.int64)
    tally(ch.school, ch.family, f.ses, f.lang, out)
    cnt = out[:, 3:].T.astype(float)
    tot = cnt.sum(0)
    return np.where(tot > 0, cnt / np.maximum(tot, 1), 0.5)
