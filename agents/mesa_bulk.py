"""Bulk registration of agents with a Mesa model: the one module that reads Mesa's internals.

Mesa (3.5) registers agents one at a time: ``Agent.__init__`` calls
``Model.register_agent`` and ``Agent.remove`` calls ``Model.deregister_agent``, each call an
observable signal and two hash-table updates. Families arrive and leave by the thousand
every year, so :func:`add` and :func:`remove` do the same bookkeeping for a whole batch:
the model's agent set (``model.agents``) and the per-type set (``model.agents_by_type``),
with ids from the model's counter. They write Mesa's private ``Model._all_agents``,
``Model._agents_by_type`` and ``AgentSet._agents``; ``tests/test_mesa_bulk.py`` checks
Mesa's public views after a bulk add, a bulk remove and a restore, so that a Mesa release
that changes those internals fails a test, not a user's run.

Callers fall back to the per-agent calls (:func:`observed`) whenever anything listens to
Mesa's agent signals or a Mesa data registry tracks the agent class, so every signal is
still sent. ``benchmarks/core.py --mesa-public`` measures the per-agent path.
"""

from __future__ import annotations

from collections.abc import Sequence

import mesa
from mesa.agentset import _HardKeyAgentSet
from mesa.model import ModelSignals

ADDED, REMOVED = ModelSignals.AGENT_ADDED, ModelSignals.AGENT_REMOVED


def observed(model: mesa.Model, cls: type[mesa.Agent], signal: ModelSignals) -> bool:
    """Whether per-agent registration is needed: a signal subscriber or a data registry."""
    return bool(cls._datasets) or model._has_subscribers("agents", signal)


def reserve_ids(model: mesa.Model, n: int) -> int:
    """Take ``n`` unique ids from the model's counter; returns the first."""
    first = model.agent_id_counter
    model.agent_id_counter = first + n
    return first


def add(model: mesa.Model, cls: type[mesa.Agent], agents: Sequence[mesa.Agent]) -> None:
    """Register ``agents`` (all of class ``cls``, ids already set) in Mesa's agent sets."""
    if not agents:
        return
    batch = dict.fromkeys(agents)
    model._all_agents._agents.update(batch)
    by_type = model._agents_by_type
    if cls in by_type:
        by_type[cls]._agents.update(batch)
    else:
        by_type[cls] = _HardKeyAgentSet(agents, random=model.random)


def remove(model: mesa.Model, cls: type[mesa.Agent], agents: Sequence[mesa.Agent]) -> None:
    """Deregister ``agents`` (all of class ``cls``, each registered) from Mesa's agent sets."""
    if not agents:  # also when no agent of cls was ever registered (a restored empty city)
        return
    every, mine = model._all_agents._agents, model._agents_by_type[cls]._agents
    for agent in agents:
        del every[agent], mine[agent]
