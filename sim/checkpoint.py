"""Settled-state checkpoints: the city after its burn-in, saved once and reused.

With ``start=settled`` a run begins ``burn_in_years`` before year 0 and runs unrecorded
years, with the levers off, until year 0. That state depends only on the city, the
behaviour, the run seed and the burn-in length, not on the scenario, the horizon or the
output settings, so every scenario and replicate of a study that share a seed start from
the same state as their baseline twin, and it is computed once.

A checkpoint is one ``.npz`` file named by its key, the SHA-256 of:

* a format tag (``FORMAT``);
* the parts of the config that shape the settled state (``seed``, ``start``,
  ``burn_in_years``, ``city``, ``behaviour``);
* the source code of ``sim`` and ``agents`` (a change of the model invalidates it).

The file holds every array the continuation reads (family and child pools, school and
daycare arrays, the city arrays, which are Mesa property layers, catchment maps, the
year's flow accounts, Mesa's agent-id counter and each family's id), its own key, and a
digest of its arrays. On load the key and the digest are checked: a corrupt file is logged
and recomputed, a file whose key is not the one asked for is refused (``ValueError``),
never used. Files are written atomically (``sim.io.atomic_write``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from agents import Family
from sim.config import Config, as_dict
from sim.io import atomic_write
from sim.settle import RULE

if TYPE_CHECKING:
    from sim.model import SegregationModel

log = logging.getLogger(__name__)

FORMAT = "kaikkien-koulu-settled-v4"  # v4: the children's net-move account
SHAPING_KEYS = ("seed", "start", "burn_in_years", "city", "behaviour")
POOLS = ("families", "children")
UNITS = ("schools", "daycares")
MODEL_ARRAYS = ("school_of_cell", "shared_cell", "school_xy")
ROOT = Path(__file__).resolve().parent.parent


def burn_in_years(cfg: Config) -> int:
    """Years run before year 0: ``burn_in_years`` with ``start=settled``, else 0."""
    return cfg.burn_in_years if cfg.start == "settled" else 0


@functools.cache
def code_hash() -> str:
    """SHA-256 of the model's source (``sim`` and ``agents``), in a fixed file order."""
    h = hashlib.sha256()
    for pkg in ("sim", "agents"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            h.update(path.relative_to(ROOT).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def key(cfg: Config, anchor: Config | None = None) -> str:
    """The checkpoint key of ``cfg``: a hash of everything that shapes its settled state.

    A warm state (``sim.settle``: re-settled from the settled state of ``anchor``) has the
    anchor's key and the re-settling rule in its own, so it is never taken for the cold one.
    """
    d = as_dict(cfg)
    shaping = {k: d[k] for k in SHAPING_KEYS}
    parts = {"format": FORMAT, "config": shaping, "code": code_hash()}
    if anchor is not None:
        parts["warm"] = {"anchor": key(anchor), "rule": RULE}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def path_for(cfg: Config, folder: str | Path, anchor: Config | None = None) -> Path:
    """Where the checkpoint of ``cfg`` (warm from ``anchor``, if given) lives in ``folder``."""
    return Path(folder) / f"settled_{key(cfg, anchor)[:32]}.npz"


def digest(state: dict[str, np.ndarray]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of the arrays, in name order."""
    h = hashlib.sha256()
    for name in sorted(state):
        if name in ("_key", "_digest"):
            continue
        arr = np.ascontiguousarray(state[name])
        h.update(f"{name}|{arr.dtype.str}|{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def capture(model: SegregationModel) -> dict[str, np.ndarray]:
    """Every array of ``model`` that the years after the burn-in read.

    Raises:
        ValueError: The model has levers, a ledger entry or shared catchments (a settled
            state is lever-free by construction).
    """
    if model.levers or model.ledger.entries or model.shared_schools:
        raise ValueError("checkpoint: only a lever-free settled state can be saved")
    state: dict[str, np.ndarray] = {"year": np.int64(model.year),
                                    "agent_id_counter": np.int64(model.agent_id_counter),
                                    "resettled_years": np.int64(model.resettled_years)}
    for name in POOLS:
        pool = getattr(model, name)
        state[f"{name}.active"] = pool.active
        state[f"{name}.away"] = pool.away
        for field in pool._fields:
            state[f"{name}.{field}"] = getattr(pool, field)
    for name in (*UNITS, "city"):
        for field, value in vars(getattr(model, name)).items():
            if isinstance(value, np.ndarray):
                state[f"{name}.{field}"] = value
    for name in MODEL_ARRAYS:
        state[name] = getattr(model, name)
    rec = model.recorder
    for name in rec.ACCOUNTS:
        state[f"recorder.{name}"] = np.asarray(getattr(rec, name))
    state["recorder.flows"] = np.array([rec.flows[k] for k in sorted(rec.flows)])
    # In Mesa's order (the order they joined), so a restored model lists them the same way.
    families = list(model.agents_by_type.get(Family, ()))
    state["family_agent_slot"] = np.array([a.slot for a in families], dtype=np.int64)
    return state


def restore(model: SegregationModel, state: dict[str, np.ndarray]) -> None:
    """Put a captured state into a model built from the same config (before year 0).

    City arrays are written in place, so the Mesa property layers they view stay theirs.
    The family agents are rebuilt with their ids.
    """
    model.year = int(state["year"])
    for name in POOLS:
        pool = getattr(model, name)
        pool.active = state[f"{name}.active"].copy()
        pool.away = state[f"{name}.away"].copy()
        for field in pool._fields:
            setattr(pool, field, state[f"{name}.{field}"].copy())
    for name in UNITS:
        obj = getattr(model, name)
        for field in list(vars(obj)):
            setattr(obj, field, state[f"{name}.{field}"].copy())
    city = model.city
    for field, value in vars(city).items():
        if isinstance(value, np.ndarray):
            value[...] = state[f"city.{field}"]
    for name in MODEL_ARRAYS:
        setattr(model, name, state[name].copy())
    rec = model.recorder
    for name in rec.ACCOUNTS:
        value = state[f"recorder.{name}"]
        setattr(rec, name, value.copy() if value.ndim else value.item())
    flows = dict(zip(sorted(rec.flows), state["recorder.flows"].tolist(), strict=True))
    rec.flows = {k: flows[k] for k in rec.flows}  # the recorder's own order
    model.add_family_agents(state["family_agent_slot"])  # with their ids, families.uid
    model.agent_id_counter = int(state["agent_id_counter"])


def save(model: SegregationModel, folder: str | Path, anchor: Config | None = None) -> Path:
    """Write the settled state of ``model`` (warm from ``anchor``) to its file in ``folder``."""
    state = capture(model)
    state["_key"] = np.array(key(model.cfg, anchor))
    state["_digest"] = np.array(digest(state))
    path = path_for(model.cfg, folder, anchor)
    atomic_write(path, lambda p: _write_npz(p, state))
    log.debug("settled state saved: %s", path)  # studies save hundreds: their bars show it
    return path


def _write_npz(path: Path, state: dict[str, np.ndarray]) -> None:
    with path.open("wb") as fh:
        np.savez(fh, **state)


def load(cfg: Config, folder: str | Path,
         anchor: Config | None = None) -> dict[str, np.ndarray] | None:
    """The settled state of ``cfg`` (warm from ``anchor``) from ``folder``, or ``None``.

    ``None`` means it must be computed.

    ``None`` also for ``start=fresh`` (there is nothing to restore) and for a corrupt file
    (logged; it is then recomputed and overwritten).

    Raises:
        ValueError: The file holds the state of another config or model version.
    """
    if burn_in_years(cfg) == 0:
        return None
    path = path_for(cfg, folder, anchor)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            state = {name: npz[name] for name in npz.files}
        stored_key, stored_digest = str(state["_key"]), str(state["_digest"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("checkpoint %s is unreadable (%s); recomputing the settled state",
                    path, exc)
        return None
    if stored_key != key(cfg, anchor):
        raise ValueError(f"checkpoint {path} holds the settled state of another config or "
                         "model version (key mismatch); delete it or choose another "
                         "checkpoint_dir")
    if stored_digest != digest(state):
        log.warning("checkpoint %s is corrupt (digest mismatch); recomputing the settled "
                    "state", path)
        return None
    return state
