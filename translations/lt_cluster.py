"""Lithuanian for the social-cluster view, the sector rules and the two new categories (issue 15)."""

LT = {
    "School": "Mokykla",
    "All kinds": "Visos rūšys",
    "decided by": "nustatė",
    "State institution": "Valstybės įstaiga",
    "Who provides what": "Kas ką teikia",
    "who provides what": "kas ką teikia",
    "Who provides what: the social-cluster view": "Kas ką teikia: socialinio klasterio vaizdas",
    "Who provides what: the public, private and civic sectors": "Kas ką teikia: viešasis, privatus ir nevyriausybinis sektoriai",
    "How many day centres, play rooms, kindergartens, schools or baby rooms are there in a municipality or an eldership, who runs them, and who could work together to provide more.":
        "Kiek savivaldybėje ar seniūnijoje yra dienos centrų, žaidimų kambarių, darželių, mokyklų ar motinos ir vaiko kambarių, kas juos valdo ir kas galėtų bendradarbiauti, kad jų būtų daugiau.",
    "The cluster figures have not been computed for this store yet: run `atvira audit --recompute` (they also refresh after every ingest).":
        "Klasterio rodikliai šiai duomenų saugyklai dar neapskaičiuoti: paleiskite `atvira audit --recompute` (jie atnaujinami ir po kiekvieno duomenų įkėlimo).",
    "The pilot municipalities": "Bandomosios savivaldybės",
    "%(n)s facilities; the sector is known for %(known)s of them: public %(public)s, private %(private)s, civic %(civic)s. Run outside the public sector: %(share)s of those whose sector is known.":
        "Vietų: %(n)s; sektorius žinomas %(known)s iš jų: viešasis %(public)s, privatus %(private)s, nevyriausybinis %(civic)s. Ne viešojo sektoriaus valdomos: %(share)s tų, kurių sektorius žinomas.",
    "Facilities whose sources disagree on the sector: %(n)s.": "Vietų, kurių šaltiniai nesutaria dėl sektoriaus: %(n)s.",
    "Share of each sector per kind (of the facilities whose sector is known)":
        "Kiekvieno sektoriaus dalis pagal rūšį (iš vietų, kurių sektorius žinomas)",
    "Kind": "Rūšis",
    "Facilities": "Vietos",
    "Sector known": "Sektorius žinomas",
    "Share of facilities run outside the public sector": "Ne viešojo sektoriaus valdomų vietų dalis",
    "Private and civic facilities divided by the facilities whose sector is known; grey: no facility with a known sector.":
        "Privačios ir nevyriausybinės vietos, padalytos iš vietų, kurių sektorius žinomas; pilka: nėra nė vienos vietos su žinomu sektoriumi.",
    "The municipalities": "Savivaldybės",
    "Pilot municipalities first. Shares are of the facilities whose sector is known; unknown is counted apart and never as a sector.":
        "Pirmiausia bandomosios savivaldybės. Dalys skaičiuojamos iš vietų, kurių sektorius žinomas; nežinomas skaičiuojamas atskirai ir niekada nelaikomas sektoriumi.",
    "Municipality": "Savivaldybė",
    "Outside the public sector": "Ne viešasis sektorius",
    "pilot": "bandomoji",
    "with each municipality's counts per kind and sector": "su kiekvienos savivaldybės skaičiais pagal rūšį ir sektorių",
    "How the sector is decided": "Kaip nustatomas sektorius",
    "Each place keeps the finer value its source gave (government, municipal, private, NGO, community, religious) and the rule that decided it. The first rule that gives a value decides; when rules or sources disagree, the place is marked as a conflict.":
        "Kiekviena vieta išlaiko tikslesnę šaltinio pateiktą reikšmę (valstybinis, savivaldybės, privatus, NVO, bendruomenės, religinis) ir taisyklę, kuri ją nulėmė. Lemia pirmoji reikšmę duodanti taisyklė; kai taisyklės ar šaltiniai nesutaria, vieta pažymima kaip prieštaravimas.",
    "a register column mapped by the source's mapping file": "registro stulpelis, susietas šaltinio susiejimo faile",
    "the mapping's own name prefixes": "susiejimo failo pavadinimų priešdėliai",
    "OpenStreetMap operator:type": "OpenStreetMap operator:type",
    "a Lithuanian legal form or institution word in the operator, then in the name (VšĮ, UAB, AB, MB, IĮ, asociacija, parapija, savivaldybė, biudžetinė įstaiga, labdaros ir paramos fondas ...)":
        "lietuviška teisinė forma ar įstaigos žodis valdytojo, paskui pavadinimo tekste (VšĮ, UAB, AB, MB, IĮ, asociacija, parapija, savivaldybė, biudžetinė įstaiga, labdaros ir paramos fondas ...)",
    "the register's default for every row": "registro numatytoji reikšmė visoms eilutėms",
    "Otherwise the sector is unknown. The full table is in docs/sectors.md.":
        "Kitaip sektorius nežinomas. Visa lentelė – docs/sectors.md.",
    "All municipalities": "Visos savivaldybės",
    "Download CSV": "Atsisiųsti CSV",
    "Kind and sector": "Rūšis ir sektorius",
    "Total": "Iš viso",
    "What each sector provides that the others do not": "Ką kiekvienas sektorius teikia, ko neteikia kiti",
    "nothing the others lack": "nieko, ko neturėtų kiti",
    "Places whose sector is unknown are not counted for any sector.": "Vietos, kurių sektorius nežinomas, nepriskiriamos jokiam sektoriui.",
    "Partner suggestions": "Galimi partneriai",
    "For each kind a sector does not provide here: the nearest places of the other sectors that have it, and those that could host it. Distances are geodesic, from a point inside the area.":
        "Kiekvienai rūšiai, kurios čia neteikia kuris nors sektorius: artimiausios kitų sektorių vietos, kurios ją turi, ir tos, kurios galėtų ją priimti. Atstumai geodeziniai, nuo taško teritorijos viduje.",
    "No %(kind)s in %(area)s in any sector.": "%(area)s: jokiame sektoriuje nėra – %(kind)s.",
    "No %(sector)s %(kind)s in %(area)s.": "%(area)s: nėra – %(kind)s (%(sector)s sektorius).",
    "Nearest that have it:": "Artimiausios, kurios tai turi:",
    "Nearest that could host it:": "Artimiausios, kurios galėtų tai priimti:",
    "%(km)s km": "%(km)s km",
    "sources": "šaltiniai",
    "No suggestion: every sector provides every kind here, or no other sector has any nearby.":
        "Pasiūlymų nėra: čia kiekvienas sektorius teikia kiekvieną rūšį arba kiti sektoriai netoliese nieko neturi.",
    "Map of the actors by sector": "Veikėjų žemėlapis pagal sektorių",
    "The actors": "Veikėjai",
    "sources disagree on the sector": "šaltiniai nesutaria dėl sektoriaus",
    "and %(n)s more": "ir dar %(n)s",
    "No facility in this area yet.": "Šioje teritorijoje kol kas nėra nė vienos vietos.",
    "Elderships": "Seniūnijos",
    "Eldership": "Seniūnija",
    "Public institutions are facilities whose operator is in the public sector, and town halls, eldership offices, libraries, community and culture centres and state institutions whose sector is not known; schools are not (they are open to their pupils, not to anyone). Each is checked against the points below, in the spirit of an opera house open to all all day.":
        "Viešosios įstaigos – tai vietos, kurių valdytojas priklauso viešajam sektoriui, taip pat savivaldybės, seniūnijos, bibliotekos, bendruomenių ir kultūros centrai bei valstybės įstaigos, kurių sektorius nežinomas; mokyklos – ne (jos atviros savo mokiniams, o ne kiekvienam). Kiekviena tikrinama pagal toliau pateiktus punktus – operos teatro, atviro visiems visą dieną, dvasia.",
}
