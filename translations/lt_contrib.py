"""Lithuanian for contributions: the forms, the moderation queue, editors' edits and uploads (issue 11)."""

LT = {
    "A feature is wrong": "Neteisinga savybė",
    "Add a place": "Pridėti vietą",
    "All municipalities.": "Visos savivaldybės.",
    "Approve": "Patvirtinti",
    "Approved: %(id)s. It is now published.": "Patvirtinta: %(id)s. Dabar paskelbta.",
    "Baby changing table": "Vystymo stalas",
    "Back to the place": "Grįžti į vietą",
    "Back to the queue": "Grįžti į eilę",
    "Choose…": "Pasirinkite…",
    "Chosen place": "Pasirinkta vieta",
    "Closed for good": "Uždaryta visam laikui",
    "Current and proposed values": "Dabartinės ir siūlomos reikšmės",
    "Each source's value is kept; the one shown on this page is marked. A correction approved by an editor "
    "(source contributions) is shown until that source changes its own value.":
        "Saugoma kiekvieno šaltinio reikšmė; šiame puslapyje rodoma pažymėta. Redaktoriaus patvirtintas "
        "pataisymas (šaltinis contributions) rodomas, kol tas šaltinis pakeičia savo reikšmę.",
    "Edit": "Redaguoti",
    "Edit (editors)": "Redaguoti (redaktoriams)",
    "Features and the openness checklist": "Savybės ir atvirumo kontrolinis sąrašas",
    "File (.csv or .geojson)": "Failas (.csv arba .geojson)",
    "I agree that my contribution is published under the dataset's open licence (%(licence)s).":
        "Sutinku, kad mano indėlis būtų paskelbtas pagal atvirą duomenų rinkinio licenciją (%(licence)s).",
    "It is still here": "Vieta tebėra",
    "Know a baby room, a day centre or a play corner that is not on the map? Tell us. An editor of the "
    "municipality checks it before it is published.":
        "Žinote motinos ir vaiko kambarį, dienos centrą ar žaidimų kampelį, kurio nėra žemėlapyje? Praneškite. "
        "Savivaldybės redaktorius jį patikrins prieš paskelbiant.",
    "Latitude": "Platuma",
    "Longitude": "Ilguma",
    "Map: tap to choose the place": "Žemėlapis: bakstelėkite, kad pasirinktumėte vietą",
    "Moderation": "Moderavimas",
    "Moved elsewhere": "Persikėlė kitur",
    "Name": "Pavadinimas",
    "New place": "Nauja vieta",
    "Not accessible": "Nepritaikyta",
    "Note (optional)": "Pastaba (neprivaloma)",
    "Note:": "Pastaba:",
    "Nothing is waiting.": "Nieko nelaukia.",
    "Now": "Dabar",
    "Older": "Senesni",
    "One tap to confirm the place is there as described (published under %(licence)s).":
        "Vienu bakstelėjimu patvirtinkite, kad vieta tebėra tokia, kaip aprašyta (skelbiama pagal %(licence)s).",
    "One tap: the place is there as described. Published under %(licence)s.":
        "Vienu bakstelėjimu: vieta tebėra tokia, kaip aprašyta. Skelbiama pagal %(licence)s.",
    "Only so an editor can ask you something. Never published; deleted after %(days)s days.":
        "Tik tam, kad redaktorius galėtų jūsų ko nors paklausti. Niekada neskelbiamas; ištrinamas po %(days)s d.",
    "Open to anyone during published hours": "Atvira visiems skelbiamomis valandomis",
    "Opening hours (optional)": "Darbo laikas (neprivaloma)",
    "Please correct:": "Pataisykite:",
    "Position": "Vieta",
    "Position chosen: %(lat)s, %(lon)s": "Pasirinkta vieta: %(lat)s, %(lon)s",
    "Pram access": "Patogu su vežimėliu",
    "Problem report": "Pranešimas apie klaidą",
    "Proposed": "Siūloma",
    "Reason for rejecting": "Atmetimo priežastis",
    "Refused, nothing was written:": "Atmesta, niekas neįrašyta:",
    "Reject": "Atmesti",
    "Rejected: %(id)s.": "Atmesta: %(id)s.",
    "Save": "Išsaugoti",
    "Send for review": "Siųsti peržiūrai",
    "Status": "Būsena",
    "Still here": "Tebėra",
    "Suggestions waiting for review": "Pasiūlymai, laukiantys peržiūros",
    "Tap the map where the place is, or type its coordinates.":
        "Bakstelėkite žemėlapyje, kur yra vieta, arba įveskite jos koordinates.",
    "Thank you": "Ačiū",
    "The file is checked whole: every problem is listed and nothing is written until the file has none. "
    "Every row must lie in the municipality you choose.":
        "Failas tikrinamas visas: išvardijamos visos klaidos ir niekas neįrašoma, kol jų yra. "
        "Kiekviena eilutė turi būti jūsų pasirinktoje savivaldybėje.",
    "The right features (for a wrong feature or access)": "Teisingos savybės (jei savybė ar prieinamumas neteisingi)",
    "The right opening hours (for wrong hours)": "Teisingas darbo laikas (jei jis neteisingas)",
    "The template and its columns:": "Šablonas ir jo stulpeliai:",
    "Unknown is not no: answer only what you know.": "Nežinoma nėra „ne“: atsakykite tik tai, ką žinote.",
    "Upload": "Įkelti",
    "Upload the municipal template": "Įkelti savivaldybės šabloną",
    "What is there?": "Kas ten yra?",
    "What is wrong?": "Kas negerai?",
    "Where is it?": "Kur tai?",
    "Where it is now (for a move)": "Kur vieta yra dabar (jei persikėlė)",
    "Wrong opening hours": "Neteisingas darbo laikas",
    "Your area:": "Jūsų sritis:",
    "Your changes are published at once, attributed to your role, and listed on the changes page.":
        "Jūsų pakeitimai paskelbiami iš karto, priskiriami jūsų vaidmeniui ir rodomi pakeitimų puslapyje.",
    "Your contribution (number %(id)s) is waiting for an editor of the municipality. Nothing is published "
    "until it is approved.":
        "Jūsų indėlis (nr. %(id)s) laukia savivaldybės redaktoriaus. Niekas neskelbiama, kol jis nepatvirtintas.",
    "Your email (optional)": "Jūsų el. paštas (neprivaloma)",
    "by": "atliko",
    "choose a file to upload": "pasirinkite failą įkėlimui",
    "contact given": "nurodytas kontaktas",
    "expected a whole number": "tikėtasi sveikojo skaičiaus",
    "no change": "nekeisti",
    "unchanged": "nekeičiama",
    "upload the template as .csv or .geojson": "įkelkite šabloną kaip .csv arba .geojson",
    "uploads are not enabled on this server": "šiame serveryje įkėlimai neįjungti",
}
