"""Global sensitivity analysis with SALib: which uncertain assumptions drive the conclusions.

``python -m experiments.sensitivity space=default method=morris n=10 replicates=2``

1. reads the parameter space ``conf/sensitivity/<space>.yaml`` (or a ``.yaml`` path): factors
   (dotted config paths with bounds or a SALib distribution, optional groups, optional
   ``scenario`` for lever arguments) and outputs (a ``metrics.parquet`` column at a year or
   the mean over a year window, or a scenario's paired effect against the baseline);
2. builds a SALib ``ProblemSpec`` and samples it (``method=morris``: ``n`` trajectories;
   ``method=sobol``: ``sample_sobol`` with a base sample ``n``, a power of two);
3. runs every point in every scenario the outputs need with ``replicates`` seeds (replicate
   r uses ``seed + r`` at every point and in every scenario: common random numbers), through
   the evaluation layer (``sim.evaluation``; finished chunks are skipped on a re-run);
4. analyses the replicate means with SALib's analyzers and writes, to its run directory:

* ``samples.parquet``: one row per point and replicate: ``point, replicate, seed``, the
  factor values and the outputs;
* ``indices.csv``: ``factor, output, index, value, ci_low, ci_high, noise_level,
  above_noise``; ``noise_level`` is what a factor without effect would show given the
  replicate noise (Morris: the expected mu* of pure noise; Sobol: the noise's share of the
  variance of replicate means), and ``above_noise`` says whether the lower end of the
  interval of mu* or ST exceeds it;
* ``robustness.csv`` (when there are scenario-effect outputs): per scenario and output, the
  share of the sampled points where the scenario beats the baseline and where it ranks
  first among the scenarios;
* ``figures/``: Morris mu* and sigma, one panel per output
  (``experiments.sensitivity_figures``), or Sobol S1/ST bars, and the robustness shares;
* ``config.yaml``, ``provenance.json``, ``space.yaml`` (the space as run), ``design.parquet``
  (the sampled points) and ``chunks/`` (``python -m experiments.collect <dir>`` rebuilds
  everything above from them).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import hydra
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from hydra.core.config_store import ConfigStore  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402
from SALib import ProblemSpec  # noqa: E402

from experiments.cli import entry, read_space, user_errors  # noqa: E402
from experiments.compare import check_levers, scenario_config, settle_replicates  # noqa: E402
from experiments.sensitivity_figures import plot_morris, short  # noqa: E402
from experiments.tasks import run_scenario_task  # noqa: E402
from sim.config import Config, as_dict, get_path, set_path, validate  # noqa: E402
from sim.evaluation import EvaluationConfig, Study, evaluate  # noqa: E402
from sim.evaluation import check as check_evaluation  # noqa: E402
from sim.io import atomic_write, write_parquet, write_text  # noqa: E402
from sim.model import SegregationModel  # noqa: E402
from sim.outputs import write_provenance  # noqa: E402

log = logging.getLogger(__name__)
USAGE = """\
usage: python -m experiments.sensitivity [key=value ...]

Global sensitivity analysis with SALib: samples a parameter space, runs every point with
replicate seeds and writes samples.parquet, indices.csv, robustness.csv and figures.

main options:
  space=default|levers|path.yaml   the parameter space (conf/sensitivity/)
  method=morris|sobol  n=10        Morris trajectories, or Sobol's base sample (power of 2)
  replicates=2                     seeds per point (common random numbers)
  evaluation.backend=joblib|serial|hydra  evaluation.launcher=submitit_slurm  (cluster)
  hydra.run.dir=out/sens           fixed folder: a re-run computes what is missing
"""
log = logging.getLogger(__name__)
METHODS = ("morris", "sobol")
# SALib's distributions and their parameters (SALib.util: scale_samples).
DISTS = {"unif": ("low", "high"), "logunif": ("low", "high"),
         "triang": ("low", "high", "peak as a fraction of the range"),
         "norm": ("mean", "sd"), "truncnorm": ("low", "high", "mean", "sd"),
         "lognorm": ("mean of log", "sd of log")}
BASELINE = "baseline"


@dataclass
class SensitivityConfig(Config):
    """A model config plus the sensitivity study to run on it."""

    space: str = "default"  # conf/sensitivity/<space>.yaml or the path of a .yaml file
    method: str = "morris"  # morris | sobol
    # Morris: trajectories (Campolongo et al. 2007 use 10-20); Sobol: base sample N, a power
    # of two (runs = N (k + 2) x scenarios x replicates). Assumption: 10, a screening budget.
    n: int = 10
    # Seeds per point; their spread is the noise the indices are judged against. Assumption:
    # 2 is the least that measures it; raise it when indices sit near the noise level.
    replicates: int = 2
    num_levels: int = 4  # Morris grid levels; Saltelli et al. 2008 (Global SA: the Primer)
    conf_level: float = 0.95  # bootstrap confidence level of the indices; assumption
    num_resamples: int = 1000  # bootstrap resamples: SALib's Morris default (Sobol's is 100)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)


ConfigStore.instance().store(name="sensitivity_base", node=SensitivityConfig)


@dataclass(frozen=True)
class Factor:
    """One uncertain input."""

    path: str  # dotted config path (list items by index)
    bounds: tuple[float, ...]  # SALib distribution parameters (low, high for unif)
    dist: str = "unif"
    scale: bool = False  # True: the sampled value multiplies the default (number or list)
    group: str | None = None
    scenario: str | None = None  # a lever argument of this scenario (path from its config)
    reason: str = ""

    @property
    def name(self) -> str:
        """Column name: the path, prefixed by the scenario for lever arguments."""
        return f"{self.scenario}:{self.path}" if self.scenario else self.path

    def extremes(self) -> tuple[float, float]:
        """The range checked before any run (3 standard deviations for unbounded ones)."""
        b = self.bounds
        if self.dist == "norm":
            return b[0] - 3 * b[1], b[0] + 3 * b[1]
        if self.dist == "lognorm":
            return math.exp(b[0] - 3 * b[1]), math.exp(b[0] + 3 * b[1])
        return b[0], b[1]


@dataclass(frozen=True)
class Output:
    """One analysed output: a metric at a year (or a window mean), or a scenario's effect."""

    metric: str
    years: tuple[int, int]
    effect: str | None = None  # scenario whose paired difference against baseline is analysed
    better: str = "lower"  # for effects: which direction is the city's goal

    @property
    def name(self) -> str:
        """Column name, e.g. ``seg_school_ses_H@20`` or ``x-baseline:seg_school_ses_H@15-20``."""
        a, b = self.years
        at = f"{self.metric}@{a}" if a == b else f"{self.metric}@{a}-{b}"
        return f"{self.effect}-{BASELINE}:{at}" if self.effect else at


@dataclass
class Space:
    """A declared parameter space and its outputs."""

    name: str
    description: str
    factors: list[Factor]
    outputs: list[Output]

    @property
    def scenarios(self) -> list[str]:
        """Baseline first, then the scenarios of effect outputs and lever factors."""
        out = [BASELINE]
        for s in [o.effect for o in self.outputs] + [f.scenario for f in self.factors]:
            if s and s not in out:
                out.append(s)
        return out

    @property
    def grouped(self) -> bool:
        """True if factors are analysed in groups."""
        return any(f.group for f in self.factors)

    def problem(self) -> ProblemSpec:
        """The SALib problem."""
        spec: dict[str, Any] = {
            "names": [f.name for f in self.factors],
            "bounds": [list(f.bounds) for f in self.factors],
            "dists": [f.dist for f in self.factors],
            "outputs": [o.name for o in self.outputs],
        }
        if self.grouped:
            spec["groups"] = [f.group or f.name for f in self.factors]
        return ProblemSpec(spec)


def parse_space(raw: dict, where: str) -> Space:
    """Parse a space file's content; raises ``ValueError`` naming key, value and what is allowed."""

    def fail(key: str, value: Any, allowed: str) -> None:
        raise ValueError(f"{where}: {key}={value!r} is not allowed; expected {allowed}")

    factors = []
    for i, f in enumerate(raw.get("factors") or []):
        key = f"factors[{i}]"
        unknown = set(f) - {"path", "bounds", "dist", "scale", "group", "scenario", "reason"}
        if unknown or "path" not in f or "bounds" not in f:
            fail(key, f, "a mapping with path and bounds (optional: dist, scale, group, "
                 "scenario, reason)")
        dist = f.get("dist", "unif")
        if dist not in DISTS:
            fail(f"{key}.dist", dist, f"one of {list(DISTS)}")
        b = f["bounds"]
        if (not isinstance(b, list) or len(b) != len(DISTS[dist])
                or not all(isinstance(v, int | float) for v in b)):
            fail(f"{key}.bounds", b, f"[{', '.join(DISTS[dist])}] for dist {dist}")
        if "low" in DISTS[dist] and not b[0] < b[1]:
            fail(f"{key}.bounds", b, f"low < high for {f['path']}")
        if dist == "triang" and not 0 <= b[2] <= 1:
            fail(f"{key}.bounds", b, "a peak fraction in [0, 1]")
        if dist in ("norm", "truncnorm", "lognorm") and not b[-1] > 0:
            fail(f"{key}.bounds", b, "a positive sd")
        factors.append(Factor(str(f["path"]), tuple(float(v) for v in b), dist,
                              bool(f.get("scale", False)), f.get("group"), f.get("scenario"),
                              str(f.get("reason", ""))))
    if not factors:
        fail("factors", raw.get("factors"), "a non-empty list")
    names = [f.name for f in factors]
    if len(set(names)) != len(names):
        fail("factors", names, "each path at most once per scenario")
    outputs = []
    for i, o in enumerate(raw.get("outputs") or []):
        key = f"outputs[{i}]"
        if set(o) - {"metric", "year", "years", "effect", "better"} or "metric" not in o or (
                ("year" in o) == ("years" in o)):
            fail(key, o, "a mapping with metric and year (or years: [from, to]); optional "
                 "effect and better")
        years = (o["year"], o["year"]) if "year" in o else tuple(o["years"])
        if len(years) != 2 or not all(isinstance(y, int) for y in years) or years[0] > years[1]:
            fail(f"{key}.years", list(years), "two integer years [from, to] with from <= to")
        if o.get("better", "lower") not in ("lower", "higher"):
            fail(f"{key}.better", o["better"], "lower or higher")
        if o.get("effect") == BASELINE:
            fail(f"{key}.effect", BASELINE, "a scenario other than the baseline")
        outputs.append(Output(o["metric"], years, o.get("effect"), o.get("better", "lower")))
    if not outputs:
        fail("outputs", raw.get("outputs"), "a non-empty list")
    return Space(str(raw.get("name", where)), str(raw.get("description", "")), factors,
                 outputs)


def load_space(name: str) -> tuple[Space, dict]:
    """Read and parse a space file; returns the space and the file's content."""
    path, raw = read_space(name, "sensitivity")
    return parse_space(raw, f"space {path}"), raw


def factor_value(f: Factor, default: Any, x: float) -> Any:
    """The config value of factor ``f`` at sampled value ``x``."""
    if not f.scale:
        return float(x)
    if isinstance(default, list):
        return [factor_value(f, d, x) for d in default]
    return float(default) * float(x)


def values_for(space: Space, dicts: dict[str, dict], scenario: str, x: np.ndarray) -> dict:
    """Config values of one sampled point, for one scenario (its lever factors only)."""
    return {f.path: factor_value(f, get_path(dicts[scenario], f.path), xi)
            for f, xi in zip(space.factors, x, strict=True)
            if f.scenario in (None, scenario)}


def check_space(space: Space, dicts: dict[str, dict], columns: list[str], years: int) -> None:
    """Check paths, types and both ends of every range against the config, before any run.

    Raises:
        ValueError: Naming the factor or output, the value and what is allowed.
    """
    for f in space.factors:
        where = f"space {space.name}: factor {f.name}"
        # Behaviour paths validate alike in every scenario: the baseline is enough.
        scenario = dicts[f.scenario or BASELINE]
        try:
            default = get_path(scenario, f.path)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc
        if isinstance(default, list) and not f.scale:
            raise ValueError(f"{where}: the config value is a list {default}; give an item "
                             "(path.<index>) or scale: true")
        if isinstance(default, bool | str | dict) or default is None:
            raise ValueError(f"{where}: the config value {default!r} is not a number")
        for x in f.extremes():
            d = copy.deepcopy(scenario)
            set_path(d, f.path, factor_value(f, default, x))
            try:
                validate(d)  # builds the levers too: lever arguments are checked
            except ValueError as exc:
                raise ValueError(f"{where} at {x:g}: {exc}") from exc
    for o in space.outputs:
        if o.metric not in columns:
            raise ValueError(f"space {space.name}: output metric={o.metric!r} is not a "
                             "metrics.parquet column")
        if o.years[1] > years:
            raise ValueError(f"space {space.name}: output {o.name}: year {o.years[1]} is "
                             f"after the last year, years={years}")


def split(cfg: SensitivityConfig) -> tuple[Config, dict[str, Any]]:
    """Separate the model config from the study settings, and check the latter."""
    d = as_dict(cfg)
    opts = {k: d.pop(k) for k in ("space", "method", "n", "replicates", "num_levels",
                                  "conf_level", "num_resamples", "evaluation")}
    if opts["method"] not in METHODS:
        raise ValueError(f"method={opts['method']!r} is not allowed; expected one of "
                         f"{list(METHODS)}")
    n = opts["n"]
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"n={n!r} is not allowed; expected an integer >= 2")
    if opts["method"] == "sobol" and n & (n - 1):
        raise ValueError(f"n={n} is not allowed for method=sobol; expected a power of two "
                         "(Sobol' sequences lose their balance otherwise)")
    if not isinstance(opts["replicates"], int) or opts["replicates"] < 2:
        raise ValueError(f"replicates={opts['replicates']!r} is not allowed; expected an "
                         "integer >= 2 (the replicate noise needs two)")
    if opts["num_levels"] < 2 or opts["num_levels"] % 2:
        raise ValueError(f"num_levels={opts['num_levels']!r} is not allowed; expected an "
                         "even integer >= 2")
    if not 0 < opts["conf_level"] < 1:
        raise ValueError(f"conf_level={opts['conf_level']!r} is not allowed; expected a "
                         "value in (0, 1)")
    check_evaluation(EvaluationConfig(**opts["evaluation"]))
    return validate(d), opts


def sample(space: Space, opts: dict, seed: int) -> np.ndarray:
    """The sampled points (rows) in factor space."""
    sp = space.problem()
    if opts["method"] == "morris":
        sp.sample_morris(opts["n"], num_levels=opts["num_levels"], seed=seed)
    else:
        sp.sample_sobol(opts["n"], calc_second_order=False, seed=seed)
    return sp.samples


def run_sensitivity(cfg: SensitivityConfig, out_dir: Path, progress: bool = True) -> dict:
    """Check, sample, run and analyse; see the module docstring for the outputs.

    Raises:
        ValueError: A config or space error (before any run or output), or chunks that
            failed or did not finish (named by id; re-running the command runs only those).
    """
    base, opts = split(cfg)
    space, raw_space = load_space(opts["space"])
    cfgs = {s: scenario_config(base, s) for s in space.scenarios}
    check_levers(cfgs)
    dicts = {s: as_dict(c) for s, c in cfgs.items()}
    # Metric names, from the year-0 record of the generated city (no burn-in to wait for).
    columns = list(SegregationModel(replace(base, start="fresh"), levers=[])
                   .recorder.metrics_frame().columns)  # the probe model is freed here
    check_space(space, dicts, columns, base.years)
    X = sample(space, opts, base.seed)
    shared = {k: v for k, v in dicts[BASELINE].items() if k != "scenario"}
    years = sorted({y for o in space.outputs for y in range(o.years[0], o.years[1] + 1)})
    # Every point settles warm from the base behaviour's settled city (sim.settle), one
    # anchor per replicate seed, settled before the points run.
    context = {"config": shared, "scenarios": {s: d["scenario"] for s, d in dicts.items()},
               "metrics": sorted({o.metric for o in space.outputs}), "years": years,
               "anchor": shared["behaviour"]}
    tasks = [{"point": i, "scenario": s, "seed": base.seed + r, "replicate": r,
              "values": values_for(space, dicts, s, x)}
             for i, x in enumerate(X) for s in space.scenarios
             for r in range(opts["replicates"])]
    write_provenance(out_dir, as_dict(cfg))
    write_text(OmegaConf.to_yaml(OmegaConf.create(raw_space)), out_dir / "space.yaml")
    design = pd.DataFrame(X, columns=[f.name for f in space.factors])
    design.insert(0, "point", np.arange(len(X)))
    write_parquet(design, out_dir / "design.parquet")
    settle_replicates(base, opts["replicates"], opts["evaluation"]["n_jobs"] or -1, progress)
    study = evaluate(run_scenario_task, context, tasks, out_dir,
                     EvaluationConfig(**opts["evaluation"]), progress)
    return analyse(study)


def output_values(raw: pd.DataFrame, space: Space) -> pd.DataFrame:
    """Per point and replicate, every output (effects as paired differences, same seed)."""
    keys = ["point", "replicate"]
    out = raw[raw["scenario"] == BASELINE][keys + ["seed"]].drop_duplicates().set_index(keys)
    for o in space.outputs:
        window = raw[raw["year"].between(*o.years)]
        per = window.groupby(["scenario", *keys])[o.metric].mean()
        value = per.loc[o.effect] - per.loc[BASELINE] if o.effect else per.loc[BASELINE]
        out[o.name] = value
    return out.sort_index().reset_index()


def noise_levels(samples: pd.DataFrame, space: Space, opts: dict) -> dict[str, float]:
    """What a factor without effect would score, given the spread between replicates.

    Morris: the expected mu* of an elementary effect made of noise only, E|e1 - e2| / delta
    with e ~ N(0, s^2 / R) and delta = levels / (2 (levels - 1)). Sobol: the noise variance
    of a replicate mean as a share of the variance of replicate means (an independent
    "noise factor" adds this much to every total index).
    """
    r = opts["replicates"]
    out = {}
    for o in space.outputs:
        var = samples.groupby("point")[o.name].var(ddof=1).mean()
        if opts["method"] == "morris":
            delta = opts["num_levels"] / (2 * (opts["num_levels"] - 1))
            out[o.name] = float(2 * np.sqrt(var / r) / np.sqrt(np.pi) / delta)
        else:
            total = samples.groupby("point")[o.name].mean().var(ddof=1)
            out[o.name] = float(var / r / total) if total > 0 else float("inf")
    return out


def indices_table(sp: ProblemSpec, space: Space, opts: dict,
                  noise: dict[str, float]) -> pd.DataFrame:
    """SALib's results as rows ``factor, output, index, value, ci_low, ci_high, ...``."""
    rows = []
    for o in space.outputs:
        # SALib keys results by output only when there are several.
        res = sp.analysis[o.name] if len(space.outputs) > 1 else sp.analysis
        frames = res.to_df() if opts["method"] == "sobol" else [res.to_df()]
        for df in frames:
            conf_cols = {c[:-5] for c in df.columns if c.endswith("_conf")}
            for factor, row in df.iterrows():
                for index in [c for c in df.columns if not c.endswith("_conf")]:
                    value = float(row[index])
                    half = float(row[f"{index}_conf"]) if index in conf_cols else math.nan
                    judged = index in ("mu_star", "ST")
                    rows.append({
                        "factor": factor, "output": o.name, "index": index, "value": value,
                        "ci_low": value - half, "ci_high": value + half,
                        "noise_level": noise[o.name] if judged else math.nan,
                        "above_noise": bool(value - half > noise[o.name]) if judged else None,
                    })
    return pd.DataFrame(rows)


def effect_groups(space: Space) -> list[list[Output]]:
    """Effect outputs grouped by what they measure (metric, years, direction)."""
    groups: dict[tuple, list[Output]] = {}
    for o in space.outputs:
        if o.effect:
            groups.setdefault((o.metric, o.years, o.better), []).append(o)
    return list(groups.values())


def robustness(samples: pd.DataFrame, space: Space) -> pd.DataFrame:
    """Share of points where each scenario beats the baseline, and where it ranks first.

    Per effect measure, over the replicate means; the baseline's effect is 0, and ties go to
    the scenario listed first (the baseline first), so a scenario without effect never ranks
    first.
    """
    means = samples.groupby("point").mean(numeric_only=True)
    rows = []
    for outs in effect_groups(space):
        sign = 1.0 if outs[0].better == "lower" else -1.0  # lower score is better
        scores = np.column_stack([np.zeros(len(means))]
                                 + [sign * means[o.name].to_numpy() for o in outs])
        first = np.argmin(scores, axis=1)
        measure = outs[0].name.split(":", 1)[1]
        for j, scen in enumerate([BASELINE] + [o.effect for o in outs]):
            rows.append({"scenario": scen, "output": measure, "better": outs[0].better,
                         "share_beats_baseline": float((scores[:, j] < 0).mean()) if j
                         else math.nan,
                         "share_ranks_first": float((first == j).mean()),
                         "n_points": len(means)})
    return pd.DataFrame(rows)


def plot_sobol(indices: pd.DataFrame, path: Path) -> None:
    """S1 and ST bars with confidence intervals per output, with the noise level of ST."""
    outputs = list(dict.fromkeys(indices["output"]))
    factors = list(dict.fromkeys(indices["factor"]))
    fig, axes = plt.subplots(1, len(outputs), figsize=(5.2 * len(outputs),
                                                       1.0 + 0.35 * len(factors)),
                             squeeze=False, sharey=True)
    y = np.arange(len(factors))
    for ax, out in zip(axes[0], outputs, strict=True):
        for k, (index, label) in enumerate((("S1", "first order S1"), ("ST", "total ST"))):
            d = indices[(indices["output"] == out) & (indices["index"] == index)]
            d = d.set_index("factor").loc[factors]
            err = np.vstack([d["value"] - d["ci_low"], d["ci_high"] - d["value"]])
            ax.barh(y + (k - 0.5) * 0.4, d["value"], height=0.4, xerr=err, capsize=2,
                    label=label, color=f"C{k}")
        noise = indices[(indices["output"] == out) & (indices["index"] == "ST")]
        ax.axvline(noise["noise_level"].iloc[0], color="grey", ls="--",
                   label="replicate noise share")
        ax.set_yticks(y, [short(f) for f in factors], fontsize=7)
        ax.set_xlabel("share of output variance (with 95% interval)")
        ax.set_title(out, fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("Sobol indices")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_robustness(table: pd.DataFrame, path: Path) -> None:
    """Share of the parameter space where each scenario beats the baseline / ranks first."""
    measures = list(dict.fromkeys(table["output"]))
    fig, axes = plt.subplots(1, len(measures), figsize=(5.5 * len(measures), 3.8),
                             squeeze=False)
    for ax, measure in zip(axes[0], measures, strict=True):
        d = table[table["output"] == measure]
        x = np.arange(len(d))
        ax.bar(x - 0.2, d["share_beats_baseline"].fillna(0), width=0.4,
               label="beats the baseline")
        ax.bar(x + 0.2, d["share_ranks_first"], width=0.4, label="ranks first")
        ax.set_xticks(x, d["scenario"], rotation=20, fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("share of sampled parameter points")
        ax.set_title(f"{measure} ({d['better'].iloc[0]} is better)", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("Does the scenario ranking hold across the parameter space?")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def analyse(study: Study) -> dict[str, Any]:
    """Build samples, indices, robustness and figures from a study folder's chunks.

    Raises:
        ValueError: If chunks failed or are missing (named by id).
    """
    root = study.root
    if not study.complete:
        raise ValueError(f"{root}: {study.summary()}; run the same command again to "
                         "compute what is missing")
    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(SensitivityConfig),
                                              OmegaConf.load(root / "config.yaml")))
    _, opts = split(cfg)
    space = parse_space(OmegaConf.to_container(OmegaConf.load(root / "space.yaml")),
                        f"space {root / 'space.yaml'}")
    design = pd.read_parquet(root / "design.parquet")
    values = output_values(study.table(), space)
    samples = design.merge(values, on="point")
    lead = ["point", "replicate", "seed"]
    samples = samples[lead + [c for c in samples.columns if c not in lead]]
    names = [o.name for o in space.outputs]
    bad = [n for n in names if samples[n].isna().any()]
    if bad:
        raise ValueError(f"outputs {bad} are empty in some runs (rates have no value in "
                         "year 0); choose other years")
    means = samples.groupby("point")[names].mean()
    sp = space.problem()
    sp.set_samples(design[[f.name for f in space.factors]].to_numpy())
    y = means.to_numpy()
    sp.set_results(y if len(names) > 1 else y[:, 0])
    seed = cfg.seed
    if opts["method"] == "morris":
        sp.analyze_morris(num_levels=opts["num_levels"], conf_level=opts["conf_level"],
                          num_resamples=opts["num_resamples"], seed=seed)
    else:
        sp.analyze_sobol(calc_second_order=False, conf_level=opts["conf_level"],
                         num_resamples=opts["num_resamples"], seed=seed)
    noise = noise_levels(samples, space, opts)
    indices = indices_table(sp, space, opts, noise)
    write_parquet(samples, root / "samples.parquet")
    atomic_write(root / "indices.csv", lambda p: indices.to_csv(p, index=False))
    figures = root / "figures"
    figures.mkdir(exist_ok=True)
    (plot_morris if opts["method"] == "morris" else plot_sobol)(
        indices, figures / f"{opts['method']}.png")
    robust = robustness(samples, space)
    if not robust.empty:
        atomic_write(root / "robustness.csv", lambda p: robust.to_csv(p, index=False))
        plot_robustness(robust, figures / "robustness.png")
    return {"samples": samples, "indices": indices, "robustness": robust, "space": space,
            "method": opts["method"]}


def ranking(result: dict[str, Any]) -> str:
    """Plain-text ranking per output: factors by mu* or ST, marking those above the noise."""
    key = "mu_star" if result["method"] == "morris" else "ST"
    lines = []
    for out, d in result["indices"][result["indices"]["index"] == key].groupby(
            "output", sort=False):
        d = d.sort_values("value", ascending=False)
        ranked = ", ".join(f"{r.factor} {r.value:.3g}{'' if r.above_noise else ' (noise)'}"
                           for r in d.itertuples())
        lines.append(f"{out} by {key}: {ranked}")
    for r in result["robustness"].itertuples():
        beats = ("" if r.scenario == BASELINE
                 else f"beats baseline in {r.share_beats_baseline:.0%}, ")
        lines.append(f"{r.output}: {r.scenario} {beats}ranks first in {r.share_ranks_first:.0%}"
                     " of the sampled points")
    return "\n".join(lines)


@hydra.main(config_path="../conf", config_name="sensitivity", version_base="1.3")
def main(dcfg: DictConfig) -> None:
    """Validate, run the study and print the ranking and where the outputs went."""
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    t0 = time.perf_counter()
    with user_errors(out_dir):  # config and space errors come before any output
        cfg = OmegaConf.to_object(dcfg)
        result = run_sensitivity(cfg, out_dir, progress=cfg.output.progress)
    log.info("%s", ranking(result))
    log.info("%s on space %s: %d point-replicates in %.0f s", cfg.method, cfg.space,
             len(result["samples"]), time.perf_counter() - t0)
    log.info("outputs written to %s", out_dir.resolve())


if __name__ == "__main__":
    entry(main, USAGE)
