"""Issue 14 (hardening): each finding of the probe, reproduced; each must stay fixed.

The findings are numbered as in the issue's "Why" list; a test's docstring names its finding.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from werkzeug.routing import Rule

from directory.config import Settings
from tests.conftest import derive, facility

HUGE = "99999999999999999999999"
UNICODE_DIGITS = "\uff15"  # fullwidth 5
NUMBER_PARAMS = ("limit", "after", "zoom", "institutions_limit", "radius", "since", "until")
COORD_PARAMS = {"bbox": f"{HUGE},1,2,3", "near": f"{HUGE},54"}


@pytest.fixture
def audit_app(audit_db, tmp_path):
    from app import create_app

    db = tmp_path / "audit.db"
    shutil.copy(audit_db, db)
    app = create_app(Settings(db=db, cache_dir=tmp_path / "cache", offline=True, tile_url="",
                              snapshots_dir=tmp_path / "snaps"))
    app.testing = True
    return app


def _fill(rule: Rule, value: str) -> str:
    path = rule.rule
    for arg in rule.arguments:
        path = path.replace(f"<{arg}>", value).replace(f"<path:{arg}>", value).replace(f"<int:{arg}>", value)
    return path


def test_every_route_answers_overflowing_and_unicode_numbers_without_a_500(audit_app):
    """Finding 7 (HTML 500s on /downloads/snapshots/<huge>.sqlite and institutions_limit=<huge>)
    and 10 (Unicode digits accepted by some parameters): every route, every numeric parameter."""
    client = audit_app.test_client()
    tried = 0
    for rule in audit_app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for value in (HUGE, UNICODE_DIGITS, "-" + HUGE, "1e999", "nan"):
            base = _fill(rule, value if rule.arguments else "")
            queries = [f"{p}={value}" for p in NUMBER_PARAMS]
            queries += [f"{p}={v}" for p, v in COORD_PARAMS.items()]
            queries += [f"bbox=20,50,30,60&zoom={value}", f"near=25,54&radius={value}"]
            for q in ["", *queries] if value in (HUGE, UNICODE_DIGITS) else [""]:
                url = f"{base}?{q}" if q else base
                resp = client.get(url)
                tried += 1
                assert resp.status_code < 500, (url, resp.status_code, resp.get_data(as_text=True)[:300])
                if resp.status_code == 400 and resp.is_json:
                    assert "Traceback" not in resp.get_data(as_text=True)
    assert tried > 500


@pytest.mark.parametrize("url, where", [
    ("/api/facilities?bbox=2%EF%BC%95,54,26,55", "bbox"),
    ("/api/facilities?near=2%EF%BC%95,54", "near"),
    ("/api/facilities/clusters?bbox=20,50,30,60&zoom=%EF%BC%95", "zoom"),
    ("/api/facilities?near=25,54&radius=%EF%BC%95", "radius"),
    ("/api/changes?since=%EF%BC%95", "since"),
])
def test_unicode_digits_are_refused_by_every_numeric_parameter(client, url, where):
    """Finding 10: "５" was a number in bbox, near and zoom but not in limit; now in none."""
    resp = client.get(url)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert resp.get_json()["where"] == where


def test_institutions_limit_overflow_is_a_400(audit_app):
    """Finding 7: /api/audit/municipalities/13?institutions_limit=<20 digits> was an HTML 500."""
    resp = audit_app.test_client().get(f"/api/audit/municipalities/13?institutions_limit={HUGE}")
    assert resp.status_code == 400 and resp.get_json()["where"] == "institutions_limit"


def test_huge_snapshot_id_is_a_clear_404_or_400(client):
    """Finding 7: /downloads/snapshots/<23 digits>.sqlite raised OverflowError (HTML 500)."""
    resp = client.get(f"/downloads/snapshots/{HUGE}.sqlite")
    assert resp.status_code == 400 and resp.get_json()["where"] == "snapshot"


def test_a_long_unknown_id_is_not_echoed_in_full(client):
    """Finding 10: a 5,000-character unknown id came back whole in the 404."""
    resp = client.get("/api/facilities/" + "x" * 5000)
    assert resp.status_code == 404 and len(resp.get_data()) < 600


FORMULA = '=HYPERLINK("http://example.invalid","x")'


def test_audit_csvs_neutralise_spreadsheet_formulas(audit_app):
    """Finding 4: the audit CSVs used a plain csv.writer, so a formula name came out live."""
    import sqlite3

    conn = sqlite3.connect(audit_app.config["ATVIRA"].db)
    with conn:
        conn.execute("UPDATE audit_institutions SET name = ? WHERE municipality_code = '13'", (FORMULA,))
        conn.execute("UPDATE audit_institutions SET name = ? WHERE meets_all = 1", ("@SUM(A1)",))
    conn.close()
    client = audit_app.test_client()
    for url in ("/audit/13/institutions.csv", "/audit/institutions.csv"):
        body = client.get(url).get_data(as_text=True)
        assert body.startswith("\ufeff")
        cells = [c for line in body.splitlines() for c in line.split(",")]
        assert not any(c.lstrip('"').startswith(("=", "@", "+")) for c in cells), (url, body[:400])
        assert "'=HYPERLINK" in body or "'@SUM" in body, body[:400]


def test_the_one_csv_writer_guards_every_text_cell():
    from directory.exports import csv_text

    text = "".join(csv_text([["name", "n"], ["=1+1", -3], ["+x", None], ["\tx", "ok"]]))
    assert text == "\ufeffname,n\r\n'=1+1,-3\r\n'+x,\r\n'\tx,ok\r\n"
