"""Sign-in for editors and admins: /login, /logout, the current user, and the permission checks.

A thin shell over `directory.accounts`. The browser holds Flask's signed session cookie; inside
it, a random session token whose hash must still be a live row in the private store's `sessions`
table on every request, so logout, expiry, a disabled account or a password reset end a session
at once (a signed cookie alone could not be revoked).

Also here: the secret key (required in production) and CSRF protection for every form.
"""

from __future__ import annotations

import functools
import secrets
import sys
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, g, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect

from .. import accounts, clock
from ..accounts import AccountDisabled, AccountLocked, AuthError, PermissionDenied, SessionExpired, User
from ..config import Settings, check_production
from ..errors import AtviraError
from ..private_store import PrivatePool
from .context import private_db, reader, settings, wants_json
from .errorpages import message_page
from .limits import limiter, login_limit

F = TypeVar("F", bound=Callable[..., Any])
SESSION_KEY = "atvira_session"

bp = Blueprint("auth", __name__)
csrf = CSRFProtect()


# --- who is signed in ----------------------------------------------------------------------------


def current_user() -> User | None:
    """The signed-in user of this request, checked against the sessions table (once per request)."""
    if "atvira_user" in g:
        return g.atvira_user
    user = None
    token = session.get(SESSION_KEY)
    if token:
        cfg = settings()
        try:
            user = accounts.get_session(private_db(), token, now=clock.now(), idle_minutes=cfg.session_idle_minutes)
        except SessionExpired:
            session.pop(SESSION_KEY, None)
            g.atvira_session_expired = True
    g.atvira_user = user
    return user


def session_expired() -> bool:
    """Whether this request came with a session that is no longer valid (for a clear message)."""
    current_user()
    return bool(g.get("atvira_session_expired"))


class LoginRequired(Exception):
    """Raised by the checks below; answered by a redirect to /login (pages) or 401 (JSON)."""


def require_user() -> User:
    user = current_user()
    if user is None:
        raise LoginRequired()
    return user


def editor_for(municipality_code: str | None, *, what: str | None = None) -> User:
    """The signed-in user if they may edit in `municipality_code`; else 401 (not signed in) or 403.

    Call it in a view once the municipality is known (from the facility or the contribution):
    `user = editor_for(fac["municipality_code"])`.
    """
    user = require_user()
    if not accounts.can_edit(user, municipality_code):
        raise PermissionDenied(
            _("You may not edit %(what)s: it is outside your municipalities.", what=what or _("this")),
            where=str(municipality_code) if municipality_code else None,
        )
    return user


def login_required(view: F) -> F:
    """Only for signed-in users (any role); the others go to /login (pages) or get 401 (JSON)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        require_user()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def admin_required(view: F) -> F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not require_user().is_admin:
            raise PermissionDenied(_("Only an administrator may do this."))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# --- the pages -----------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (no open redirect)."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//") \
                and "\\" not in target:
            return target
    return url_for("pages.index")


def _login_page(*, error: str | None = None, status: int = 200, login: str = "") -> Response:
    expired = request.args.get("expired") == "1" or session_expired()
    html = render_template("login.html", error=error, expired=expired and not error, login=login,
                           next=_safe_next(request.values.get("next")))
    resp = Response(html, status=status, mimetype="text/html")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/login")
def login_form() -> Response:
    if current_user() is not None and not request.args.get("expired"):
        return redirect(_safe_next(request.args.get("next")))  # type: ignore[return-value]
    return _login_page()


@bp.post("/login")
@limiter.limit(login_limit)
def login_submit() -> Response:
    cfg = settings()
    login = (request.form.get("login") or "")[: accounts.MAX_LOGIN_LENGTH + 1]
    password = request.form.get("password") or ""
    conn = private_db()
    try:
        user = accounts.authenticate(conn, login=login, password=password, now=clock.now(),
                                     lockout=cfg.login_lockout, lock_minutes=cfg.login_lock_minutes)
    except AccountLocked as exc:
        resp = _login_page(error=_("Too many wrong passwords: this account is locked for a while. "
                                   "Try again later or ask an administrator to reset it."), status=429, login=login)
        resp.headers["Retry-After"] = str(max(1, int((exc.until - clock.now()).total_seconds())))
        return resp
    except AccountDisabled:
        return _login_page(error=_("This account is disabled. Ask an administrator."), status=403, login=login)
    except AuthError:
        return _login_page(error=_("Wrong login or password."), status=401, login=login)
    token = accounts.create_session(conn, user, now=clock.now(), hours=cfg.session_hours)
    # A fresh cookie session: nothing from before the login (e.g. a planted CSRF token) survives.
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    session[SESSION_KEY] = token
    session.permanent = True
    return redirect(_safe_next(request.form.get("next")), code=303)  # type: ignore[return-value]


@bp.get("/account")
@login_required
def account() -> Response:
    """Who is signed in, as what, for which municipalities (and the way out)."""
    user = require_user()
    try:
        names = accounts.municipality_names(reader())
    except AtviraError:  # no public store yet: codes instead of names
        names = {}
    html = render_template("account.html", user=user, label=accounts.role_label(user, names),
                           municipalities=[(c, names.get(c, c)) for c in user.municipalities])
    resp = Response(html, mimetype="text/html")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/logout")
def logout() -> Response:
    token = session.get(SESSION_KEY)
    if token:
        accounts.end_session(private_db(), token)
    session.clear()
    return redirect(url_for("auth.login_form"), code=303)  # type: ignore[return-value]


# --- wiring -----------------------------------------------------------------------------------


@functools.cache
def _development_key() -> str:
    """One random key per process: sessions and forms work, and end with the process."""
    print("note: ATVIRA_SECRET_KEY is not set; using a random key for this process only "
          "(sign-ins and forms end when it stops). Production refuses to start without it.", file=sys.stderr)
    return secrets.token_hex(32)


def init_auth(app: Flask, settings_: Settings) -> None:
    """Secret key, cookie hardening, CSRF on every form, the private store, /login and /logout."""
    check_production(settings_)
    app.secret_key = settings_.secret_key or _development_key()
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Behind the TLS proxy the cookie must never travel over plain http.
        SESSION_COOKIE_SECURE=settings_.production,
        PERMANENT_SESSION_LIFETIME=int(settings_.session_hours * 3600),
        # The CSRF token lives in the session; it must outlast a long form, not the session.
        WTF_CSRF_TIME_LIMIT=int(settings_.session_hours * 3600),
        # Behind the TLS proxy the strict Referer check breaks nothing; keep Flask-WTF's default.
    )
    app.extensions["atvira_private"] = PrivatePool(settings_)
    accounts.dummy_hash()  # made now, before the first unknown login (see there)
    csrf.init_app(app)
    app.register_blueprint(bp)

    @app.context_processor
    def auth_context() -> dict[str, Any]:
        return {"current_user": current_user}

    @app.errorhandler(CSRFError)
    def csrf_failed(exc: CSRFError):
        reason = str(exc.description or "")
        if "expired" in reason:
            message = _("The form has expired. Reload the page and send it again.")
        elif "missing" in reason and "session" in reason:
            message = _("Your browser did not keep this site's cookie, so the form cannot be checked. "
                        "Allow cookies for this site, reload the page and send it again.")
        elif "missing" in reason:
            message = _("The form's security token is missing. Reload the page and send it again.")
        else:
            message = _("The form's security token is not valid. Reload the page and send it again.")
        return _error(400, "CSRFError", message)

    @app.errorhandler(LoginRequired)
    def not_signed_in(exc: LoginRequired):
        expired = session_expired()
        if wants_json():
            message = (_("Your session has expired. Please sign in again.") if expired
                       else _("You need to sign in."))
            resp = _error(401, "SessionExpired" if expired else "LoginRequired", message)
            resp.headers["WWW-Authenticate"] = 'Cookie realm="atvira"'
            return resp
        args = {"next": request.full_path.rstrip("?") if request.method == "GET" else request.path}
        if expired:
            args["expired"] = "1"
        return redirect(url_for("auth.login_form", **args), code=303)


def _error(status: int, name: str, message: str) -> Response:
    if wants_json():
        resp = jsonify({"error": name, "message": message, "status": status})
    else:
        resp = Response(message_page(status, message),
                        mimetype="text/html")
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp
