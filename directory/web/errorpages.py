"""Error pages' headings and explanations by HTTP status, in the reader's language: one table for
every error page (the AtviraError handler, sign-in and CSRF refusals, rate limits)."""

from __future__ import annotations

from flask import render_template
from flask_babel import lazy_gettext as _l

# An error page's heading and what the reader can do, by HTTP status (the message follows).
ERROR_TEXTS = {
    400: (_l("Something in the address is not right"),
          _l("A value in the address of this page could not be used. Check it, or start again from the map.")),
    404: (_l("Not found"), _l("What this address points to does not exist (any more).")),
    422: (_l("The data could not be read"), _l("A file or value sent to Atvira could not be read.")),
    502: (_l("A source did not answer"), _l("A data source Atvira depends on did not answer. Try again later.")),
    503: (_l("The store is unavailable"), _l("The data store cannot be used right now. Try again later.")),
    401: (_l("Sign in needed"), _l("This page is for municipal editors. Sign in, or go back to the map.")),
    403: (_l("Not allowed"), _l("Your account may not do this here.")),
    409: (_l("Already done"), _l("Someone has already acted on this. Reload the page to see where it stands.")),
    429: (_l("Too many requests"), _l("Please wait a little before trying again.")),
}
OTHER_ERROR = (_l("Something went wrong"), _l("Atvira could not show this page."))


def error_texts(status: int) -> tuple[str, str]:
    """(heading, explanation) for a status."""
    return ERROR_TEXTS.get(status, OTHER_ERROR)


def message_page(status: int, message: str) -> str:
    """An error page for an already translated message (sign-in, CSRF, rate limits)."""
    heading, explanation = error_texts(status)
    return render_template("error.html", error={"status": status, "message": message}, heading=heading,
                           explanation=explanation, message=message, english=False)
