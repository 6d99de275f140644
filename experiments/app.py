"""Interactive dashboard: ``python -m experiments.app [--host 127.0.0.1] [--port 8765]``.

A page for strategy staff, in Finnish, Swedish or English (the switch at the top of the
sidebar; ``--lang``, else the locale, sets the first language). Choose a policy (a shipped
scenario, or ``custom`` with the lever controls, each showing its value), a city, a seed and
a number of years; press *Reset* to build it, then *Step* (one year) or the play button
(runs to the last year, where the controls say the run is finished). Every year the page
shows the city map (status, language, catchments or school intake, renewal areas outlined,
schools coloured by composition, outcome or reputation; hover a school for its details,
click it to compare it with its baseline twin), the key indices over time and this year's
numbers, each next to the *baseline twin*: the same city and seed without levers, stepped in
lock-step (``experiments.twin.TwinModel``), so the lever's effect is visible and not only
the level, and next to the run-to-run band of the baseline over a few other seeds, so the
difference of one run can be set against chance.

The page is built from Mesa's Solara tooling without Mesa's generic ``SolaraViz`` frame
(whose play-interval, render-interval, thread and page controls mean nothing to this
page's users): its own controls step the ``TwinModel``, a Mesa model.

The server has no login: it listens on 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
import base64
import html
import importlib
import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from experiments.cli import refuse

try:
    import solara
    import solara.lab
except ModuleNotFoundError as missing:  # the optional extra: one line, not a traceback
    refuse(f"the dashboard needs the optional extra app ({missing.name} is not installed): "
           "pip install -e '.[app]'")

from experiments.compare import available_scenarios
from experiments.i18n import LANGUAGES, Text, check_language, default_language
from experiments.summary import N_
from experiments.twin import BAND_SEEDS, CATCHMENT_CHOICES, CUSTOM, TwinModel
from experiments.views import (
    LAYERS,
    SCHOOL_COLOURS,
    SCHOOL_FIELDS,
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
# Controls (TwinModel's keyword parameters). Ranges are assumptions chosen to span the shipped
# scenarios:
# tp_funding.yaml's 9.7 MEUR, engagement.yaml's 79% coverage (engagement_pilot_units,
# calibration/targets.csv), urban_renewal.yaml's 300 dwellings a year.
MODEL_PARAMS: dict[str, dict[str, Any]] = {
    "policy": {"type": "Select", "value": CUSTOM, "values": [CUSTOM, *available_scenarios()],
               "label": N_("Policy (custom: the levers below)")},
    "tp_budget_meur": {"type": "SliderFloat", "value": 0.0, "min": 0.0, "max": 30.0,
                       "step": 0.5, "label": N_("TP funding of schools, MEUR a year")},
    "tp_allocation": {"type": "Select", "value": "proportional", "values": list(ALLOCATIONS),
                      "label": N_("TP allocation rule")},
    # The pilot's coverage as the starting point, so the first run shows an effect.
    "engagement_coverage": {"type": "SliderFloat", "value": 0.79, "min": 0.0, "max": 1.0,
                            "step": 0.01, "label": N_("Engagement: share of renewal-area units"),
                            "percent": True},
    "catchments": {"type": "Select", "value": "unchanged", "values": list(CATCHMENT_CHOICES),
                   "label": N_("Catchments")},
    "renewal_dwellings": {"type": "SliderInt", "value": 0, "min": 0, "max": 1000, "step": 50,
                          "label": N_("Urban renewal: new dwellings a year")},
    "city": {"type": "Select", "value": "small", "values": list(PRESETS), "label": N_("City")},
    "seed": {"type": "SliderInt", "value": 0, "min": 0, "max": 99, "step": 1,
             "label": N_("Seed")},
    # Ten years: the horizon in the user story ("run ten years"); assumption.
    "years": {"type": "SliderInt", "value": 10, "min": 1, "max": 30, "step": 1,
              "label": N_("Years")},
}

OPTION_WORDS = (N_("custom"), N_("unchanged"), N_("small"))  # control options in words
CARD_STYLE = {"height": "100%", "overflow": "auto"}  # a view fills its grid cell, scrolls
LANGUAGE_NAMES = {"fi": "suomi", "sv": "svenska", "en": "English"}
lang = solara.reactive(default_language())  # per browser session, like the choices below
layer = solara.reactive(LAYERS[0])
colour_by = solara.reactive(next(iter(SCHOOL_COLOURS)))
selected_school = solara.reactive("S000")


def text() -> Text:
    """The session's language."""
    return Text(lang.value)


def timed(model: TwinModel, name: str, draw: Callable[[], Any]) -> Any:
    """Run ``draw`` and keep its wall time in ``model.redraw_seconds[name]``."""
    t0 = time.perf_counter()
    out = draw()
    model.redraw_seconds[name] = time.perf_counter() - t0
    return out


def png_uri(png: bytes) -> str:
    """A PNG as a data URI for an ``<img>``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def describe(row: dict[str, Any], t: Text) -> str:
    """One school's details as plain text (the map's hover tooltip)."""
    _ = t.gettext
    where = ", " + _("renewal area") if row["renewal_area"] else ""
    return _("{uid} (grades {grades}{where}): {pupils} pupils of {capacity} places, low "
             "status {low}, foreign language {foreign}, mean outcome {outcome} school years, "
             "reputation {reputation}").format(
        uid=row["unit_id"], grades=row["grades"], where=where, pupils=row["pupils"],
        capacity=row["capacity"], low=t.pct(row["low_status_share"], 0),
        foreign=t.pct(row["foreign_language_share"], 0),
        outcome=t.num(row["mean_outcome"], 2, True), reputation=t.num(row["reputation"], 2, True))


def choice(label: str, options: list[str], value: solara.Reactive[str], t: Text) -> None:
    """A select whose options are shown translated; ``value`` keeps the untranslated key."""
    shown = {t.gettext(o): o for o in options}
    solara.Select(label, values=list(shown), value=t.gettext(value.value),
                  on_value=lambda v: value.set(shown[v]))


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
    t = text()
    _ = t.gettext
    redraw = sum(model.redraw_seconds.values())
    cfg = model.policy.cfg
    with solara.Card(_("Progress"), style=CARD_STYLE) as card:
        solara.HTML(tag="div", classes=["kk-year"], unsafe_innerHTML=_(
            "Year {year} of {years}").format(year=model.year, years=model.years))
        solara.ProgressLinear(value=100.0 * model.year / model.years)
        solara.HTML(tag="div", classes=["kk-timing"], unsafe_innerHTML=_(
            "last year: model {model} s (both runs), redraw {redraw} s").format(
            model=t.num(model.step_seconds, 2), redraw=t.num(redraw, 2)))
        levers = ", ".join(lv.lever_name for lv in model.policy.levers) or _("none")
        settings = (_("as shipped") if model.settings is None else _(
            "TP funding {budget} MEUR a year ({rule}), engagement coverage {coverage}, "
            "catchments {catchments}, urban renewal {dwellings} dwellings a year").format(
            budget=t.num(model.settings["tp_budget_meur"], 1),
            rule=model.settings["tp_allocation"],
            coverage=t.pct(model.settings["engagement_coverage"], 0),
            catchments=_(model.settings["catchments"]),
            dwellings=model.settings["renewal_dwellings"]))
        description = (_("Levers set on the dashboard.") if cfg.scenario.name == CUSTOM
                       else _(cfg.scenario.description))
        solara.HTML(tag="p", classes=["kk-policy"], unsafe_innerHTML=_(
            "{city} city, seed {seed}. <b>{name}</b> (levers: {levers}; {settings}): "
            "{description}").format(
            city=_(cfg.city.preset), seed=cfg.seed, name=html.escape(cfg.scenario.name),
            levers=levers, settings=html.escape(settings),
            description=html.escape(description)))
    return card


def city(model: TwinModel) -> solara.Element:
    """The policy run's city map, with a layer and a school-colour choice."""
    t = text()
    _ = t.gettext
    with solara.Card(_("City (policy run)"), style=CARD_STYLE) as card:
        with solara.Row():
            choice(_("Layer"), list(LAYERS), layer, t)
            choice(_("Schools coloured by"), list(SCHOOL_COLOURS), colour_by, t)
        drawn = timed(model, "map", lambda: city_map(
            model.policy, layer.value, colour_by.value, selected_school.value))
        rows = {r["unit_id"]: r for r in school_table(model.policy).to_dict("records")}
        solara.v.Html(tag="img", attributes={
            "src": png_uri(drawn.png), "usemap": "#kk-schools", "alt": _("city map"),
            "width": drawn.width, "height": drawn.height, "data-year": str(model.year),
            "class": "kk-map"})
        solara.v.Html(tag="map", attributes={"name": "kk-schools"}, children=[
            SchoolArea(spot, describe(rows[spot.unit_id], t)) for spot in drawn.spots])
        with solara.Row():
            for legend, label in ((drawn.layer, _(drawn.layer.label)), (drawn.schools, _(
                    "schools: {label}").format(label=_(drawn.schools.label)))):
                solara.HTML(tag="div", style="font-size: 0.8em; flex: 1", unsafe_innerHTML=(
                    f'<div style="height: 10px; background: {legend.css_gradient}"></div>'
                    f'<span>{t.num(legend.lo, 2)}</span><span style="float: right">'
                    f"{t.num(legend.hi, 2)}</span><div>{html.escape(label)}</div>"))
        solara.HTML(tag="div", style="font-size: 0.85em", unsafe_innerHTML=_(
            "Magenta: urban-renewal areas; thin lines: grades 1-6 catchments; circles: "
            "grades 1-6 schools, squares: grades 7-9. Hover a school for its details, "
            "click it to compare it with the baseline twin."))
    return card


def school_details(model: TwinModel) -> solara.Element:
    """One school, in the policy run and in the baseline twin."""
    t = text()
    _ = t.gettext
    pol = school_table(model.policy).set_index("unit_id")
    base = school_table(model.baseline).set_index("unit_id")
    with solara.Card(_("School"), style=CARD_STYLE) as card:
        solara.Select(_("School (or click one on the map)"), values=list(pol.index),
                      value=selected_school)
        uid = selected_school.value if selected_school.value in pol.index else pol.index[0]
        def shown(x: float) -> str:  # three significant digits, the language's way
            if not np.isfinite(x) or x == 0:
                return "0" if x == 0 else "-"
            return t.num(x, max(0, 2 - int(np.floor(np.log10(abs(x))))))

        body = "".join(
            f"<tr><td>{html.escape(_(label))}</td><td>{shown(base.at[uid, c])}</td>"
            f"<td>{shown(pol.at[uid, c])}</td></tr>" for c, label in SCHOOL_FIELDS.items())
        solara.HTML(tag="table", classes=["kk-school"], unsafe_innerHTML=(
            f"<tr><th>{uid}, {_('grades')} {pol.at[uid, 'grades']}</th>"
            f"<th>{_('baseline')}</th><th>{_('policy')}</th></tr>{body}"))
    return card


def indices(model: TwinModel) -> solara.Element:
    """The key indices over the years, policy and baseline twin, with the run-to-run band."""
    t = text()
    _ = t.gettext
    options = timed(model, "charts", lambda: index_charts(model, t))
    with solara.Card(_("Key indices: policy (solid) vs baseline twin (dashed)"),
                     style=CARD_STYLE) as card:
        note = (_("Grey lines: the lowest and highest baseline over {n} other seeds "
                  "(computing...)") if model.band_ready() is None else
                _("Grey lines: the lowest and highest baseline over {n} other seeds. A "
                  "difference between them can be chance."))
        solara.HTML(tag="div", classes=["kk-band-note"],
                    unsafe_innerHTML=note.format(n=BAND_SEEDS))
        with solara.GridFixed(columns=3):
            for metric, option in options.items():
                # The plotted values ride along as attributes: the page test reads them.
                base, pol = (json.dumps([v for _y, v in s["data"]])
                             for s in option["series"][:2])
                solara.v.Html(tag="div", attributes={
                    "class": "kk-chart", "data-metric": metric, "data-baseline": base,
                    "data-policy": pol, "data-band": str(len(option["series"]) > 2).lower()},
                    children=[solara.FigureEcharts(option=option,
                                                   attributes={"style": "height: 230px;"})])
    return card


def numbers(model: TwinModel) -> solara.Element:
    """The key numbers of the current year: policy, baseline, difference, run-to-run spread."""
    t = text()
    _ = t.gettext
    df = key_numbers(model)

    def spread(x: float) -> str:
        return "..." if x != x else "\u00b1" + t.num(x, 4 if abs(x) < 0.01 else 3)

    body = "".join(
        f'<tr data-metric="{r.metric}" data-baseline="{r.baseline!r}" '
        f'data-policy="{r.policy!r}"><td>{html.escape(_(r.label))}</td>'
        f"<td>{t.num(r.baseline, 4)}</td><td>{t.num(r.policy, 4)}</td>"
        f'<td>{t.num(r.difference, 4, True)}</td><td class="kk-spread">{spread(r.spread)}</td>'
        "</tr>" for r in df.itertuples())
    with solara.Card(_("Year {year}: the numbers").format(year=model.year),
                     style=CARD_STYLE) as card:
        solara.HTML(tag="table", classes=["kk-numbers"], unsafe_innerHTML=(
            f"<tr><th>{_('index')}</th><th>{_('baseline')}</th><th>{_('policy')}</th>"
            f"<th>{_('difference')}</th><th>{_('run-to-run spread')}</th></tr>" + body))
        solara.HTML(tag="div", style="font-size: 0.85em", unsafe_innerHTML=_(
            "Run-to-run spread: half the range of the baseline over {n} other seeds this year. "
            "A difference smaller than it may be chance.").format(n=BAND_SEEDS))
    logger.info("year %d: model %.2f s, redraw %s", model.year, model.step_seconds,
                {k: round(v, 3) for k, v in model.redraw_seconds.items()})
    return card


VIEWS = [progress, numbers, city, school_details, indices]
# Where each view goes on a 12-column grid (rows of about 30 px), in ``VIEWS`` order:
# the map needs room and the charts the full width.
LAYOUT = [{"x": 0, "y": 0, "w": 4, "h": 10}, {"x": 4, "y": 0, "w": 8, "h": 10},
          {"x": 0, "y": 10, "w": 8, "h": 20}, {"x": 8, "y": 10, "w": 4, "h": 20},
          {"x": 0, "y": 30, "w": 12, "h": 17}]


def grid_layout(n: int) -> list[dict[str, Any]]:
    """The dashboard's grid layout for ``n`` views."""
    return [{"i": i, "moved": False, **LAYOUT[i]} for i in range(n)]


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


def slider_label(name: str, value: Any, t: Text) -> str:
    """A control's label with its current value, written the language's way."""
    spec = MODEL_PARAMS[name]
    if spec.get("percent"):
        shown = t.pct(value, 0)
    elif spec["type"] == "SliderFloat":
        shown = t.num(value, 1)
    else:
        shown = t.num(value, 0)
    return f"{t.gettext(spec['label'])}: {shown}"


@solara.component
def Parameters(params: solara.Reactive[dict[str, Any]]) -> None:
    """The model's controls; each slider's label shows its value."""
    t = text()

    def setter(name: str) -> Callable[[Any], None]:
        return lambda v: params.set({**params.value, name: v})

    for name, spec in MODEL_PARAMS.items():
        value = params.value[name]
        if spec["type"] == "Select":
            shown = {t.gettext(str(o)): o for o in spec["values"]}
            solara.Select(t.gettext(spec["label"]), values=list(shown),
                          value=t.gettext(str(value)),
                          on_value=lambda v, name=name, shown=shown: setter(name)(shown[v]))
            continue
        slider = solara.SliderFloat if spec["type"] == "SliderFloat" else solara.SliderInt
        with solara.Div(classes=["kk-control"], attributes={"data-param": name}):
            solara.HTML(tag="div", classes=["kk-control-label"], style="font-size: 0.9em",
                        unsafe_innerHTML=html.escape(slider_label(name, value, t)))
            slider("", value=value, min=spec["min"], max=spec["max"], step=spec["step"],
                   on_value=setter(name))


@solara.component
def Controls(model: solara.Reactive[TwinModel], params: solara.Reactive[dict[str, Any]],
             tick: solara.Reactive[int]) -> None:
    """Reset, play or pause, step; at the last year, a plain word that the run is over."""
    _ = text().gettext
    playing = solara.use_reactive(False)

    def play() -> None:
        while playing.value and model.value.running:
            model.value.step()
            tick.set(tick.value + 1)
        playing.set(False)

    solara.lab.use_task(play, dependencies=[playing.value], prefer_threaded=True)

    def reset() -> None:
        playing.set(False)
        model.set(TwinModel(**params.value))
        model.value.request_band()
        tick.set(tick.value + 1)

    def step() -> None:
        model.value.step()
        tick.set(tick.value + 1)

    running = model.value.running
    with solara.Row(justify="space-between"):
        solara.Button(label=_("Reset"), color="primary", on_click=reset)
        if running:
            solara.Button(label="\u275a\u275a" if playing.value else "\u25b6", color="primary",
                          on_click=lambda: playing.set(not playing.value))
            solara.Button(label=_("Step"), color="primary", on_click=step,
                          disabled=playing.value)
    if not running:
        solara.HTML(tag="div", classes=["kk-finished"], unsafe_innerHTML=_(
            "Finished: year {year} of {years}. Press Reset to run again.").format(
            year=model.value.year, years=model.value.years))


@solara.component
def Page() -> None:
    """The dashboard page: one ``TwinModel`` per browser session."""
    model = solara.use_reactive(solara.use_memo(first_model, []))
    params = solara.use_reactive(dict(DEFAULTS))
    tick = solara.use_reactive(0)  # bumped after every step: the views redraw
    t = text()
    _ = t.gettext

    def wait_for_band() -> None:  # redraw once the run-to-run band is ready
        model.value.request_band().result()
        tick.set(tick.value + 1)

    solara.lab.use_task(wait_for_band, dependencies=[model.value], prefer_threaded=True)
    version = tick.value  # read, so that every step redraws the views below
    solara.Style(".kk-numbers td, .kk-numbers th, .kk-school td, .kk-school th "
                 "{padding: 1px 6px}")
    with solara.AppBar():
        solara.AppBarTitle(_("Kaikkien koulu: levers against a baseline twin"))
    with solara.Sidebar(), solara.Column():
        with solara.Card(_("Language")):
            names = {v: k for k, v in LANGUAGE_NAMES.items()}
            solara.ToggleButtonsSingle(value=LANGUAGE_NAMES[lang.value],
                                       values=list(names),
                                       on_value=lambda v: lang.set(names[v]))
        with solara.Card(_("Controls")):
            Controls(model, params, tick)
        with solara.Card(_("Model parameters")):
            Parameters(params)
    with solara.Div(attributes={"data-tick": str(version)}):
        solara.GridDraggable(items=[view(model.value) for view in VIEWS],
                             grid_layout=grid_layout(len(VIEWS)), resizable=False,
                             draggable=False)


def main(argv: list[str] | None = None) -> None:
    """Serve the dashboard (blocks until interrupted)."""
    parser = argparse.ArgumentParser(prog="python -m experiments.app", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    parser.add_argument("--lang", choices=LANGUAGES, default=None,
                        help="first language of the page: fi, sv or en (default: the locale)")
    args = parser.parse_args(argv)
    if args.lang:  # the served module reads it through the locale, as default_language does
        os.environ["LANGUAGE"] = check_language(args.lang)
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
