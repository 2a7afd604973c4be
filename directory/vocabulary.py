"""Search by need: the words people type for each category and feature, in Lithuanian and English.

`VOCABULARY` is the one documented table (docs/search.md shows it): every category and feature
slug of `directory.model` has words in both languages. Words are compared after `word_stem`, which
folds case and diacritics ("darželis" = "darzelis") and strips Lithuanian case endings
("darželių", "darželiai", "darželio" -> "darzel"), so one entry covers every inflection.

The same stemming makes the gazetteer's keys (`directory.places`): "Antakalnis", "Antakalnio"
and "antakalnio" are one key; "Žirmūnai" and "Zirmunu" are one key.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Lithuanian noun and adjective endings after folding (ų -> u, ė -> e, ...), longest first so
# "iaus" wins over "us". A stem keeps at least MIN_STEM letters: "Utena" -> "uten", never "ut".
_ENDINGS = tuple(sorted((
    "iuose", "iuje", "ioje", "uose", "yje", "iams", "iaus", "aus", "ams", "ems", "ius", "iai", "ies",
    "iu", "io", "is", "ys", "as", "ai", "os", "es", "us", "ui", "ei", "a", "e", "i", "o", "u", "y",
), key=len, reverse=True))
MIN_STEM = 3
_WORD = re.compile(r"\w+", re.UNICODE)


def fold(text: str) -> str:
    """Lower case without diacritics ("Šiauliai" -> "siauliai")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()


def word_stem(word: str) -> str:
    """One word folded and without its case ending: "Antakalnio" -> "antakaln".

    "t"/"d" soften to "č"/"dž" before an "i" ending ("Naujamiestis" / "Naujamiesčio"), so a stem
    ending in "c" / "dz" cut before such an ending is written back with "t" / "d".
    """
    w = fold(word)
    for ending in _ENDINGS:
        if w.endswith(ending) and len(w) - len(ending) >= MIN_STEM:
            stem = w[: -len(ending)]
            if ending.startswith("i"):
                if stem.endswith("dz"):
                    stem = stem[:-1]
                elif stem.endswith("c"):
                    stem = stem[:-1] + "t"
            return stem
    return w


def words(text: str) -> list[str]:
    """The words of a text as typed (letters and digits; "lopšelis-darželis" is two words)."""
    return _WORD.findall(text or "")


@dataclass(frozen=True, slots=True)
class Need:
    """What one phrase means: categories (any of them) and/or features (all of them)."""

    categories: tuple[str, ...] = ()
    features: tuple[str, ...] = ()


def _c(*slugs: str) -> Need:
    return Need(categories=slugs)


def _f(*slugs: str) -> Need:
    return Need(features=slugs)


# slug-meaning -> (Lithuanian words, English words). Nominative singular is enough for
# Lithuanian (the stemmer covers the other cases); English plurals in -s are matched too.
VOCABULARY: list[tuple[Need, tuple[str, ...], tuple[str, ...]]] = [
    (_c("day_centre"), ("dienos centras", "užimtumo centras", "dienos užimtumo centras", "senjorų centras"),
     ("day centre", "day center", "day care centre", "senior centre")),
    (_c("kindergarten"), ("darželis", "vaikų darželis", "lopšelis-darželis", "ikimokyklinė įstaiga",
                          "ikimokyklinio ugdymo įstaiga"),
     ("kindergarten", "preschool", "pre-school", "nursery school")),
    (_c("kindergarten", "childcare"), ("lopšelis",), ("nursery",)),
    (_c("childcare"), ("vaikų priežiūra", "auklė", "vaikų priežiūros centras"),
     ("childcare", "child care", "creche", "crèche", "daycare", "babysitting")),
    (_c("playground"), ("žaidimų aikštelė", "vaikų žaidimų aikštelė", "vaikų aikštelė", "aikštelė"),
     ("playground", "play area")),
    (_c("indoor_play"), ("žaidimų kambarys", "vaikų žaidimų kambarys", "žaidimų erdvė", "vaikų erdvė"),
     ("indoor play", "play room", "playroom", "soft play")),
    (_c("baby_room"), ("mamos kambarys", "motinos ir vaiko kambarys", "kūdikių kambarys", "mamos ir vaiko kambarys"),
     ("baby room", "mother and baby room", "parent room", "nursing room")),
    (_c("toilet"), ("tualetas", "viešasis tualetas", "WC", "tualetai"), ("toilet", "public toilet", "restroom", "WC", "loo")),
    (_c("library"), ("biblioteka", "viešoji biblioteka"), ("library", "public library")),
    (_c("community_centre"), ("bendruomenės centras", "bendruomenės namai"),
     ("community centre", "community center")),
    (_c("townhall"), ("rotušė", "savivaldybės pastatas", "seniūnijos pastatas"),
     ("town hall", "townhall", "city hall", "municipal office")),
    (_c("culture"), ("kultūros centras", "kultūros namai", "muziejus", "teatras", "menų centras"),
     ("culture", "cultural centre", "museum", "theatre", "theater", "arts centre")),
    # (issue 15) the two kinds the social-cluster question adds
    (_c("school"), ("mokykla", "gimnazija", "progimnazija", "pradinė mokykla", "pagrindinė mokykla"),
     ("school", "primary school", "secondary school", "gymnasium")),
    (_c("state_institution"), ("valstybės įstaiga", "ministerija", "teismas", "mokesčių inspekcija", "Sodra"),
     ("state institution", "government office", "ministry", "court", "tax office", "social insurance")),
    (_f("changing_table"), ("vystymo stalas", "vystymo stalelis", "pervystymo stalas", "vystymo vieta"),
     ("changing table", "baby changing", "nappy changing", "diaper changing")),
    (_f("feeding_room"), ("maitinimo kambarys", "žindymo kambarys", "žindymo vieta", "maitinimo vieta"),
     ("feeding room", "breastfeeding", "breastfeeding room")),
    (_f("wheelchair"), ("neįgaliojo vežimėlis", "pritaikyta neįgaliesiems", "neįgaliesiems"),
     ("wheelchair", "wheelchair access", "step-free", "accessible")),
    (_f("free"), ("nemokamas", "nemokamai"), ("free", "free of charge")),
    (_f("play_corner"), ("žaidimų kampelis", "vaikų kampelis"), ("play corner", "kids corner")),
    (_f("pram_access"), ("vaikiškas vežimėlis", "įvažiavimas su vežimėliu", "pritaikyta vežimėliams"),
     ("pram access", "stroller access", "buggy access", "pram")),
    (_f("toilet"), ("su tualetu", "yra tualetas"), ("with toilet", "has toilet")),
    (_f("seating"), ("suoliukas", "sėdimos vietos", "kur prisėsti"), ("seating", "bench", "place to sit")),
    (_f("cafe"), ("kavinė",), ("cafe", "café", "coffee")),
    (_f("open_foyer"), ("atviras visiems", "atvira visiems"), ("open to anyone", "open to all", "open foyer")),
]


def _phrase_key(phrase: str) -> tuple[str, ...]:
    return tuple(word_stem(w) for w in words(phrase))


def _build() -> dict[tuple[str, ...], Need]:
    table: dict[tuple[str, ...], Need] = {}
    for need, lt, en in VOCABULARY:
        for phrase in (*lt, *en):
            table[_phrase_key(phrase)] = need
    return table


PHRASES = _build()
LONGEST = max(len(k) for k in PHRASES)


def covered_slugs() -> tuple[set[str], set[str]]:
    """The category and feature slugs that have words (a test checks: all of them)."""
    cats = {c for need, _lt, _en in VOCABULARY for c in need.categories}
    feats = {f for need, _lt, _en in VOCABULARY for f in need.features}
    return cats, feats


def _lookup(stems: tuple[str, ...]) -> Need | None:
    need = PHRASES.get(stems)
    if need is None and stems and stems[-1].endswith("s") and len(stems[-1]) > MIN_STEM:
        need = PHRASES.get((*stems[:-1], stems[-1][:-1]))  # English plural: "toilets", "libraries"
    return need


@dataclass(frozen=True, slots=True)
class NeedMatch:
    categories: tuple[str, ...]
    features: tuple[str, ...]
    matched: tuple[str, ...]  # the words that were need words, as typed
    rest: tuple[str, ...]  # the other words, as typed, in order


def match_needs(text: str) -> NeedMatch:
    """Split a search text into need words (longest phrase first) and the rest."""
    typed = words(text)
    stems = [word_stem(w) for w in typed]
    cats: list[str] = []
    feats: list[str] = []
    matched: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(typed):
        for n in range(min(LONGEST, len(typed) - i), 0, -1):
            need = _lookup(tuple(stems[i:i + n]))
            if need is not None:
                cats += need.categories
                feats += need.features
                matched += typed[i:i + n]
                i += n
                break
        else:
            rest.append(typed[i])
            i += 1
    return NeedMatch(tuple(dict.fromkeys(cats)), tuple(dict.fromkeys(feats)), tuple(matched), tuple(rest))

