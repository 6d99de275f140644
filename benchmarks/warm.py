"""Warm against cold settling: ``python benchmarks/warm.py --preset helsinki --seeds 3``.

For each candidate behaviour (a small step from the shipped fit, as a posterior draw or a
late optimiser trial; and a far one, at the edges of the calibration box) and each seed:

* the anchor: the shipped fit's settled city (cold, ``burn_in_years``; cached);
* ``cold``: the candidate settled from the generated city, then ``--years`` years;
* ``warm``: the candidate re-settled from the anchor (``sim.settle``), then ``--years``;
* ``trajectory``: the warm re-settling run for the whole burn-in, its key indices each year
  (the floor's evidence: the first year from which the warm runs' mean stays within the
  burn-in rule's band around the cold settled state).

Prints one JSON line: CPU seconds (``time.process_time``) of cold and warm per seed, the
re-settling years the rule chose, and per output (the calibration moments of the preset and
the sensitivity outputs' metrics over years 1 to ``--years``) the warm and cold means over
the seeds and ``z`` = (warm - cold) / the combined standard error.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time

import numpy as np
import pandas as pd

from calibration.moments import Outputs, load_targets
from sim import settle
from sim.config import load_config
from sim.model import SegregationModel

CANDIDATES = {
    "near": ["behaviour.mobility.base_logit=-2.9", "behaviour.school.local_bonus=0.65",
             "behaviour.demography.arrival_foreign_share=0.10"],
    "far": ["behaviour.mobility.base_logit=-2.0", "behaviour.school.local_bonus=1.3",
            "behaviour.demography.arrival_foreign_share=0.2",
            "behaviour.preferences.w_comp_lang.0=2.5"],
}
METRICS = ("seg_res_ses_H", "seg_school_ses_H", "seg_res_lang_H", "seg_school_lang_H",
           "seg_daycare_ses_H", "local_school_share_g1", "move_rate", "outmigration_rate")


def outputs(model: SegregationModel, preset: str) -> dict[str, float]:
    """Calibration moments and the mean of the sensitivity metrics over the run's years."""
    out = Outputs.from_model(model)
    row = {f"moment:{m.name}": m.simulate(out) for m in load_targets(preset=preset)}
    df = out.metrics[out.metrics["year"] >= 1]
    row.update({f"metric:{k}": float(df[k].mean()) for k in METRICS})
    return row


def trajectory(cand, anchor, ck: str) -> np.ndarray:
    """Key indices of every warm re-settling year when the rule is not allowed to stop."""
    floor = settle.FLOOR_YEARS
    history: list[np.ndarray] = []
    real = settle.key_indices

    def keep(model):
        history.append(real(model))
        return history[-1]

    settle.FLOOR_YEARS, settle.key_indices = 10**6, keep
    try:
        SegregationModel(cand, checkpoints=ck, anchor=anchor, keep_warm=False)
    finally:
        settle.FLOOR_YEARS, settle.key_indices = floor, real
    return np.array(history)


def main() -> None:
    """Run the comparison and print the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="helsinki")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--years", type=int, default=10)
    ap.add_argument("--trajectory", action="store_true", help="also the floor's evidence")
    args = ap.parse_args()
    logging.getLogger("MESA").setLevel(logging.WARNING)
    ck = tempfile.mkdtemp(prefix="warm-bench-")
    base = [f"city={args.preset}", f"years={args.years}", "output.progress=false"]
    SegregationModel(load_config([*base, "seed=99", "start=fresh", "years=1"])).run()  # JIT
    result: dict = {"preset": args.preset, "seeds": args.seeds, "years": args.years}
    anchor_cpu = []
    for seed in range(1, args.seeds + 1):  # the anchors: settled once, cached
        t = time.process_time()
        SegregationModel(load_config([*base, f"seed={seed}"]), checkpoints=ck)
        anchor_cpu.append(time.process_time() - t)
    result["anchor_cpu_s"] = anchor_cpu
    for name, overrides in CANDIDATES.items():
        rows, cpu, years, traj, cold_key = [], {"cold": [], "warm": []}, [], [], []
        for seed in range(1, args.seeds + 1):
            anchor = load_config([*base, f"seed={seed}"])
            cand = load_config([*base, f"seed={seed}", *overrides])
            for how in ("cold", "warm"):
                t = time.process_time()
                model = (SegregationModel(cand, checkpoints=ck, anchor=anchor,
                                          keep_warm=False) if how == "warm"
                         else SegregationModel(cand))
                model.run()
                cpu[how].append(time.process_time() - t)
                if how == "warm":
                    years.append(model.resettled_years)
                else:
                    cold_key.append(settle.key_indices(model))  # year 10 of the cold run
                rows.append({"how": how, "seed": seed, **outputs(model, args.preset)})
            if args.trajectory:
                traj.append(trajectory(cand, anchor, ck))
        df = pd.DataFrame(rows)
        g = df.drop(columns="seed").groupby("how")
        mean, se = g.mean(), g.std(ddof=1) / np.sqrt(args.seeds)
        z = (mean.loc["warm"] - mean.loc["cold"]) / np.sqrt(se.loc["warm"] ** 2
                                                             + se.loc["cold"] ** 2)
        entry = {"cpu_s": cpu, "resettled_years": years,
                 "outputs": {k: {"cold": mean.loc["cold", k], "warm": mean.loc["warm", k],
                                 "z": z[k]} for k in mean.columns}}
        if traj:
            t_mean = np.mean(traj, axis=0)  # years x indices
            target = np.mean(cold_key, axis=0)
            tol = np.maximum(settle.TOLERANCE * np.abs(target), settle.ABS_FLOOR)
            ma = pd.DataFrame(t_mean).rolling(settle.WINDOW, center=True,
                                              min_periods=1).mean().to_numpy()
            outside = np.abs(ma - target) > tol
            last = [int(np.flatnonzero(outside[:, j])[-1]) + 1 if outside[:, j].any() else 0
                    for j in range(outside.shape[1])]
            entry["trajectory_settles_after"] = dict(zip(settle.KEY_INDICES, last,
                                                         strict=True))
        result[name] = entry
    print(json.dumps(result, default=float))


if __name__ == "__main__":
    main()
