"""Lithuanian for every UI string (English source -> Lithuanian). `python translations/lt_strings.py`
writes them into translations/lt/LC_MESSAGES/messages.po after `pybabel update`; the .po file is
the source of truth for translators, this table only seeds it."""

LT = {
    "%(d)s km": "%(d)s km",
    "%(d)s m": "%(d)s m",
    "%(n)s places in view": "Matomoje srityje vietų: %(n)s",
    "%(n)s places in view — too many to list; zoom in, filter or use Near me":
        "Matomoje srityje vietų: %(n)s — per daug sąrašui; priartinkite, filtruokite arba spauskite „Šalia manęs“",
    "%(n)s+ places in view; the list shows the first %(shown)s — zoom in to see all":
        "Matomoje srityje vietų: %(n)s+; sąraše rodomos pirmosios %(shown)s — priartinkite, kad matytumėte visas",
    "About": "Apie vietą",
    "About:": "Apie:",
    "Address": "Adresas",
    "All categories": "Visos kategorijos",
    "Any time": "Bet kada",
    "As published:": "Kaip paskelbta:",
    "Atvira — map of family-friendly places": "Atvira — šeimai draugiškų vietų žemėlapis",
    "Baby room": "Motinos ir vaiko kambarys",
    "Back to the map": "Atgal į žemėlapį",
    "Café": "Kavinė",
    "Capacity": "Vietų skaičius",
    "Category": "Kategorija",
    "Changing table": "Vystymo stalas",
    "Childcare": "Vaikų priežiūra",
    "Closed now": "Dabar uždaryta",
    "Community centre": "Bendruomenės centras",
    "Could not load facilities:": "Nepavyko įkelti vietų:",
    "Culture": "Kultūra",
    "Day centre": "Dienos centras",
    "Details": "Išsamiau",
    "Directions (OpenStreetMap)": "Maršrutas (OpenStreetMap)",
    "Error": "Klaida",
    "Features and accessibility": "Patogumai ir prieinamumas",
    "Feeding room": "Maitinimo kambarys",
    "Filters": "Filtrai",
    "Free of charge": "Nemokama",
    "Go": "Ieškoti",
    "Hours unknown": "Darbo laikas nežinomas",
    "Indoor play": "Žaidimų erdvė viduje",
    "Kindergarten": "Darželis",
    "Language": "Kalba",
    "Last verified": "Paskutinį kartą patikrinta",
    "Legend": "Žymėjimai",
    "Library": "Biblioteka",
    "Loading…": "Įkeliama…",
    "Main": "Pagrindinis meniu",
    "Map": "Žemėlapis",
    "Map of family-friendly places": "Šeimai draugiškų vietų žemėlapis",
    "Must have": "Būtinai turi būti",
    "Near me": "Šalia manęs",
    "Nearest first from %(place)s": "Artimiausios nuo: %(place)s",
    "No facility with id %(id)s": "Nėra vietos, kurios identifikatorius %(id)s",
    "No features recorded yet (unknown, not absent).": "Patogumai dar neužregistruoti (nežinoma, o ne nėra).",
    "No place or address matches that.": "Tokios vietovės ar adreso nerasta.",
    "No places match here. Zoom out or change the filters.": "Čia tinkamų vietų nėra. Nutolinkite arba pakeiskite filtrus.",
    "Open in a map app": "Atverti žemėlapių programėlėje",
    "Open now": "Dabar atidaryta",
    "Open now or hours unknown": "Dabar atidaryta arba laikas nežinomas",
    "Open to anyone": "Atvira visiems",
    "Opening hours": "Darbo laikas",
    "Operator": "Valdytojas",
    "Place": "Vieta",
    "Place to sit": "Kur atsisėsti",
    "Places": "Vietos",
    "Play corner": "Žaidimų kampelis",
    "Playground": "Žaidimų aikštelė",
    "Report a problem": "Pranešti apie klaidą",
    "Search by name or address": "Paieška pagal pavadinimą ar adresą",
    "Sector": "Sektorius",
    "Sources": "Šaltiniai",
    "Stop sorting by distance": "Nerūšiuoti pagal atstumą",
    "The form for reporting problems is not available yet. It is coming soon.":
        "Pranešimo apie klaidas forma dar neparengta. Ji netrukus atsiras.",
    "The next seven days": "Artimiausios septynios dienos",
    "This browser cannot share a location. Type a place or address instead.":
        "Ši naršyklė negali nurodyti vietos. Įveskite vietovę arba adresą.",
    "This place comes from OpenStreetMap; you can fix it there directly:":
        "Ši vieta paimta iš OpenStreetMap; ją galite pataisyti tiesiogiai ten:",
    "This record as GeoJSON": "Šis įrašas GeoJSON formatu",
    "Toilet": "Tualetas",
    "Town hall": "Savivaldybė / seniūnija",
    "Unnamed place": "Vieta be pavadinimo",
    "Wheelchair access": "Pritaikyta vežimėliams",
    "Wheelchair access: unknown.": "Pritaikymas vežimėliams: nežinoma.",
    "Where": "Kur",
    "Where:": "Kur:",
    "You are here": "Jūs esate čia",
    "Your browser did not share a location. Type a place or address instead.":
        "Naršyklė nepateikė jūsų vietos. Įveskite vietovę arba adresą.",
    "Zoom to %(n)s places here": "Priartinti: čia %(n)s vietų",
    "active": "veikia",
    "civic (NGO)": "nevyriausybinis (NVO)",
    "closed": "uždaryta",
    "closed for good": "nebeveikia",
    "closes %(when)s": "uždaroma %(when)s",
    "fetched": "gauta",
    "hours unknown": "laikas nežinomas",
    "licence": "licencija",
    "limited": "iš dalies",
    "no": "ne",
    "no longer published": "nebeskelbiama",
    "not known": "nežinoma",
    "open it on OpenStreetMap": "atverti OpenStreetMap",
    "opens %(when)s": "atidaroma %(when)s",
    "or near a place or address": "arba šalia vietovės ar adreso",
    "private": "privatus",
    "public": "viešasis",
    "removed": "pašalinta",
    "status unknown": "būsena nežinoma",
    "unknown": "nežinomas",
    "yes": "taip",
    "your location": "jūsų vietos",
}


def main() -> int:
    from pathlib import Path

    from babel.messages.pofile import read_po, write_po

    po = Path(__file__).resolve().parent / "lt" / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as f:
        catalog = read_po(f, locale="lt")
    missing = []
    for message in catalog:
        if not message.id:
            continue
        text = LT.get(message.id)
        if text is None:
            missing.append(message.id)
        elif not message.string:
            message.string = text
            message.flags.discard("fuzzy")
    with po.open("wb") as f:
        write_po(f, catalog, width=100, sort_output=True)
    for m in missing:
        print("untranslated:", m)
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
