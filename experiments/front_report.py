"""The comparison report's section on a policy search (``experiments.optimise``).

A comparison run inside a search folder (``python -m experiments.compare
scenarios='[baseline,tp_funding,<search>/front/t0012.yaml]' hydra.run.dir=<search>/compare``)
gets a section that says, in plain words, what the cheapest front point that beats each
shipped scenario does and what it costs (from the search's ``beats.csv``). The section is in
English for now: its texts are not yet in the fi and sv catalogues.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

OUTCOME_WORDS = {"outcome_gap_decile": ("learning gap", "school years"),
                 "seg_school_ses_H": ("school segregation by status", "Theil's H")}


def search_folder(report_dir: Path) -> Path | None:
    """The search folder a comparison was run in (its parent holds ``beats.csv``), if any."""
    parent = Path(report_dir).resolve().parent
    return parent if (parent / "beats.csv").is_file() and (parent / "study.db").is_file() \
        else None


def point_sentence(row: dict) -> str:
    """One reference scenario and the cheapest point that beats it, in plain words."""
    ref = f"{row['reference']} (costs {row['reference_cost']:.1f} million euros a year)"
    if not row["point"]:
        return (f"No setting found by the search beats {ref} on both the learning gap and "
                "school segregation at the same or a lower cost.")
    parts = []
    for metric, (words, unit) in OUTCOME_WORDS.items():
        if f"{metric}_diff" not in row:
            continue
        clear = "clearly" if row[f"{metric}_clear"] else "not clearly (within the noise)"
        parts.append(f"the {words} by {-row[metric + '_diff']:.3g} {unit} more, {clear} "
                     f"(95% range {-row[metric + '_diff_high']:.3g} to "
                     f"{-row[metric + '_diff_low']:.3g})")
    return (f"Cheapest setting that beats {ref}: {row['point']}, at {row['cost']:.1f} million "
            f"euros a year. It lowers " + " and ".join(parts) + f" than {row['reference']}. "
            f"What it does: {row.get('description', '')}")


def front_section(report_dir: Path) -> str:
    """The section's HTML, or an empty string outside a search folder."""
    folder = search_folder(report_dir)
    if folder is None:
        return ""
    beats = pd.read_csv(folder / "beats.csv")
    beats["point"] = beats["point"].fillna("")  # a scenario nothing beats
    items = "".join(f"<li>{html.escape(point_sentence(r))}</li>"
                    for r in beats.to_dict("records"))
    return ("<h2>The search for the best policy mix</h2><p>"
            + html.escape("The policy search (experiments.optimise) tried many mixes of the "
                          "levers. For each shipped scenario, the cheapest mix it found that "
                          "does better on both the learning gap and school segregation:")
            + f"</p><ul>{items}</ul><p><small>"
            + html.escape(f"Full results: {folder / 'front.csv'} and front.png.")
            + "</small></p>")
