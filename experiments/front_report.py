"""The comparison report's section on a policy search (``experiments.optimise``).

A comparison run inside a search folder (``python -m experiments.compare
scenarios='[baseline,tp_funding,<search>/front/t0012.yaml]' hydra.run.dir=<search>/compare``)
gets a section that says, in plain words and in the report's language, what the cheapest
front point that beats each shipped scenario does and what it costs (from the search's
``beats.csv``). The settings' own description (``front.csv``) is the search's, in English.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from experiments.i18n import Text
from experiments.summary import N_

# metric -> (words, unit, decimals)
OUTCOME_WORDS = {"outcome_gap_decile": (N_("Learning gap"), N_("school years"), 2),
                 "seg_school_ses_H": (N_("School segregation by status"), N_("Theil's H"), 4)}


def search_folder(report_dir: Path) -> Path | None:
    """The search folder a comparison was run in (its parent holds ``beats.csv``), if any."""
    parent = Path(report_dir).resolve().parent
    return parent if (parent / "beats.csv").is_file() and (parent / "study.db").is_file() \
        else None


def point_sentences(row: dict, t: Text) -> list[str]:
    """One reference scenario and the cheapest point that beats it, in plain words."""
    _ = t.gettext
    ref = _("{scenario} (costs {cost} million euros a year)").format(
        scenario=row["reference"], cost=t.num(row["reference_cost"], 1))
    if not row["point"]:
        return [_("No setting found by the search beats {ref} on both the learning gap and "
                  "school segregation at the same or a lower cost.").format(ref=ref)]
    lines = [_("Cheapest setting that beats {ref}: {point}, at {cost} million euros a "
               "year.").format(ref=ref, point=row["point"], cost=t.num(row["cost"], 1))]
    for metric, (words, unit, digits) in OUTCOME_WORDS.items():
        if f"{metric}_diff" not in row:
            continue
        clear = _("a clear difference") if row[f"{metric}_clear"] else _(
            "not clearly different (within the noise)")
        lines.append(_("{outcome}: {value} {unit} lower than under {scenario} (95% range "
                       "{low} to {high}), {clear}.").format(
            outcome=_(words), value=t.num(-row[f"{metric}_diff"], digits), unit=_(unit),
            scenario=row["reference"], low=t.num(-row[f"{metric}_diff_high"], digits),
            high=t.num(-row[f"{metric}_diff_low"], digits), clear=clear))
    if row.get("description"):
        lines.append(_("What it does: {description}").format(description=row["description"]))
    return lines


def front_section(report_dir: Path, t: Text) -> str:
    """The section's HTML, or an empty string outside a search folder."""
    _ = t.gettext
    folder = search_folder(report_dir)
    if folder is None:
        return ""
    beats = pd.read_csv(folder / "beats.csv")
    beats["point"] = beats["point"].fillna("")  # a scenario nothing beats
    items = "".join("<li>" + " ".join(html.escape(x) for x in point_sentences(r, t)) + "</li>"
                    for r in beats.to_dict("records"))
    return (f"<h2>{_('The search for the best policy mix')}</h2><p>"
            + html.escape(_("The policy search (experiments.optimise) tried many mixes of the "
                            "levers. For each shipped scenario, the cheapest mix it found that "
                            "does better on both the learning gap and school segregation:"))
            + f"</p><ul>{items}</ul><p><small>"
            + html.escape(_("Full results: {file} and front.png.").format(
                file=folder / "front.csv"))
            + "</small></p>")
