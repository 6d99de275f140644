"""The Mesa adapter (agents/mesa_bulk.py): Mesa's public views after bulk add, remove, restore.

The bulk registration writes Mesa's private agent sets. These tests read only Mesa's public
API (``model.agents``, ``model.agents_by_type``, ``len``, ``select``, ``shuffle_do``) and
compare it with what Mesa's own per-agent calls (``Agent.__init__``, ``Agent.remove``)
give, so a Mesa release that changes the internals fails here.
"""

from __future__ import annotations

import mesa
import numpy as np
from mesa.model import ModelSignals

from agents import Daycare, Family, School, mesa_bulk
from conftest import TINY, tiny_config
from sim.model import SegregationModel

SETTLED = [o for o in TINY if o != "start=fresh"] + ["start=settled", "burn_in_years=3",
                                                    "years=2"]


class Probe(mesa.Agent):
    """A minimal agent class registered only through the adapter."""

    def poke(self) -> None:
        self.poked = getattr(self, "poked", 0) + 1


def probes(model: mesa.Model, n: int) -> list[Probe]:
    first = mesa_bulk.reserve_ids(model, n)
    agents = []
    for uid in range(first, first + n):
        agent = Probe.__new__(Probe)
        agent.model, agent.unique_id, agent.pos = model, uid, None
        agents.append(agent)
    mesa_bulk.add(model, Probe, agents)
    return agents


def test_public_views_after_bulk_add_and_remove() -> None:
    model = mesa.Model(rng=1)
    own = Probe(model)  # one registered by Mesa itself
    batch = probes(model, 5)
    assert len(model.agents) == 6 and len(model.agents_by_type[Probe]) == 6
    assert list(model.agents) == [own, *batch]  # joining order, as Mesa keeps it
    ids = [a.unique_id for a in model.agents]
    assert ids == list(range(1, 7)) and model.agent_id_counter == 7
    assert set(model.agents.select(lambda a: a.unique_id > 3)) == set(batch[2:])
    assert len(model.agents.select(agent_type=Probe)) == 6
    model.agents.shuffle_do("poke")
    assert all(a.poked == 1 for a in model.agents)
    mesa_bulk.remove(model, Probe, batch[1:3])
    assert list(model.agents) == [own, batch[0], *batch[3:]]
    assert list(model.agents_by_type[Probe]) == list(model.agents)
    model.agents_by_type[Probe].shuffle_do("poke")
    assert [a.poked for a in model.agents] == [2, 2, 2, 2]
    batch[3].remove()  # Mesa's own removal of a bulk-added agent works
    assert len(model.agents) == 3 and batch[3] not in model.agents_by_type[Probe]


def test_empty_batches_touch_nothing() -> None:
    model = mesa.Model(rng=1)
    mesa_bulk.add(model, Probe, [])
    mesa_bulk.remove(model, Probe, [])  # no agent of the class was ever registered
    assert Probe not in model.agents_by_type and len(model.agents) == 0


def views(model: SegregationModel) -> dict:
    """What Mesa's public API shows of a model's agents."""
    fams = model.agents_by_type[Family]
    return {"all": [(type(a).__name__, a.unique_id) for a in model.agents],
            "families": [(a.unique_id, a.slot) for a in fams],
            "types": {t.__name__: len(s) for t, s in model.agents_by_type.items()},
            "low": len(fams.select(lambda a: a.ses == 0)),
            "counter": model.agent_id_counter}


class Listener:
    """Any subscriber makes the model use Mesa's per-agent calls."""

    def heard(self, signal) -> None:
        pass


def test_bulk_bookkeeping_equals_mesas_own_calls() -> None:
    bulk = SegregationModel(tiny_config("seed=2", "years=3"))
    public = SegregationModel(tiny_config("seed=2", "years=3"))
    listener = Listener()
    public.observe("agents", ModelSignals.AGENT_ADDED, listener.heard)
    public.observe("agents", ModelSignals.AGENT_REMOVED, listener.heard)
    assert views(bulk) == views(public)
    bulk.run(), public.run()  # thousands of bulk adds and removes against per-agent calls
    assert views(bulk) == views(public)
    n_units = len(bulk.schools.cell) + len(bulk.daycares.cell)
    assert len(bulk.agents) == len(bulk.family_agents) + n_units
    assert len(bulk.agents_by_type[School]) + len(bulk.agents_by_type[Daycare]) == n_units
    bulk.agents.shuffle_do(lambda a: setattr(a, "seen", True))
    assert all(a.seen for a in bulk.agents_by_type[Family])


def test_restore_gives_the_views_of_the_straight_run(tmp_path) -> None:
    from sim.config import load_config

    cfg = load_config(SETTLED)
    straight = SegregationModel(cfg, checkpoints=tmp_path)
    restored = SegregationModel(cfg, checkpoints=tmp_path)
    assert views(restored) == views(straight)
    straight.run(), restored.run()
    assert views(restored) == views(straight)


def test_restoring_a_city_without_families_runs(tmp_path) -> None:
    # Issue #21, bug 4: everyone leaves during the burn-in of a small, extreme city; the
    # restored model has no Family agent set, and the next year's (empty) departures used to
    # raise KeyError <class 'agents.family.Family'> in Family.leave.
    from sim.config import load_config

    cfg = load_config([*SETTLED, "behaviour.demography.arrival_ratio=0",
                       "behaviour.demography.first_birth_rate=0",
                       "behaviour.demography.return_logit=-20",
                       "behaviour.demography.outmig_logit=[[5,5,5],[5,5,5],[5,5,5]]"])
    first = SegregationModel(cfg, checkpoints=tmp_path)
    assert not first.family_agents and len(list(tmp_path.glob("*.npz"))) == 1
    restored = SegregationModel(cfg, checkpoints=tmp_path)
    assert Family not in restored.agents_by_type
    restored.run()
    assert restored.year == cfg.years and not np.any(restored.families.active)
