"""Lithuanian for the honest audit's strings (issue 12: ranks, the checklist's threshold and scope,
verification per source) and the export recipe on /datasets and /api."""

LT = {
    "%(rank)s of %(n)s": "%(rank)s iš %(n)s",
    "Rank": "Vieta",
    "too few known points": "per mažai žinomų punktų",
    "Public institutions: %(n)s; checklist score: too few known points (%(coverage)s of points known; a score needs at least %(min)s); %(all)s meet every point.":
        "Viešųjų įstaigų: %(n)s; kontrolinio sąrašo įvertinimas: per mažai žinomų punktų (žinoma %(coverage)s punktų; "
        "įvertinimui reikia bent %(min)s); visus punktus atitinka: %(all)s.",
    "%(n)s public institutions; score: too few known points (%(known)s of %(total)s known, at least %(needed)s needed); %(all)s meet every point.":
        "Viešųjų įstaigų: %(n)s; įvertinimas: per mažai žinomų punktų (žinoma %(known)s iš %(total)s, reikia bent "
        "%(needed)s); visus punktus atitinka: %(all)s.",
    "No public institution of the checklist's categories here.":
        "Čia nėra kontrolinio sąrašo kategorijų viešųjų įstaigų.",
    "n/a: not known (no population, no facility with a published capacity, no public institution). Rank: by facilities of this category per 10,000 residents, 1 = most; equal figures share a rank (1, 2, 2, 4); a municipality with none is not ranked (—), so \"of N\" counts only the municipalities that have at least one.":
        "n/d: nežinoma (nėra gyventojų skaičiaus, nė viena įstaiga nepaskelbė vietų skaičiaus, nėra viešųjų įstaigų). "
        "Vieta: pagal šios kategorijos vietų skaičių 10 000 gyventojų, 1 = daugiausia; vienodi skaičiai dalijasi "
        "vieta (1, 2, 2, 4); savivaldybė, kurioje nėra nė vienos, nereitinguojama (—), todėl „iš N“ skaičiuoja tik "
        "savivaldybes, kuriose yra bent viena.",
    "Checklist score: shown only when at least %(min)s of the applicable points are known; otherwise \"too few known points\".":
        "Kontrolinio sąrašo įvertinimas rodomas tik tada, kai žinoma bent %(min)s taikomų punktų; kitaip – "
        "„per mažai žinomų punktų“.",
    "The checklist applies to the open public institutions only: town halls and eldership offices, libraries, community centres and culture centres, whose operator is in the public sector or not known. Kindergartens, childcare and day centres serve enrolled children or clients, so they are not scored; private places are not either. Each institution is checked against the points below, in the spirit of an opera house open to all all day.":
        "Kontrolinis sąrašas taikomas tik atviroms viešosioms įstaigoms: savivaldybių ir seniūnijų pastatams, "
        "bibliotekoms, bendruomenės ir kultūros centrams, kurių valdytojas yra viešasis sektorius arba nežinomas. "
        "Darželiai, vaikų priežiūra ir dienos centrai aptarnauja įrašytus vaikus ar klientus, todėl nevertinami; "
        "privačios vietos taip pat. Kiekviena įstaiga tikrinama pagal toliau pateiktus punktus – operos teatro, "
        "visą dieną atviro visiems, dvasia.",
    "A score is shown only when at least %(share)s of the applicable points are known (an institution: %(n)s of its %(total)s points; a municipality: that share of all its institutions' points); otherwise the page says \"too few known points\", because a score over a handful of known points says little.":
        "Įvertinimas rodomas tik tada, kai žinoma bent %(share)s taikomų punktų (įstaigai – %(n)s iš %(total)s "
        "punktų; savivaldybei – tokia visų jos įstaigų punktų dalis); kitaip puslapyje rašoma „per mažai žinomų "
        "punktų“, nes įvertinimas iš kelių žinomų punktų mažai ką pasako.",
    "Of %(n)s facilities. Verified means: listed by a register on the date of its last run (the run counts as verification), or an OpenStreetMap check_date / survey:date, or a confirmation; a facility never verified counts as not verified in 12 months; \"only one source\" means one live source record.":
        "Iš %(n)s vietų. Patikrinta reiškia: registras ją išvardijo paskutinio savo nuskaitymo dieną (nuskaitymas "
        "laikomas patikrinimu), arba OpenStreetMap check_date / survey:date, arba patvirtinimas; niekada "
        "netikrinta vieta laikoma netikrinta per 12 mėnesių; „tik vienas šaltinis“ reiškia vieną galiojantį "
        "šaltinio įrašą.",
    "Read the CSV with the column types of datapackage.json: codes such as municipality_code stay text (\"13\", not 13.0) and capacity, children, free places and waiting list are whole numbers with gaps (Int64), as in /api/facilities/<id>. Plain pd.read_csv guesses the types from the values and turns codes into numbers.":
        "Skaitykite CSV su datapackage.json stulpelių tipais: kodai, pvz., municipality_code, lieka tekstas "
        "(„13“, ne 13.0), o vietų, vaikų, laisvų vietų ir laukiančiųjų skaičiai – sveikieji skaičiai su "
        "spragomis (Int64), kaip /api/facilities/<id>. Paprastas pd.read_csv tipus spėja iš reikšmių ir kodus "
        "paverčia skaičiais.",
    "Reading the CSV with pandas": "CSV skaitymas su pandas",
    "The CSV is plain RFC 4180 text: a CSV file cannot say that \"13\" is a code and not a number, so the types travel beside it in datapackage.json. Read it with those types and municipality_code and eldership_code stay text, and the integer columns (capacity, children, free places, waiting list, ages) are nullable integers (Int64), equal to the values of /api/facilities/<id>:":
        "CSV yra paprastas RFC 4180 tekstas: CSV failas negali pasakyti, kad „13“ yra kodas, o ne skaičius, todėl "
        "tipai pateikiami šalia, datapackage.json faile. Skaitykite su šiais tipais – municipality_code ir "
        "eldership_code liks tekstas, o sveikųjų skaičių stulpeliai (vietos, vaikai, laisvos vietos, laukiantieji, "
        "amžius) bus sveikieji skaičiai su galimomis spragomis (Int64), lygūs /api/facilities/<id> reikšmėms:",
    "The GeoJSON and the GeoPackage carry the same columns (in GeoJSON the lists are arrays, and a place with none of the register fields — capacity to baby_room_basis — leaves those keys out). The GeoPackage stores the codes as text and the integer columns as integers; geopandas reads an integer column with gaps as float64 (numpy has no missing integer), so apply the same types:":
        "GeoJSON ir GeoPackage turi tuos pačius stulpelius (GeoJSON sąrašai yra masyvai, o vieta be jokių registro "
        "laukų – nuo capacity iki baby_room_basis – šių raktų neturi). GeoPackage kodus saugo "
        "kaip tekstą, o sveikųjų skaičių stulpelius – kaip sveikuosius skaičius; geopandas sveikųjų skaičių "
        "stulpelį su spragomis nuskaito kaip float64 (numpy neturi trūkstamo sveikojo skaičiaus), todėl "
        "pritaikykite tuos pačius tipus:",
}
