"""Core-model benchmark: ``python benchmarks/core.py --preset helsinki --years 30``.

Prints one JSON line:

* ``family_years_per_s``: simulated family-years per second of the full model (numba
  kernels), after JIT, for the main run; ``run_s`` and ``init_s`` are its wall times;
* ``reference_family_years_per_s``: the same model with the plain-Python per-agent reference
  choice rules of ``tests/reference.py`` on a subsample city (``--ref-fraction`` of the
  families), in the same process; ``speedup`` is the ratio of the two;
* ``kernel_speedup``: the same ratio for the choice steps alone (the time spent inside the
  relocation, daycare and school kernels versus their references, per family-year);
* ``jit_compile_s``: compile time of all kernels, measured with an empty numba cache;
* ``peak_rss_mb``: peak resident memory of the main run;
* ``scaling``: family-years per second at several city sizes (cost linear in families means
  a flat rate).

Run on one core of a quiet machine. Numbers for this repository are in
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

# An empty cache so that jit_compile_s measures a real compile (set before numba loads).
os.environ.setdefault("NUMBA_CACHE_DIR", tempfile.mkdtemp(prefix="numba-bench-"))
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import reference  # noqa: E402
from sim import kernels  # noqa: E402
from sim.config import load_config  # noqa: E402
from sim.model import SegregationModel  # noqa: E402

KERNELS = ("relocate", "daycare_choice", "rank_programmes", "deferred_acceptance")


class TimedKernels:
    """Wraps a kernel module and accumulates the time spent in each choice rule."""

    def __init__(self, module: object) -> None:
        self.module = module
        self.seconds = 0.0
        for name in KERNELS:
            setattr(self, name, self._timed(getattr(module, name)))

    def _timed(self, fn):  # noqa: ANN001, ANN202
        def call(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            self.seconds += time.perf_counter() - t0
            return out

        return call


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


def timed_run(overrides: list[str], kernel_module: object | None = None) -> dict:
    """Build and run a model; returns wall times, family-years and kernel seconds."""
    timed = TimedKernels(kernel_module or kernels)
    t0 = time.perf_counter()
    model = SegregationModel(load_config(overrides), kernels=timed)
    t1 = time.perf_counter()
    model.run()
    t2 = time.perf_counter()
    fy = float(model.recorder.metrics_frame()["n_families"].iloc[1:].sum())
    return {"init_s": t1 - t0, "run_s": t2 - t1, "family_years": fy,
            "kernel_s": timed.seconds}


def main() -> None:
    """Run the benchmark and print one JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="helsinki")
    ap.add_argument("--years", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ref-fraction", type=float, default=0.05)
    ap.add_argument("--ref-years", type=int, default=3)
    ap.add_argument("--sizes", default="0.25,0.5,1.0", help="fractions for the scaling runs")
    ap.add_argument("--scaling-years", type=int, default=10)
    args = ap.parse_args()

    tiny = scaled(args.preset, 0.02, 1, args.seed)
    t0 = time.perf_counter()
    timed_run(tiny)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    timed_run(tiny)
    jit_s = first - (time.perf_counter() - t0)

    main_run = timed_run([f"city={args.preset}", f"years={args.years}", f"seed={args.seed}",
                          "output.progress=false"])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fyps = main_run["family_years"] / main_run["run_s"]

    sub = scaled(args.preset, args.ref_fraction, args.ref_years, args.seed)
    ref = timed_run(sub, reference)
    fast = timed_run(sub)
    ref_fyps = ref["family_years"] / ref["run_s"]
    kernel_speedup = (ref["kernel_s"] / ref["family_years"]) / (
        fast["kernel_s"] / fast["family_years"])

    scaling = []
    for frac in (float(x) for x in args.sizes.split(",")):
        r = timed_run(scaled(args.preset, frac, args.scaling_years, args.seed))
        scaling.append({"fraction": frac, "families": r["family_years"] / args.scaling_years,
                        "run_s": round(r["run_s"], 3),
                        "family_years_per_s": round(r["family_years"] / r["run_s"])})

    print(json.dumps({
        "preset": args.preset, "years": args.years,
        "family_years_per_s": round(fyps), "run_s": round(main_run["run_s"], 2),
        "init_s": round(main_run["init_s"], 2),
        "reference_family_years_per_s": round(ref_fyps), "speedup": round(fyps / ref_fyps, 1),
        "kernel_speedup": round(kernel_speedup, 1),
        "reference_subsample_families": round(ref["family_years"] / args.ref_years),
        "jit_compile_s": round(jit_s, 2), "peak_rss_mb": round(peak_mb),
        "scaling": scaling,
    }))


if __name__ == "__main__":
    main()
