"""Interactive dashboard: ``python -m experiments.app [--host 127.0.0.1] [--port 8765]``.

A Mesa ``SolaraViz`` page for strategy staff. Choose a policy (a shipped scenario, or
``custom`` with the lever controls), a city, a seed and a number of years; press *Reset* to
build it, then *Step* (one year) or the play button (runs to the last year). Every year the
page shows the city map (status, language, catchments or school intake, renewal areas
outlined, schools coloured by composition, outcome or reputation; hover a school for its
details, click it to compare it with its baseline twin), the key indices over time and this
year's numbers, each next to the *baseline twin*: the same city and seed without levers,
stepped in lock-step (``experiments.twin.TwinModel``), so the lever's effect is visible and
not only the level.

The server has no login: it listens on 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
import base64
import html
import importlib
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from experiments.cli import refuse

try:
    import solara
    from mesa.visualization import SolaraViz, solara_viz
except ModuleNotFoundError as missing:  # the optional extra: one line, not a traceback
    refuse(f"the dashboard needs the optional extra app ({missing.name} is not installed): "
           "pip install -e '.[app]'")

from experiments.compare import available_scenarios
from experiments.twin import CATCHMENT_CHOICES, CUSTOM, TwinModel
from experiments.views import (
    LAYERS,
    SCHOOL_COLOURS,
    SchoolSpot,
    city_map,
    index_charts,
    key_numbers,
    school_table,
)
from scenarios.tp_funding import ALLOCATIONS
from sim.config import PRESETS

logger = logging.getLogger(__name__)

APP_MODULE = "experiments.app"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
# Controls (Mesa's model_params). Ranges are assumptions chosen to span the shipped scenarios:
# tp_funding.yaml's 9.7 MEUR, engagement.yaml's 79% coverage (engagement_pilot_units,
# calibration/targets.csv), urban_renewal.yaml's 300 dwellings a year.
MODEL_PARAMS: dict[str, dict[str, Any]] = {
    "policy": {"type": "Select", "value": CUSTOM, "values": [CUSTOM, *available_scenarios()],
               "label": "Policy (custom: the levers below)"},
    "tp_budget_meur": {"type": "SliderFloat", "value": 0.0, "min": 0.0, "max": 30.0,
                       "step": 0.5, "label": "TP funding of schools, MEUR a year"},
    "tp_allocation": {"type": "Select", "value": "proportional", "values": list(ALLOCATIONS),
                      "label": "TP allocation rule"},
    # The pilot's coverage as the starting point, so the first run shows an effect.
    "engagement_coverage": {"type": "SliderFloat", "value": 0.79, "min": 0.0, "max": 1.0,
                            "step": 0.01, "label": "Engagement: share of renewal-area units"},
    "catchments": {"type": "Select", "value": "unchanged", "values": list(CATCHMENT_CHOICES),
                   "label": "Catchments"},
    "renewal_dwellings": {"type": "SliderInt", "value": 0, "min": 0, "max": 1000, "step": 50,
                          "label": "Urban renewal: new dwellings a year"},
    "city": {"type": "Select", "value": "small", "values": list(PRESETS), "label": "City"},
    "seed": {"type": "SliderInt", "value": 0, "min": 0, "max": 99, "step": 1,
             "label": "Seed"},
    # Ten years: the horizon in the user story ("run ten years"); assumption.
    "years": {"type": "SliderInt", "value": 10, "min": 1, "max": 30, "step": 1,
              "label": "Years"},
}

CARD_STYLE = {"height": "100%", "overflow": "auto"}  # a view fills its grid cell, scrolls
layer = solara.reactive(LAYERS[0])
colour_by = solara.reactive(next(iter(SCHOOL_COLOURS)))
selected_school = solara.reactive("S000")


def timed(model: TwinModel, name: str, draw: Callable[[], Any]) -> Any:
    """Run ``draw`` and keep its wall time in ``model.redraw_seconds[name]``."""
    t0 = time.perf_counter()
    out = draw()
    model.redraw_seconds[name] = time.perf_counter() - t0
    return out


def png_uri(png: bytes) -> str:
    """A PNG as a data URI for an ``<img>``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def describe(row: dict[str, Any]) -> str:
    """One school's details as plain text (the map's hover tooltip)."""
    return (f"{row['unit_id']} (grades {row['grades']}"
            f"{', renewal area' if row['renewal_area'] else ''}): {row['pupils']} pupils of "
            f"{row['capacity']} places, low status {row['low_status_share']:.0%}, "
            f"foreign language {row['foreign_language_share']:.0%}, mean outcome "
            f"{row['mean_outcome']:+.2f} school years, reputation {row['reputation']:+.2f}")


@solara.component
def SchoolArea(spot: SchoolSpot, title: str) -> solara.Element:
    """A school's clickable, hoverable spot on the map image."""
    area = solara.v.Html(tag="area", attributes={
        "shape": "circle", "coords": f"{spot.x:.0f},{spot.y:.0f},{spot.radius:.0f}",
        "title": title, "alt": spot.unit_id, "href": "#", "data-school": spot.unit_id})
    solara.v.use_event(area, "click.prevent", lambda *_: selected_school.set(spot.unit_id))
    return area


def progress(model: TwinModel) -> solara.Element:
    """Year, progress bar and timings."""
    redraw = sum(model.redraw_seconds.values())
    cfg = model.policy.cfg
    with solara.Card("Progress", style=CARD_STYLE) as card:
        solara.HTML(tag="div", classes=["kk-year"],
                    unsafe_innerHTML=f"Year {model.year} of {model.years}")
        solara.ProgressLinear(value=100.0 * model.year / model.years)
        solara.HTML(tag="div", classes=["kk-timing"], unsafe_innerHTML=(
            f"last year: model {model.step_seconds:.2f} s (both runs), redraw {redraw:.2f} s"))
        levers = ", ".join(lv.lever_name for lv in model.policy.levers) or "none"
        solara.HTML(tag="p", classes=["kk-policy"], unsafe_innerHTML=(
            f"{cfg.city.preset} city, seed {cfg.seed}. <b>{html.escape(cfg.scenario.name)}</b>"
            f" (levers: {levers}; {html.escape(model.settings)}): "
            f"{html.escape(cfg.scenario.description)}"))
    return card


def city(model: TwinModel) -> solara.Element:
    """The policy run's city map, with a layer and a school-colour choice."""
    with solara.Card("City (policy run)", style=CARD_STYLE) as card:
        with solara.Row():
            solara.Select("Layer", values=list(LAYERS), value=layer)
            solara.Select("Schools coloured by", values=list(SCHOOL_COLOURS), value=colour_by)
        drawn = timed(model, "map", lambda: city_map(
            model.policy, layer.value, colour_by.value, selected_school.value))
        rows = {r["unit_id"]: r for r in school_table(model.policy).to_dict("records")}
        solara.v.Html(tag="img", attributes={
            "src": png_uri(drawn.png), "usemap": "#kk-schools", "alt": "city map",
            "width": drawn.width, "height": drawn.height, "data-year": str(model.year),
            "class": "kk-map"})
        solara.v.Html(tag="map", attributes={"name": "kk-schools"}, children=[
            SchoolArea(spot, describe(rows[spot.unit_id])) for spot in drawn.spots])
        with solara.Row():
            for legend in (drawn.layer, drawn.schools):
                solara.HTML(tag="div", style="font-size: 0.8em; flex: 1", unsafe_innerHTML=(
                    f'<div style="height: 10px; background: {legend.css_gradient}"></div>'
                    f'<span>{legend.lo:.3g}</span><span style="float: right">'
                    f"{legend.hi:.3g}</span><div>{html.escape(legend.label)}</div>"))
        solara.HTML(tag="div", style="font-size: 0.85em", unsafe_innerHTML=(
            "Magenta: urban-renewal areas; thin lines: grades 1-6 catchments; circles: "
            "grades 1-6 schools, squares: grades 7-9. Hover a school for its details, "
            "click it to compare it with the baseline twin."))
    return card


def school_details(model: TwinModel) -> solara.Element:
    """One school, in the policy run and in the baseline twin."""
    pol = school_table(model.policy).set_index("unit_id")
    base = school_table(model.baseline).set_index("unit_id")
    with solara.Card("School", style=CARD_STYLE) as card:
        solara.Select("School (or click one on the map)", values=list(pol.index),
                      value=selected_school)
        uid = selected_school.value if selected_school.value in pol.index else pol.index[0]
        cols = [c for c in pol.columns if c not in ("x", "y", "grades", "renewal_area", "open")]
        body = "".join(
            f"<tr><td>{html.escape(c.replace('_', ' '))}</td><td>{base.at[uid, c]:.3g}</td>"
            f"<td>{pol.at[uid, c]:.3g}</td></tr>" for c in cols)
        solara.HTML(tag="table", classes=["kk-school"], unsafe_innerHTML=(
            f"<tr><th>{uid}, grades {pol.at[uid, 'grades']}</th><th>baseline</th>"
            f"<th>policy</th></tr>{body}"))
    return card


def indices(model: TwinModel) -> solara.Element:
    """The key indices over the years, policy and baseline twin."""
    options = timed(model, "charts", lambda: index_charts(model))
    with solara.Card("Key indices: policy (solid) vs baseline twin (dashed)",
                     style=CARD_STYLE) as card:
        with solara.GridFixed(columns=3):
            for metric, option in options.items():
                # The plotted values ride along as attributes: the page test reads them.
                base, pol = (json.dumps([v for _, v in s["data"]]) for s in option["series"])
                solara.v.Html(tag="div", attributes={
                    "class": "kk-chart", "data-metric": metric, "data-baseline": base,
                    "data-policy": pol}, children=[solara.FigureEcharts(
                        option=option, attributes={"style": "height: 230px;"})])
    return card


def numbers(model: TwinModel) -> solara.Element:
    """The key numbers of the current year: policy, baseline and difference."""
    df = key_numbers(model)
    body = "".join(
        f'<tr data-metric="{r.metric}" data-baseline="{r.baseline!r}" '
        f'data-policy="{r.policy!r}"><td>{html.escape(r.label)}</td><td>{r.baseline:.4g}</td>'
        f"<td>{r.policy:.4g}</td><td>{r.difference:+.3g}</td></tr>"
        for r in df.itertuples())
    with solara.Card(f"Year {model.year}: the numbers", style=CARD_STYLE) as card:
        solara.HTML(tag="table", classes=["kk-numbers"], unsafe_innerHTML=(
            "<tr><th>index</th><th>baseline</th><th>policy</th><th>difference</th></tr>"
            + body))
    logger.info("year %d: model %.2f s, redraw %s", model.year, model.step_seconds,
                {k: round(v, 3) for k, v in model.redraw_seconds.items()})
    return card


VIEWS = [progress, numbers, city, school_details, indices]
# Where each view goes on Mesa's 12-column grid (rows of about 30 px), in ``VIEWS`` order:
# Mesa's default is equal tiles; the map needs room and the charts the full width.
LAYOUT = [{"x": 0, "y": 0, "w": 4, "h": 9}, {"x": 4, "y": 0, "w": 8, "h": 9},
          {"x": 0, "y": 9, "w": 8, "h": 20}, {"x": 8, "y": 9, "w": 4, "h": 20},
          {"x": 0, "y": 29, "w": 12, "h": 16}]


def grid_layout(n: int) -> list[dict[str, Any]]:
    """The dashboard's grid layout for ``n`` views (replaces Mesa's equal tiles)."""
    return [{"i": i, "moved": False, **LAYOUT[i]} for i in range(n)]


solara_viz.make_initial_grid_layout = grid_layout  # Mesa reads it when the page is built


DEFAULTS = {name: spec["value"] for name, spec in MODEL_PARAMS.items()}
_prebuilt: list[Future[TwinModel]] = []  # at most one, for the first visitor


def prebuild() -> None:
    """Start building the default model in the background while the server starts.

    The first visitor's page then need not wait for it (the page should load in seconds).
    """
    _prebuilt.append(ThreadPoolExecutor(max_workers=1).submit(TwinModel, **DEFAULTS))


def first_model() -> TwinModel:
    """The prebuilt default model if it is still unclaimed, else a new one."""
    return _prebuilt.pop().result() if _prebuilt else TwinModel(**DEFAULTS)


@solara.component
def Page() -> None:
    """The dashboard page: one ``TwinModel`` per browser session."""
    model = solara.use_memo(first_model, [])
    SolaraViz(model, components=VIEWS, model_params=MODEL_PARAMS, play_interval=1,
              name="Kaikkien koulu: levers against a baseline twin")


def main(argv: list[str] | None = None) -> None:
    """Serve the dashboard (blocks until interrupted)."""
    parser = argparse.ArgumentParser(prog="python -m experiments.app", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("MESA").setLevel(logging.WARNING)  # no per-step log lines
    if args.host not in LOCAL_HOSTS:
        logger.warning("listening on %s: anyone who can reach this address can use the "
                       "dashboard and its CPU (there is no login)", args.host)
    import solara.server.settings as solara_settings
    from solara.__main__ import cli

    solara_settings.telemetry.mixpanel_enable = False  # nothing leaves the machine
    # Solara serves the imported module (not this __main__ copy): prebuild in that one.
    importlib.import_module(APP_MODULE).prebuild()
    cli(["run", f"{APP_MODULE}:Page", "--host", args.host, "--port", str(args.port),
         "--production", "--no-open"])


if __name__ == "__main__":
    main()
