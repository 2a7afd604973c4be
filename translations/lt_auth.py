"""Lithuanian for sign-in, sessions, CSRF and rate-limit messages (issue 11, accounts)."""

LT = {
    "Sign in": "Prisijungti",
    "Sign out": "Atsijungti",
    "Login": "Prisijungimo vardas",
    "Password": "Slaptažodis",
    "For municipal editors and administrators. Accounts are created by an administrator; there is no sign-up.":
        "Savivaldybių redaktoriams ir administratoriams. Paskyras kuria administratorius; "
        "užsiregistruoti patiems negalima.",
    "Your session has expired. Please sign in again.": "Jūsų sesija baigėsi. Prisijunkite iš naujo.",
    "You need to sign in.": "Reikia prisijungti.",
    "Wrong login or password.": "Neteisingas prisijungimo vardas arba slaptažodis.",
    "This account is disabled. Ask an administrator.": "Ši paskyra išjungta. Kreipkitės į administratorių.",
    "Too many wrong passwords: this account is locked for a while. Try again later or ask an administrator to reset it.":
        "Per daug kartų įvestas neteisingas slaptažodis: paskyra kuriam laikui užrakinta. "
        "Bandykite vėliau arba paprašykite administratoriaus ją atstatyti.",
    "You may not edit %(what)s: it is outside your municipalities.":
        "Negalite redaguoti %(what)s: tai ne jūsų savivaldybė.",
    "this": "šio įrašo",
    "Only an administrator may do this.": "Tai gali atlikti tik administratorius.",
    "The form has expired. Reload the page and send it again.":
        "Formos galiojimas baigėsi. Iš naujo įkelkite puslapį ir siųskite dar kartą.",
    "Your browser did not keep this site's cookie, so the form cannot be checked. Allow cookies for this site, reload the page and send it again.":
        "Jūsų naršyklė neišsaugojo šios svetainės slapuko, todėl formos patikrinti negalima. "
        "Leiskite slapukus šiai svetainei, iš naujo įkelkite puslapį ir siųskite dar kartą.",
    "The form's security token is missing. Reload the page and send it again.":
        "Trūksta formos apsaugos žetono. Iš naujo įkelkite puslapį ir siųskite dar kartą.",
    "The form's security token is not valid. Reload the page and send it again.":
        "Formos apsaugos žetonas negalioja. Iš naujo įkelkite puslapį ir siųskite dar kartą.",
    "Too many requests from your address: please wait a little and try again.":
        "Iš jūsų adreso gauta per daug užklausų: šiek tiek palaukite ir bandykite dar kartą.",
    "Your account": "Jūsų paskyra",
    "Role": "Vaidmuo",
    "administrator: every municipality": "administratorius: visos savivaldybės",
    "editor": "redaktorius",
    "Municipalities you may edit": "Savivaldybės, kurių duomenis galite redaguoti",
    "Your changes are published as": "Jūsų pakeitimai skelbiami kaip",
}
