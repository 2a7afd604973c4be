"""Lithuanian for issue 12's defects: plurals on the map, the local base layer, the credits, error
pages, the /changes page in words, the /datasets texts and the audit's core texts."""

LT = {
    # the map
    "%(n)s place in view": ("Matomoje srityje %(n)s vieta", "Matomoje srityje %(n)s vietos",
                            "Matomoje srityje %(n)s vietų"),
    "The base map is unavailable: showing municipality and eldership outlines instead.":
        "Pagrindinis žemėlapis nepasiekiamas: vietoj jo rodomos savivaldybių ir seniūnijų ribos.",
    "Map credits": "Žemėlapio šaltiniai",
    '© <a href="%(url)s">OpenStreetMap</a> contributors': '© <a href="%(url)s">OpenStreetMap</a> bendruomenė',
    '© <a href="%(url)s">OpenStreetMap</a> contributors (ODbL)':
        '© <a href="%(url)s">OpenStreetMap</a> bendruomenė (ODbL)',
    "n/a": "n/d",  # as the audit note explains it ("n/d: nežinoma ...")
    "no data": "nėra duomenų",
    # error pages
    "Something in the address is not right": "Adrese kažkas negerai",
    "A value in the address of this page could not be used. Check it, or start again from the map.":
        "Šio puslapio adreso reikšmės panaudoti nepavyko. Patikrinkite ją arba pradėkite iš naujo nuo žemėlapio.",
    "Not found": "Nerasta",
    "What this address points to does not exist (any more).": "To, į ką rodo šis adresas, nėra (arba nebėra).",
    "The data could not be read": "Duomenų nepavyko perskaityti",
    "A file or value sent to Atvira could not be read.": "Atvirai atsiųsto failo ar reikšmės nepavyko perskaityti.",
    "A source did not answer": "Šaltinis neatsakė",
    "A data source Atvira depends on did not answer. Try again later.":
        "Duomenų šaltinis, kuriuo remiasi Atvira, neatsakė. Bandykite vėliau.",
    "The store is unavailable": "Duomenų saugykla nepasiekiama",
    "The data store cannot be used right now. Try again later.":
        "Duomenų saugyklos dabar naudoti negalima. Bandykite vėliau.",
    "Something went wrong": "Kažkas nepavyko",
    "Atvira could not show this page.": "Atvira negalėjo parodyti šio puslapio.",
    "Technical detail (in English):": "Techninė informacija (anglų kalba):",
    "There is no page at this address.": "Šiuo adresu puslapio nėra.",
    "Error %(status)s": "Klaida %(status)s",
    # /changes in words
    "Changes from %(since)s to %(until)s.": "Pakeitimai nuo %(since)s iki %(until)s.",
    "snapshot %(id)s (%(when)s)": "momentinė kopija %(id)s (%(when)s)",
    "the beginning": "pradžios",
    "now": "dabar",
    "Name": "Pavadinimas",
    "Latitude": "Platuma",
    "Longitude": "Ilguma",
    "Features": "Savybės",
    "Status": "Būsena",
    "Other details": "Kita informacija",
    "Id at the source": "Identifikatorius šaltinyje",
    "places": "vietų",
    "children enrolled": "įrašyta vaikų",
    "free places": "laisvų vietų",
    "waiting list": "laukiančiųjų eilė",
    "languages": "kalbos",
    "age from": "amžius nuo",
    "age to": "amžius iki",
    "groups": "grupės",
    "eldership": "seniūnija",
    "website": "svetainė",
    "phone": "telefonas",
    # /datasets
    "in English": "anglų kalba",
    "CSV (UTF-8 with BOM, RFC 4180), one row per facility with latitude/longitude columns":
        "CSV (UTF-8 su BOM, RFC 4180), viena eilutė kiekvienai vietai, su platumos ir ilgumos stulpeliais",
    "GeoJSON FeatureCollection (RFC 7946, WGS84 lon/lat)": "GeoJSON FeatureCollection (RFC 7946, WGS84 ilguma/platuma)",
    "OGC GeoPackage, layer `facilities`, EPSG:4326, with an R*Tree spatial index":
        "OGC GeoPackage, sluoksnis `facilities`, EPSG:4326, su R*Tree erdviniu indeksu",
    "The whole SQLite store (a consistent copy); with filters, one flat `facilities` table":
        "Visa SQLite duomenų saugykla (vientisa kopija); su filtrais – viena plokščia lentelė `facilities`",
    "Stable public id (from the first source record that described the place)":
        "Pastovus viešas identifikatorius (iš pirmojo šaltinio įrašo, aprašiusio vietą)",
    "Name as the source gives it": "Pavadinimas, kaip jį pateikia šaltinis",
    "Category slugs, separated by ';'": "Kategorijų kodai, atskirti „;“",
    "WGS84 latitude (EPSG:4326)": "WGS84 platuma (EPSG:4326)",
    "WGS84 longitude (EPSG:4326)": "WGS84 ilguma (EPSG:4326)",
    "Street address": "Gatvės adresas",
    "Municipality code (the areas' code)": "Savivaldybės kodas (teritorijų kodas)",
    "Municipality name": "Savivaldybės pavadinimas",
    "Eldership (seniūnija) code": "Seniūnijos kodas",
    "Eldership name": "Seniūnijos pavadinimas",
    "Who runs the place": "Kas valdo vietą",
    "Operator sector: public, private, civic or unknown":
        "Valdytojo sektorius: public (viešasis), private (privatus), civic (NVO) arba unknown (nežinomas)",
    "active, closed, unknown or removed":
        "active (veikia), closed (uždaryta), unknown (nežinoma) arba removed (pašalinta)",
    "Opening hours in OpenStreetMap opening_hours syntax": "Darbo laikas OpenStreetMap opening_hours sintakse",
    "Every source record describing the place, as source:id, separated by '; '":
        "Visi vietą aprašantys šaltinių įrašai, kaip šaltinis:id, atskirti „; “",
    "The licences of those source records, separated by '; '": "Tų šaltinių įrašų licencijos, atskirtos „; “",
    "When the facts were last checked (as the source gives it)":
        "Kada duomenys paskutinį kartą patikrinti (kaip nurodo šaltinis)",
    "When the source record was fetched (UTC)": "Kada šaltinio įrašas parsiųstas (UTC)",
    "When the store last changed this row (UTC)": "Kada saugykla paskutinį kartą pakeitė šią eilutę (UTC)",
    "%(feature)s: yes, limited or no; empty means unknown":
        "%(feature)s: yes (taip), limited (ribotai) arba no (ne); tuščia – nežinoma",
    # the audit's core texts (indicators, checklist points and rules, data-quality problems)
    "Share of residents in elderships with none": "Gyventojų dalis seniūnijose, kuriose nėra nė vienos",
    "Share of elderships with none": "Seniūnijų, kuriose nėra nė vienos, dalis",
    "Childcare places per enrolled child": "Vietų ikimokyklinėse įstaigose vienam įrašytam vaikui",
    "Institutions' checklist score (yes / known points)": "Įstaigų kontrolinio sąrašo balas (taip / žinomi punktai)",
    "Share of facilities without opening hours": "Vietų be darbo laiko dalis",
    "Open to anyone during published hours": "Atvira visiems skelbiamu darbo laiku",
    "feature open_foyer: yes; limited or no counts as no":
        "savybė open_foyer: taip; „ribotai“ arba „ne“ laikoma „ne“",
    "Opening hours published": "Skelbiamas darbo laikas",
    "yes when the record carries opening hours; otherwise unknown (a source that does not carry hours says"
    " nothing about whether the institution publishes them)":
        "taip, kai įraše yra darbo laikas; kitaip nežinoma (šaltinis be darbo laiko nieko nepasako apie tai,"
        " ar įstaiga jį skelbia)",
    "Free public toilet": "Nemokamas viešas tualetas",
    "features toilet and free: yes when both are yes; no when the toilet is no or limited, or the toilet is"
    " yes but not free; otherwise unknown":
        "savybės toilet ir free: taip, kai abi „taip“; ne, kai tualeto nėra ar jis ribotas, arba tualetas yra,"
        " bet mokamas; kitaip nežinoma",
    "Baby changing table": "Kūdikių vystymo stalas",
    "feature changing_table": "savybė changing_table",
    "feature feeding_room": "savybė feeding_room",
    "Play corner": "Žaidimų kampelis",
    "feature play_corner": "savybė play_corner",
    "Place to sit or café": "Vieta prisėsti arba kavinė",
    "features seating and cafe: yes when either is yes; no when both are known and neither is yes;"
    " otherwise unknown":
        "savybės seating ir cafe: taip, kai bent viena „taip“; ne, kai abi žinomos ir nė viena ne „taip“;"
        " kitaip nežinoma",
    "feature wheelchair": "savybė wheelchair",
    "No opening hours": "Nėra darbo laiko",
    "No feature known": "Nežinoma nė viena savybė",
    "Not verified in 12 months": "Nepatikrinta per 12 mėnesių",
    "Only one source": "Tik vienas šaltinis",
    "Unresolved conflict between sources": "Neišspręstas šaltinių prieštaravimas",
    # Leaflet's controls
    "Zoom in": "Priartinti",
    "Zoom out": "Nutolinti",
    "Leaflet, the map library": "Leaflet – žemėlapių biblioteka",
    # licences and credits
    "Open Data Commons Open Database License 1.0": "Open Data Commons atvirųjų duomenų bazių licencija 1.0 (ODbL)",
    "Creative Commons Attribution 4.0": "Creative Commons Priskyrimas 4.0 (CC BY 4.0)",
    "Creative Commons Zero 1.0": "Creative Commons Zero 1.0 (CC0, atsisakymas autorių teisių)",
    "the publisher named by the source": "šaltinio nurodytas leidėjas",
    "© OpenStreetMap contributors, https://www.openstreetmap.org/copyright":
        "© OpenStreetMap bendruomenė, https://www.openstreetmap.org/copyright",
    "not stated": "nenurodyta",
    "Vilnius city open data (licence not stated)": "Vilniaus miesto atvirieji duomenys (licencija nenurodyta)",
    "Municipality code": "Savivaldybės kodas",
    "Eldership code": "Seniūnijos kodas",
    # the /api page's endpoint summaries
    "Facilities as a GeoJSON FeatureCollection (RFC 7946), keyset-paged":
        "Vietos kaip GeoJSON FeatureCollection (RFC 7946), puslapiais pagal raktą",
    "A typed place or address (area names, then facility addresses and names) for near-me":
        "Įvesta vietovė ar adresas (teritorijų pavadinimai, tada vietų adresai ir pavadinimai) paieškai „šalia“",
    "Counts on a 64-px Web Mercator grid for a view too full to draw point by point":
        "Skaičiai 64 px Web Mercator tinklelyje, kai vaizde per daug vietų, kad būtų galima piešti po vieną",
    "Dated snapshots of the whole store, newest first, with download links":
        "Visos saugyklos datuotos momentinės kopijos, naujausios pirmos, su atsisiuntimo nuorodomis",
    "Every matching facility as csv (the same filters as /api/facilities; never paged)":
        "Visos atitinkančios vietos CSV formatu (tie patys filtrai kaip /api/facilities; be puslapių)",
    "Every matching facility as geojson (the same filters as /api/facilities; never paged)":
        "Visos atitinkančios vietos GeoJSON formatu (tie patys filtrai kaip /api/facilities; be puslapių)",
    "Every matching facility as gpkg (the same filters as /api/facilities; never paged)":
        "Visos atitinkančios vietos GeoPackage formatu (tie patys filtrai kaip /api/facilities; be puslapių)",
    "Every matching facility as sqlite (the same filters as /api/facilities; never paged)":
        "Visos atitinkančios vietos SQLite formatu (tie patys filtrai kaip /api/facilities; be puslapių)",
    "Municipalities and elderships with population and facility counts":
        "Savivaldybės ir seniūnijos su gyventojų ir vietų skaičiais",
    "One facility as a GeoJSON Feature, with every source record and its licence":
        "Viena vieta kaip GeoJSON Feature su visais šaltinių įrašais ir jų licencijomis",
    "One municipality: categories against median and county, elderships, gaps, checklist, data quality":
        "Viena savivaldybė: kategorijos, palyginti su mediana ir apskritimi, seniūnijos, spragos, kontrolinis sąrašas,"
        " duomenų kokybė",
    "Simplified area outlines as GeoJSON (the map's local base layer when tiles fail)":
        "Supaprastintos teritorijų ribos GeoJSON formatu (vietinis žemėlapio pagrindas, kai neįkeliamos plytelės)",
    "The openness audit: national totals and the 60 municipalities for one category":
        "Atvirumo auditas: šalies sumos ir 60 savivaldybių vienai kategorijai",
    "This document": "Šis dokumentas",
    "What was added, changed (field by field, old and new) and removed between two snapshots or dates":
        "Kas pridėta, pakeista (laukas po lauko, sena ir nauja reikšmė) ir pašalinta tarp dviejų kopijų ar datų",
}
