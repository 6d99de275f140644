"""Languages of the report, the dashboard and the command-line summaries: fi, sv and en.

The texts are written in English in the code, marked ``_("...")``, and translated through
gettext catalogues: ``experiments/locale/<lang>/LC_MESSAGES/messages.po``, kept in the repo
and maintained with Babel (``pybabel extract -F babel.cfg``, ``pybabel update``; see
``docs/report.md``). The catalogues are compiled with Babel when first used (in memory, no
``.mo`` file to build or commit), so a fresh clone works as it is. English is the source
language and needs no catalogue.

``lang=fi|sv|en`` chooses the language; without it, the user's locale decides
(``default_language``: the first of ``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG`` that
is set, as gettext reads them), and English is the fallback.

Numbers are written the language's way (``Text.num``: decimal comma and a space between
thousands in Finnish and Swedish) through Babel's number formats.
"""

from __future__ import annotations

import functools
import gettext
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

LANGUAGES = ("fi", "sv", "en")
SOURCE = "en"  # the language of the msgids
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
LOCALE_VARS = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def default_language(environ: dict[str, str] | None = None) -> str:
    """The user's language from the locale variables, if it is one of ``LANGUAGES``, else en.

    The first variable that is set decides, as in gettext; ``LANGUAGE`` may list several
    (``sv:fi``), the first known one counts. ``C`` and ``POSIX`` mean English.
    """
    env = os.environ if environ is None else environ
    for var in LOCALE_VARS:
        value = env.get(var)
        if not value:
            continue
        for part in value.split(":"):
            code = part.split(".")[0].split("_")[0].split("@")[0].lower()
            if code in LANGUAGES:
                return code
        return SOURCE
    return SOURCE


def check_language(lang: str) -> str:
    """``lang`` if it is one of ``LANGUAGES``.

    Raises:
        ValueError: One line naming the value and the languages there are.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"lang={lang!r} is not allowed; expected one of {', '.join(LANGUAGES)}"
                         " (or leave it out to follow the locale)")
    return lang


def po_path(lang: str) -> Path:
    """The catalogue of ``lang``."""
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``lang`` (English: the source texts as they are)."""
    check_language(lang)
    if lang == SOURCE:
        return gettext.NullTranslations()
    with po_path(lang).open("rb") as f:
        catalog = read_po(f, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)  # fuzzy entries are left out: they show in English
    buf.seek(0)
    return gettext.GNUTranslations(buf)


@dataclass(frozen=True)
class Text:
    """One language's texts and number formats.

    ``_ = Text("fi").gettext`` is the usual gettext idiom: ``_("School segregation")``.
    """

    lang: str

    def __post_init__(self) -> None:
        check_language(self.lang)

    def gettext(self, message: str) -> str:
        """``message`` in this language (as it is if the catalogue has no translation)."""
        return translations(self.lang).gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The singular or plural form for ``n``, in this language."""
        return translations(self.lang).ngettext(singular, plural, n)

    def num(self, x: float, digits: int = 2, sign: bool = False) -> str:
        """``x`` with ``digits`` decimals (and a leading + or - if ``sign``)."""
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        if sign:
            pattern = f"+{pattern};-{pattern}"
        return format_decimal(x, format=pattern, locale=self.lang)

    def pct(self, share: float, digits: int = 1, sign: bool = False) -> str:
        """A share (0.25) as a percentage (``25.0 %`` in this language's way)."""
        return f"{self.num(100 * share, digits, sign)}\u00a0%"

    def pp(self, share: float, digits: int | None = None) -> str:
        """A change of a share (0.012) in percentage points, signed.

        One decimal, or two for changes under one percentage point (rates of a few per cent
        change by hundredths).
        """
        if digits is None:
            digits = 1 if abs(round(100 * share, 1)) >= 1 else 2
        return f"{self.num(100 * share, digits, True)}\u00a0{self.gettext('percentage points')}"

    def meur(self, euros: float, digits: int = 2) -> str:
        """Euros as million euros."""
        return f"{self.num(euros / 1e6, digits)}\u00a0{self.gettext('million euros')}"


def extract_scenario_descriptions(fileobj: Any, keywords: Any, comment_tags: Any,
                                  options: Any) -> Iterator[tuple[int, str, str, list[str]]]:
    """Babel extractor for ``conf/scenario/*.yaml`` (``babel.cfg``): names and descriptions.

    The report shows a shipped scenario's description in the reader's language; a scenario
    file of one's own keeps its words as written.
    """
    data = yaml.safe_load(fileobj.read().decode("utf-8")) or {}
    if isinstance(data.get("description"), str):
        yield 1, "", data["description"], ["scenario description"]
