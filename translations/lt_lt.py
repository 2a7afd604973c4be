"""Lithuanian for the strings of issue 12, part "Lithuania first" (search by need and place)."""

LT = {
    "Search by need, place or name": "Paieška pagal poreikį, vietą ar pavadinimą",
    "e.g. kindergarten Antakalnis": "pvz., darželis Antakalnis",
    "A need (kindergarten, toilet, changing table), a place, or a name; in Lithuanian or English.":
        "Poreikis (darželis, tualetas, vystymo stalas), vieta ar pavadinimas; lietuviškai arba angliškai.",
    "Type a few letters: suggestions appear as you type (arrow keys to choose).":
        "Įveskite kelias raides: pasiūlymai atsiras rašant (pasirinkite rodyklių klavišais).",
    "Understood as: %(what)s": "Supratome taip: %(what)s",
    "name “%(w)s”": "pavadinimas „%(w)s“",
    "municipality": "savivaldybė",
    "eldership": "seniūnija",
    "city": "miestas",
    "town": "miestelis",
    "suburb": "mikrorajonas",
    "quarter": "kvartalas",
    "neighbourhood": "apylinkė",
    "village": "kaimas",
    "hamlet": "viensėdis",
    "locality": "vietovė",
    "isolated dwelling": "vienkiemis",
    "island": "sala",
    "address": "adresas",
}
