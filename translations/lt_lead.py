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
}
