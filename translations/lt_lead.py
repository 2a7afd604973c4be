"""Lithuanian for strings the lead added while merging (error pages for sign-in, permissions,
replays and rate limits)."""

LT = {
    "Sign in needed": "Reikia prisijungti",
    "This page is for municipal editors. Sign in, or go back to the map.":
        "Šis puslapis skirtas savivaldybių redaktoriams. Prisijunkite arba grįžkite į žemėlapį.",
    "Not allowed": "Neleidžiama",
    "Your account may not do this here.": "Jūsų paskyra čia to daryti negali.",
    "Already done": "Jau atlikta",
    "Someone has already acted on this. Reload the page to see where it stands.":
        "Kažkas tai jau atliko. Perkraukite puslapį ir pamatysite, kaip yra dabar.",
    "Too many requests": "Per daug užklausų",
    "Please wait a little before trying again.": "Palaukite šiek tiek ir bandykite dar kartą.",
    "The checklist applies to the open public institutions only: town halls and eldership offices, libraries, community centres, culture centres and state institutions (ministries, agencies, courts, tax and social-insurance offices), whose operator is in the public sector or not known. Kindergartens, childcare, day centres and schools serve enrolled children, pupils or clients, so they are not scored; private places are not either. Each institution is checked against the points below, in the spirit of an opera house open to all all day.":
        "Kontrolinis sąrašas taikomas tik atviroms viešosioms įstaigoms: savivaldybių ir seniūnijų pastatams, "
        "bibliotekoms, bendruomenės ir kultūros centrams bei valstybės institucijoms (ministerijoms, agentūroms, "
        "teismams, mokesčių ir socialinio draudimo įstaigoms), kurių valdytojas yra viešasis sektorius arba "
        "nežinomas. Darželiai, vaikų priežiūra, dienos centrai ir mokyklos aptarnauja įrašytus vaikus, mokinius ar "
        "klientus, todėl nevertinami; privačios vietos taip pat. Kiekviena įstaiga tikrinama pagal toliau pateiktus "
        "punktus – operos teatro, visą dieną atviro visiems, dvasia.",
}
