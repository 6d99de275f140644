"""Languages: the catalogues are complete and current, the locale picks the language."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from experiments.compare import CompareConfig, split
from experiments.i18n import LOCALE_DIR, Text, check_language, default_language, po_path

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"\{\w*\}")


def ids(path: Path) -> set:
    with path.open("rb") as f:
        return {m.id for m in read_po(f) if m.id}


def test_catalogue_template_is_current(tmp_path: Path) -> None:
    """The .pot holds exactly what the code and the scenario files mark for translation."""
    out = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
                    "babel.cfg", "--no-location", "-o", str(out), "."], cwd=ROOT, check=True,
                   capture_output=True)
    assert ids(out) == ids(LOCALE_DIR / "messages.pot")


@pytest.mark.parametrize("lang", ["fi", "sv"])
def test_every_text_is_translated(lang: str) -> None:
    with po_path(lang).open("rb") as f:
        catalog = read_po(f)
    assert {m.id for m in catalog if m.id} == ids(LOCALE_DIR / "messages.pot")
    for m in catalog:
        if not m.id:
            continue
        assert not m.fuzzy, m.id
        source = m.id if isinstance(m.id, tuple) else (m.id,)
        texts = m.string if isinstance(m.string, tuple) else (m.string,)
        for text in texts:
            assert text, m.id
            # The same values are filled in (a plural may leave out the singular's count).
            assert set(PLACEHOLDER.findall(text)) <= set(PLACEHOLDER.findall(source[-1]))
            assert set(PLACEHOLDER.findall(source[0])) <= set(PLACEHOLDER.findall(text)), m.id


def test_translations_are_used() -> None:
    assert Text("fi").gettext("Summary") == "Yhteenveto"
    assert Text("sv").gettext("Summary") == "Sammanfattning"
    assert Text("en").gettext("Summary") == "Summary"
    assert Text("fi").num(1234.5, 1) == "1\u00a0234,5"
    assert Text("sv").pct(0.125) == "12,5\u00a0%"
    assert Text("en").num(-0.25, 2, sign=True) == "-0.25"


@pytest.mark.parametrize(("env", "lang"), [
    ({}, "en"), ({"LANG": "fi_FI.UTF-8"}, "fi"), ({"LANGUAGE": "sv:fi", "LANG": "fi_FI"}, "sv"),
    ({"LANGUAGE": "de:fi"}, "fi"), ({"LC_ALL": "C", "LANG": "fi_FI.UTF-8"}, "en"),
    ({"LC_MESSAGES": "sv_FI.UTF-8@euro"}, "sv"), ({"LANG": "de_DE.UTF-8"}, "en"),
])
def test_default_language_follows_the_locale(env: dict, lang: str) -> None:
    assert default_language(env) == lang


def test_unknown_language_is_refused_in_one_line() -> None:
    message = "lang='de' is not allowed; expected one of fi, sv, en (or leave it out to follow"
    with pytest.raises(ValueError, match=re.escape(message)):
        check_language("de")
    with pytest.raises(ValueError, match=re.escape(message)):
        split(CompareConfig(lang="de"))
