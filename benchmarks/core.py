"""Core-model benchmark: ``python benchmarks/core.py --preset helsinki --years 30``.

Prints one JSON line:

* ``run_s``, ``init_s``, ``family_years_per_s``: wall time of the main run after JIT, of
  building the model (city, population, set-up phases), and simulated family-years per
  second of the run;
* ``phases``: seconds per simulated year in each phase of ``sim.model.YEAR``, and
  ``mesa_bookkeeping_share``: the share of a year spent creating and removing Mesa family
  agents (``--mesa-public``: through Mesa's per-agent calls instead of ``agents.mesa_bulk``);
* ``threads``: the same run with ``threads=2`` (numba's parallel kernels), its wall time
  and speed-up;
* ``jit_compile_s``: compile time of all kernels, measured with an empty numba cache;
* ``peak_rss_mb``: peak resident memory;
* ``scaling``: family-years per second at several city sizes (cost linear in families
  means a flat rate);
* ``mesa_schelling_agent_steps_per_s`` and ``ratio_to_schelling``: Mesa's own Schelling
  example on a 100 x 100 grid in the same process, and our family-years per second over
  its agent-steps per second.

Run on one core of a quiet machine (``taskset -c 0``; the threads run needs two). Numbers
for this repository are in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from collections import Counter

# An empty cache so that jit_compile_s measures a real compile (set before numba loads).
os.environ.setdefault("NUMBA_CACHE_DIR", tempfile.mkdtemp(prefix="numba-bench-"))

from mesa.examples.basic.schelling.model import Schelling, SchellingScenario  # noqa: E402

from agents import mesa_bulk  # noqa: E402
from sim.config import load_config  # noqa: E402
from sim.model import YEAR, SegregationModel  # noqa: E402


def scaled(preset: str, frac: float, years: int, seed: int) -> list[str]:
    """Overrides for a city with ``frac`` of the preset's families, area and units."""
    base = load_config([f"city={preset}"]).city
    side = frac**0.5

    def n(x: int) -> int:
        return max(2, round(x * frac))

    return [
        f"city={preset}", f"seed={seed}", f"years={years}", "output.progress=false",
        f"city.n_families={max(200, round(base.n_families * frac))}",
        f"city.width={max(16, round(base.width * side))}",
        f"city.height={max(14, round(base.height * side))}",
        f"city.n_districts={max(5, n(base.n_districts))}",
        f"city.n_lower_schools={n(base.n_lower_schools)}",
        f"city.n_upper_schools={n(base.n_upper_schools)}",
        f"city.n_daycares={n(base.n_daycares)}",
    ]


class PhaseClock:
    """Times every phase of the year and the Mesa family bookkeeping of one model."""

    def __init__(self, model: SegregationModel) -> None:
        self.seconds: Counter[str] = Counter()
        model.phases = tuple(self.timed(p, p.__module__.rsplit(".", 1)[-1] + "." + p.__name__)
                             for p in YEAR)
        model.add_family_agents = self.timed(model.add_family_agents, "mesa")
        model.remove_family_agents = self.timed(model.remove_family_agents, "mesa")

    def timed(self, fn, name: str):  # noqa: ANN001, ANN201
        def call(*args):  # noqa: ANN002, ANN202
            t0 = time.perf_counter()
            out = fn(*args)
            self.seconds[name] += time.perf_counter() - t0
            return out

        return call


def timed_run(overrides: list[str], clock: bool = False) -> dict:
    """Build and run a model; returns wall times, family-years and phase seconds."""
    t0 = time.perf_counter()
    model = SegregationModel(load_config(overrides))
    t1 = time.perf_counter()
    phases = PhaseClock(model) if clock else None
    model.run()
    t2 = time.perf_counter()
    fy = float(model.recorder.metrics_frame()["n_families"].iloc[1:].sum())
    return {"init_s": t1 - t0, "run_s": t2 - t1, "family_years": fy,
            "phases": phases.seconds if phases else None, "years": model.year}


def schelling_rate(steps: int = 20) -> float:
    """Agent-steps per second of Mesa's Schelling example (100 x 100 grid, after warm-up)."""
    m = Schelling(SchellingScenario(width=100, height=100, rng=1))
    m.step()
    n = len(m.agents)
    t0 = time.perf_counter()
    for _ in range(steps):
        m.step()
    return n * steps / (time.perf_counter() - t0)


def main() -> None:
    """Run the benchmark and print one JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="helsinki")
    ap.add_argument("--years", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sizes", default="0.25,0.5,1.0", help="fractions for the scaling runs")
    ap.add_argument("--scaling-years", type=int, default=10)
    ap.add_argument("--mesa-public", action="store_true",
                    help="register families through Mesa's per-agent public API "
                    "(Agent.__init__, Agent.remove) instead of agents.mesa_bulk")
    args = ap.parse_args()
    if args.mesa_public:
        mesa_bulk.observed = lambda *_: True  # as if a signal subscriber were listening

    tiny = scaled(args.preset, 0.02, 1, args.seed)
    t0 = time.perf_counter()
    timed_run(tiny)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    timed_run(tiny)
    jit_s = first - (time.perf_counter() - t0)

    main_ov = [f"city={args.preset}", f"years={args.years}", f"seed={args.seed}",
               "output.progress=false"]
    main_run = timed_run(main_ov)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fyps = main_run["family_years"] / main_run["run_s"]
    clocked = timed_run(main_ov, clock=True)
    per_year = {k: round(v / clocked["years"], 4) for k, v in clocked["phases"].items()}
    year_s = sum(v for k, v in clocked["phases"].items() if k != "mesa") / clocked["years"]

    threads = None
    if len(os.sched_getaffinity(0)) >= 2:
        par = timed_run([*main_ov, "threads=2"])
        threads = {"threads": 2, "run_s": round(par["run_s"], 2),
                   "speedup": round(main_run["run_s"] / par["run_s"], 2)}

    scaling = []
    for frac in (float(x) for x in args.sizes.split(",")):
        r = timed_run(scaled(args.preset, frac, args.scaling_years, args.seed))
        scaling.append({"fraction": frac, "families": r["family_years"] / args.scaling_years,
                        "run_s": round(r["run_s"], 3),
                        "family_years_per_s": round(r["family_years"] / r["run_s"])})
    schelling = schelling_rate()

    print(json.dumps({
        "preset": args.preset, "years": args.years, "mesa_public": args.mesa_public,
        "family_years_per_s": round(fyps), "run_s": round(main_run["run_s"], 2),
        "init_s": round(main_run["init_s"], 2), "phases_s_per_year": per_year,
        "mesa_bookkeeping_share": round(clocked["phases"]["mesa"] / clocked["years"] / year_s,
                                        4),
        "threads": threads, "jit_compile_s": round(jit_s, 2), "peak_rss_mb": round(peak_mb),
        "scaling": scaling, "mesa_schelling_agent_steps_per_s": round(schelling),
        "ratio_to_schelling": round(fyps / schelling, 2),
    }))


if __name__ == "__main__":
    main()
