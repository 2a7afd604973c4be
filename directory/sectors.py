"""Who runs a place: the sector rules, in one table (pure: no I/O, no store).

A facility's `sector` is one of public / private / civic / unknown (`model.SECTORS`, the public
filter value). The finer value a source gave is kept beside it (`extra["sector_detail"]`), with
the rule that decided it (`extra["sector_source"]`), so a reader can always see *why* a place
counts as private or civic, and a source that knows better can be told apart from a guess.

Rules, strongest first (the first rule that gives a value decides; the others that disagree are
kept in `extra["sector_evidence"]` and shown as a conflict):

  1. `register`        a register column mapped by the source's mapping file (ingest/mappings);
  2. `name_prefix`     a mapping's own `sector.name_prefixes` (the register author's knowledge);
  3. `operator_type`   OSM `operator:type`;
  4. `legal_form_operator` / `legal_form_name`  a Lithuanian legal form or institution word in the
                       operator, then in the name (`LEGAL_FORMS` below);
  5. `register_default` the mapping's default for every row (e.g. "the city's kindergarten
                       register lists municipal kindergartens");
  otherwise `unknown`, which is never counted as any sector.

Between sources (OSM and a register describing one place) the conflation merge keeps the
register's value and lists the disagreement in `facilities.conflicts` (directory/conflate.py).
docs/sectors.md is generated from this module (`markdown()`); a test keeps them equal.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

# Fine value -> sector. The fine values are what sources say; the sector is what we count.
DETAILS: dict[str, str] = {
    "public": "public",
    "government": "public",     # the state: ministries, agencies, courts, state institutions
    "municipal": "public",      # a municipality and its budget institutions
    "private": "private",       # companies: UAB, AB, MB, IĮ, ...
    "civic": "civic",
    "ngo": "civic",             # associations, public-benefit institutions (VšĮ), charities, funds
    "community": "civic",       # community associations (bendruomenė)
    "religious": "civic",       # parishes, religious communities and their charities
    "unknown": "unknown",
}
COARSE = ("public", "private", "civic", "unknown")

# Where a sector came from (the values of extra["sector_source"]), strongest first.
SOURCES: dict[str, str] = {
    "register": "a register column mapped by the source's mapping file",
    "name_prefix": "the mapping's own name prefixes (sector.name_prefixes)",
    "operator_type": "OpenStreetMap operator:type",
    "legal_form_operator": "a legal form or institution word in the operator (table below)",
    "legal_form_name": "a legal form or institution word in the name (table below)",
    "register_default": "the mapping's default for every row of the register",
    "none": "no source says: unknown",
}

# OSM operator:type -> fine value. OSM uses "charitable" more than "charity"; both accepted.
OPERATOR_TYPE: dict[str, str] = {
    "public": "public", "government": "government", "municipal": "municipal", "state": "government",
    "private": "private", "commercial": "private", "business": "private", "corporate": "private",
    "community": "community", "ngo": "ngo", "religious": "religious", "charity": "ngo", "charitable": "ngo",
    "association": "ngo", "cooperative": "private",
}


@dataclass(frozen=True, slots=True)
class LegalForm:
    """A word or abbreviation (matched as whole words, case and diacritics folded)."""

    pattern: str        # a regular expression over the folded text
    detail: str
    shown: str          # how the table shows it
    note: str = ""


# Lithuanian legal forms and institution words. Order matters: the first match decides, so the
# words that name the state or a municipality come before the legal form a body was set up in
# ("Utenos rajono savivaldybės ... VšĮ" is municipal). Caveats in the notes, shown in the docs.
LEGAL_FORMS: tuple[LegalForm, ...] = (
    LegalForm(r"\bministerij\w*", "government", "ministerija", "a ministry"),
    LegalForm(r"\bteism\w*", "government", "teismas", "a court"),
    LegalForm(r"\b(valstybin\w*|valstybes)\b", "government", "valstybinė / valstybės",
              "state (valstybinė mokesčių inspekcija, valstybės įmonė ...)"),
    LegalForm(r"\b(inspekcij\w*|departament\w*|sodra|vmi)\b", "government", "inspekcija, departamentas, Sodra, VMI",
              "state agencies and offices"),
    LegalForm(r"\b(savivaldyb\w*|seniunij\w*|(m|r) sav)\b", "municipal", "savivaldybė, seniūnija, m. sav., r. sav.",
              "the municipality and its elderships, and institutions named after them"),
    LegalForm(r"\b(biudzetine istaiga|bi)\b", "municipal", "biudžetinė įstaiga (BĮ)",
              "a budget institution: municipal or state; counted as municipal"),
    LegalForm(r"\b(parapij\w*|baznyci\w*|vienuolyn\w*|kurij\w*|caritas|religin\w*|bendruomene\w* (evangeliku|krikscioniu))\b",
              "religious", "parapija, bažnyčia, vienuolynas, kurija, Caritas, religinė",
              "parishes, churches, monasteries and their charities"),
    LegalForm(r"\b(labdaros( ir paramos)? fond\w*|paramos fond\w*|labdaros)\b", "ngo",
              "labdaros ir paramos fondas, paramos fondas", "a charity or support fund"),
    LegalForm(r"\b(asociacij\w*|draugij\w*|sajung\w*)\b", "ngo", "asociacija, draugija, sąjunga",
              "an association or society"),
    LegalForm(r"\bbendruomen\w*", "community", "bendruomenė", "a community association"),
    LegalForm(r"\b(vsi|viesoji istaiga)\b", "ngo", "VšĮ (viešoji įstaiga)",
              "a public-benefit non-profit; municipalities and companies also found VšĮ, so a"
              " register that knows better overrides it (e.g. Vilnius: private kindergartens)"),
    LegalForm(r"\b(uab|ab|mb|zub|tub|kub|uzdaroji akcine bendrove|akcine bendrove|mazoji bendrija|"
              r"individuali imone)\b|^ii\b", "private", "UAB, AB, MB, IĮ, ŽŪB, TŪB, KŪB",
              "companies (IĮ only at the start: \"II\" is also a Roman numeral); AB also covers state-owned companies"),
)
_COMPILED = tuple((re.compile(f.pattern), f) for f in LEGAL_FORMS)
_SPACES = re.compile(r"[^\w]+")


# Any of the forms at all: one search that most names fail, before the ordered table is tried.
_ANY_FORM = re.compile("|".join(f"(?:{f.pattern})" for f in LEGAL_FORMS))


class _Strip(dict):
    """str.translate table dropping combining marks: each character is looked up once, then the
    translation runs in C (a per-character generator was most of an OSM ingest's sector cost)."""

    def __missing__(self, char: int) -> int | None:
        out = None if unicodedata.combining(chr(char)) else char
        self[char] = out
        return out


_STRIP = _Strip()


def fold(text: str) -> str:
    """Lower case, diacritics removed, punctuation as spaces: "VšĮ „Vaikystė“" -> "vsi vaikyste"."""
    lowered = text.casefold()
    plain = lowered if lowered.isascii() else unicodedata.normalize("NFKD", lowered).translate(_STRIP)
    return " ".join(_SPACES.sub(" ", plain).split())


@functools.lru_cache(maxsize=8192)  # operators and names repeat across a country's places
def legal_form(text: str | None) -> LegalForm | None:
    """The first legal form or institution word found in a name or an operator, or None."""
    if not text:
        return None
    folded = fold(text)
    if _ANY_FORM.search(folded) is None:
        return None
    for rx, form in _COMPILED:
        if rx.search(folded):
            return form
    return None


def coarse(detail: str | None) -> str:
    """The sector a fine value counts as (unknown for None and anything not in the table)."""
    return DETAILS.get(detail or "unknown", "unknown")


@dataclass(frozen=True, slots=True)
class Sector:
    """A record's sector, its fine value, the rule that decided it, and every rule's say."""

    sector: str = "unknown"
    detail: str = "unknown"
    source: str = "none"
    evidence: dict[str, str] = field(default_factory=dict)  # rule -> fine value, every rule that spoke

    @property
    def conflicting(self) -> dict[str, str]:
        """The rules whose sector differs from the one chosen (empty: all agree)."""
        return {k: v for k, v in self.evidence.items() if coarse(v) != self.sector}

    def extra(self) -> dict[str, object]:
        """What goes into Facility.extra (JSON-able); evidence only when rules disagree."""
        out: dict[str, object] = {"sector_detail": self.detail, "sector_source": self.source}
        if self.conflicting:
            out["sector_evidence"] = dict(self.evidence)
        return out


def decide(*, register: str | None = None, name_prefix: str | None = None, operator_type: str | None = None,
           operator: str | None = None, name: str | None = None, register_default: str | None = None) -> Sector:
    """Apply the rules in order of strength; every argument is a fine value or raw text.

    `register`, `name_prefix` and `register_default` are fine values (a mapping's output);
    `operator_type` is OSM's raw tag; `operator` and `name` are free text read for legal forms.
    """
    said: dict[str, str] = {}
    if register and register != "unknown":
        said["register"] = register
    if name_prefix and name_prefix != "unknown":
        said["name_prefix"] = name_prefix
    if operator_type:
        value = OPERATOR_TYPE.get(operator_type.strip().lower())
        if value:
            said["operator_type"] = value
    form = legal_form(operator)
    if form:
        said["legal_form_operator"] = form.detail
    form = legal_form(name)
    if form:
        said["legal_form_name"] = form.detail
    if register_default and register_default != "unknown":
        said["register_default"] = register_default
    for rule in SOURCES:
        if rule in said:
            return Sector(sector=coarse(said[rule]), detail=said[rule], source=rule, evidence=said)
    return Sector()


def from_osm_tags(tags: Mapping[str, str]) -> Sector:
    """The sector of an OSM element: operator:type, then legal forms in operator, then in name."""
    return decide(operator_type=tags.get("operator:type"), operator=tags.get("operator"),
                  name=tags.get("name") or tags.get("name:lt"))


def markdown() -> str:
    """docs/sectors.md: the rules and the tables, generated from this module."""
    lines = [
        "# Sectors: who runs a place",
        "",
        "Generated from `directory/sectors.py` (`python -m directory.sectors > docs/sectors.md`);"
        " a test keeps the two equal.",
        "",
        "Every facility has a `sector` (public / private / civic / unknown: the API's `sector=` filter)"
        " and, in `extra`, the finer value a source gave (`sector_detail`) and the rule that decided it"
        " (`sector_source`). When rules of one record disagree, `extra.sector_evidence` lists what each said;"
        " when two sources of one place disagree, the conflict is in the facility's `conflicts`"
        " (the register wins, as for names and addresses). `unknown` is never counted as a sector.",
        "",
        "## Fine values",
        "",
        "| fine value (`sector_detail`) | sector |",
        "|---|---|",
        *[f"| `{k}` | `{v}` |" for k, v in DETAILS.items()],
        "",
        "## Rules, strongest first (`sector_source`)",
        "",
        "| rule | what |",
        "|---|---|",
        *[f"| `{k}` | {v} |" for k, v in SOURCES.items()],
        "",
        "## OpenStreetMap `operator:type`",
        "",
        "| operator:type | fine value |",
        "|---|---|",
        *[f"| `{k}` | `{v}` |" for k, v in OPERATOR_TYPE.items()],
        "",
        "## Lithuanian legal forms and institution words (in operator, then in name; first match decides)",
        "",
        "| words (case and diacritics ignored, any inflection) | fine value | note |",
        "|---|---|---|",
        *[f"| {f.shown} | `{f.detail}` | {f.note} |" for f in LEGAL_FORMS],
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
