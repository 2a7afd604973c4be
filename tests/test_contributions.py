"""Contributions core (issue 11): pending suggestions in the private store, approval as a run of
the source `contributions`, attribution by role, the merge policy, editors' scope, the purge."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from directory import clock
from directory import contributions as core
from directory.accounts import PermissionDenied, municipality_names
from directory.areas_store import load_locator
from directory.changes import list_changes
from directory.config import Settings
from directory.derived import refresh_derived
from directory.errors import Conflict, NotFound
from directory.private_store import connect_private
from directory.store import connect
from ingest.runs import run_osm
from tests.clitool import make_cli
from tests.contrib_data import (
    ADMIN,
    EDITOR_KAUNAS,
    EDITOR_VILNIUS,
    KAUNAS_POINT,
    OSM_PLACES,
    VILNIUS,
    VILNIUS_POINT,
    build_public,
    copy_store,
    write_osm,
)
from tests.storecheck import store_digest


@pytest.fixture(scope="session")
def contrib_template(tmp_path_factory, shared_data) -> Path:
    d = tmp_path_factory.mktemp("contrib")
    return build_public(d / "public.db", shared_data, d)


@pytest.fixture
def env(contrib_template, tmp_path):
    db = copy_store(contrib_template, tmp_path / "atvira.db")
    settings = Settings(db=db, cache_dir=tmp_path / "cache", offline=True, tile_url="",
                        snapshots_dir=tmp_path / "snaps")
    public = connect(db)
    private = connect_private(settings)
    yield type("Env", (), {"db": db, "settings": settings, "public": public, "private": private,
                           "locator": load_locator(public), "names": municipality_names(public), "tmp": tmp_path})
    public.close()
    private.close()


def private_digest(conn: sqlite3.Connection) -> list[tuple]:
    return [tuple(r) for r in conn.execute("SELECT * FROM contributions ORDER BY id")]


def baby_room(**changes) -> core.Submission:
    values = dict(kind="add_place", name="Motinos ir vaiko kambarys", category="baby_room", lon=VILNIUS_POINT[0],
                  lat=VILNIUS_POINT[1], features={"changing_table": "yes", "feeding_room": "yes"},
                  opening_hours="Mo-Fr 08:00-18:00", note="Antrame aukšte", email="mama@example.lt",
                  licence_agreed=True)
    values.update(changes)
    return core.Submission(**values)


def osm_id(n: int) -> str:
    return f"osm-node-{n}"


def approve(env, cid, user=EDITOR_VILNIUS):
    decision = core.approve(env.private, env.public, cid, user=user, names=env.names, locator=env.locator)
    refresh_derived(env.public, env.settings)
    return decision


def test_a_suggestion_is_pending_and_changes_nothing_public(env):
    before = store_digest(env.db)
    cid = core.submit(env.private, env.public, baby_room(), locator=env.locator)
    assert store_digest(env.db) == before
    row = env.private.execute("SELECT * FROM contributions WHERE id = ?", (cid,)).fetchone()
    assert row["status"] == "pending" and row["municipality_code"] == VILNIUS and row["email"] == "mama@example.lt"
    # the email never enters the public store
    assert b"mama@example.lt" not in env.db.read_bytes()


def test_the_queue_is_scoped_newest_first_with_current_beside_proposed(env):
    first = core.submit(env.private, env.public, baby_room(), locator=env.locator)
    second = core.submit(env.private, env.public, core.Submission(
        kind="report_problem", problem="wrong_hours", facility_id=osm_id(501), opening_hours="Mo-Sa 09:00-20:00",
        licence_agreed=True), locator=env.locator)
    kaunas = core.submit(env.private, env.public, baby_room(lon=KAUNAS_POINT[0], lat=KAUNAS_POINT[1]),
                         locator=env.locator)
    page = core.list_pending(env.private, public=env.public, user=EDITOR_VILNIUS)
    assert [i["id"] for i in page["items"]] == [second, first]
    hours = page["items"][0]
    assert hours["current"] == {"opening_hours": "Mo-Fr 10:00-19:00"}
    assert hours["proposed"] == {"opening_hours": "Mo-Sa 09:00-20:00"}
    assert "email" not in hours and page["items"][1]["has_contact"] is True
    assert [i["id"] for i in core.list_pending(env.private, public=env.public, user=EDITOR_KAUNAS)["items"]] == [kaunas]
    assert len(core.list_pending(env.private, public=env.public, user=ADMIN)["items"]) == 3
    paged = core.list_pending(env.private, public=env.public, user=ADMIN, limit=2)
    assert paged["next_after"] == second
    rest = core.list_pending(env.private, public=env.public, user=ADMIN, limit=2, after=paged["next_after"])
    assert [i["id"] for i in rest["items"]] == [first] and rest["next_after"] is None


def test_approval_publishes_with_provenance_attribution_and_audit(env):
    def vilnius_baby_rooms():
        row = env.public.execute("SELECT count FROM audit_indicators WHERE level = 'municipality' AND code = ?"
                                 " AND category = 'baby_room'", (VILNIUS,)).fetchone()
        return row[0] if row else 0

    assert vilnius_baby_rooms() == 0
    cid = core.submit(env.private, env.public, baby_room(), locator=env.locator)
    decision = approve(env, cid)
    fac = env.public.execute("SELECT * FROM facilities WHERE id = ?", (decision.facility_id,)).fetchone()
    assert fac["source"] == "contributions" and fac["municipality_code"] == VILNIUS
    assert json.loads(fac["features"]) == {"changing_table": "yes", "feeding_room": "yes"}
    rec = env.public.execute("SELECT * FROM source_records WHERE facility_id = ?", (fac["id"],)).fetchone()
    assert rec["source"] == "contributions" and rec["licence"] == core.CONTRIBUTION_LICENCE
    change = [c for c in list_changes(env.public)["changes"] if c["facility_id"] == fac["id"]][0]
    assert change["kind"] == "added" and change["actor"] == "public suggestion, approved by editor, Vilniaus m. sav."
    assert vilnius_baby_rooms() == 1
    row = env.private.execute("SELECT status, decided_by FROM contributions WHERE id = ?", (cid,)).fetchone()
    assert tuple(row) == ("approved", "editor, Vilniaus m. sav.")
    assert b"mama@example.lt" not in env.db.read_bytes()


def test_a_replayed_approval_is_refused_and_changes_nothing(env):
    cid = core.submit(env.private, env.public, baby_room(), locator=env.locator)
    approve(env, cid)
    before, before_private = store_digest(env.db), private_digest(env.private)
    with pytest.raises(Conflict, match=f"contribution {cid} was already approved"):
        approve(env, cid)
    with pytest.raises(Conflict):
        core.reject(env.private, cid, user=EDITOR_VILNIUS, reason="late", names=env.names)
    assert store_digest(env.db) == before and private_digest(env.private) == before_private


def test_an_editor_outside_the_area_gets_403_and_nothing_changes(env):
    cid = core.submit(env.private, env.public, baby_room(), locator=env.locator)
    before, before_private = store_digest(env.db), private_digest(env.private)
    with pytest.raises(PermissionDenied) as err:
        approve(env, cid, user=EDITOR_KAUNAS)
    assert err.value.status == 403
    with pytest.raises(PermissionDenied):
        core.reject(env.private, cid, user=EDITOR_KAUNAS, reason="no", names=env.names)
    with pytest.raises(PermissionDenied):
        core.show(env.private, cid, public=env.public, user=EDITOR_KAUNAS)
    with pytest.raises(PermissionDenied):
        core.edit_facility(env.public, osm_id(501), {"opening_hours": "24/7"}, user=EDITOR_KAUNAS,
                           names=env.names, locator=env.locator)
    assert store_digest(env.db) == before and private_digest(env.private) == before_private


def test_reject_keeps_the_public_store_and_records_the_reason(env):
    cid = core.submit(env.private, env.public, baby_room(), locator=env.locator)
    before = store_digest(env.db)
    with pytest.raises(core.InvalidSubmission, match="reason: required"):
        core.reject(env.private, cid, user=EDITOR_VILNIUS, reason="  ", names=env.names)
    core.reject(env.private, cid, user=EDITOR_VILNIUS, reason="Tokios vietos nėra", names=env.names)
    row = env.private.execute("SELECT status, reason FROM contributions WHERE id = ?", (cid,)).fetchone()
    assert tuple(row) == ("rejected", "Tokios vietos nėra")
    assert store_digest(env.db) == before


def test_closed_report_wins_and_a_reingest_of_the_same_osm_file_keeps_it_closed_with_the_conflict(env):
    cid = core.submit(env.private, env.public, core.Submission(
        kind="report_problem", problem="closed", facility_id=osm_id(501), licence_agreed=True), locator=env.locator)
    approve(env, cid)
    fac = env.public.execute("SELECT status, conflicts FROM facilities WHERE id = ?", (osm_id(501),)).fetchone()
    assert fac["status"] == "closed"
    # the same OSM file again (as `atvira ingest osm FILE`): still closed, the disagreement shown
    osm_file = write_osm(env.tmp / "places.json", OSM_PLACES)
    run_osm(env.public, settings=env.settings, files=[osm_file])
    fac = env.public.execute("SELECT status, conflicts FROM facilities WHERE id = ?", (osm_id(501),)).fetchone()
    assert fac["status"] == "closed"
    status_conflict = [c for c in json.loads(fac["conflicts"]) if c["field"] == "status"]
    assert status_conflict == [{"field": "status", "values": {"osm:node/501": "active",
                                                              f"contributions:{osm_id(501)}": "closed"},
                                "chosen": "closed", "correction": "kept"}]
    # OSM changes another field (the name): the place stays closed
    renamed = [dict(OSM_PLACES[0], tags={**OSM_PLACES[0]["tags"], "name": "Centrinė biblioteka (naujas)"}),
               *OSM_PLACES[1:]]
    run_osm(env.public, settings=env.settings, files=[write_osm(env.tmp / "places.json", renamed)])
    fac = env.public.execute("SELECT name, status FROM facilities WHERE id = ?", (osm_id(501),)).fetchone()
    assert tuple(fac) == ("Centrinė biblioteka (naujas)", "closed")


def test_a_correction_wins_until_the_source_changes_its_own_value_then_shows_as_a_conflict(env):
    cid = core.submit(env.private, env.public, core.Submission(
        kind="report_problem", problem="wrong_hours", facility_id=osm_id(501), opening_hours="Mo-Sa 09:00-20:00",
        licence_agreed=True), locator=env.locator)
    approve(env, cid)

    def hours():
        row = env.public.execute("SELECT opening_hours, conflicts FROM facilities WHERE id = ?", (osm_id(501),)).fetchone()
        return row["opening_hours"], [c for c in json.loads(row["conflicts"]) if c["field"] == "opening_hours"]

    assert hours()[0] == "Mo-Sa 09:00-20:00"
    run_osm(env.public, settings=env.settings, files=[write_osm(env.tmp / "places.json", OSM_PLACES)])
    assert hours()[0] == "Mo-Sa 09:00-20:00"  # OSM said nothing new
    changed = [dict(OSM_PLACES[0], tags={**OSM_PLACES[0]["tags"], "opening_hours": "Mo-Fr 11:00-18:00"}),
               *OSM_PLACES[1:]]
    run_osm(env.public, settings=env.settings, files=[write_osm(env.tmp / "places.json", changed)])
    value, conflicts = hours()
    assert value == "Mo-Fr 11:00-18:00"  # the source changed its own value: it is shown ...
    assert conflicts[0]["values"][f"contributions:{osm_id(501)}"] == "Mo-Sa 09:00-20:00"  # ... beside the correction
    assert conflicts[0]["correction"] == "superseded" and conflicts[0]["changed_by"] == ["osm:node/501"]


def test_still_here_feeds_last_verified(env):
    cid = core.submit(env.private, env.public, core.Submission(kind="still_here", facility_id=osm_id(502),
                                                                licence_agreed=True), locator=env.locator)
    approve(env, cid)
    row = env.public.execute("SELECT last_verified FROM facilities WHERE id = ?", (osm_id(502),)).fetchone()
    assert row[0] == clock.now().date().isoformat()


def test_editor_edit_answers_the_checklist_and_is_attributed_to_the_role(env):
    decision = core.edit_facility(env.public, osm_id(501), {
        "features.open_foyer": "yes", "features.changing_table": "no", "sector": "public",
        "opening_hours": "Mo-Fr 10:00-19:00",  # unchanged: not part of the change
    }, user=EDITOR_VILNIUS, names=env.names, locator=env.locator)
    refresh_derived(env.public, env.settings)
    assert decision.status == "edited"
    row = env.public.execute("SELECT features, sector FROM facilities WHERE id = ?", (osm_id(501),)).fetchone()
    assert json.loads(row["features"]) == {"open_foyer": "yes", "changing_table": "no"} and row["sector"] == "public"
    point = env.public.execute("SELECT open_to_anyone, changing_table FROM audit_institutions WHERE facility_id = ?",
                               (osm_id(501),)).fetchone()
    assert tuple(point) == ("yes", "no")
    change = [c for c in list_changes(env.public)["changes"] if c["facility_id"] == osm_id(501)][0]
    assert change["actor"] == "editor, Vilniaus m. sav." and change["source"] == "contributions"
    # nothing new: nothing written
    before = store_digest(env.db)
    again = core.edit_facility(env.public, osm_id(501), {"features.open_foyer": "yes"}, user=EDITOR_VILNIUS,
                               names=env.names, locator=env.locator)
    assert again.status == "unchanged" and store_digest(env.db) == before


def test_bad_submissions_are_refused_with_every_problem_named(env):
    before, before_private = store_digest(env.db), private_digest(env.private)
    with pytest.raises(core.InvalidSubmission) as err:
        core.submit(env.private, env.public, baby_room(
            name="<b>x</b>", category="zoo", lon=24.1, lat=56.95, features={"sauna": "yes"}, licence_agreed=False,
            opening_hours="whenever", note="=1+1", email="not-an-email"), locator=env.locator)
    fields = [f for f, _m in err.value.problems]
    assert fields == ["licence", "note", "email", "name", "category", "position", "features.sauna", "opening_hours"]
    with pytest.raises(NotFound):
        core.submit(env.private, env.public, core.Submission(kind="still_here", facility_id="nope",
                                                             licence_agreed=True), locator=env.locator)
    assert store_digest(env.db) == before and private_digest(env.private) == before_private


def test_contact_emails_are_purged_after_the_retention(env):
    old = core.submit(env.private, env.public, baby_room(), locator=env.locator,
                      now=clock.now() - timedelta(days=91))
    new = core.submit(env.private, env.public, baby_room(), locator=env.locator)
    assert core.purge_contacts(env.private, days=90) == 1
    emails = dict(env.private.execute("SELECT id, email FROM contributions"))
    assert emails == {old: None, new: "mama@example.lt"}
    assert VILNIUS in env.names


def test_cli_lists_pending_and_purges(env):


    core.submit(env.private, env.public, baby_room(), locator=env.locator, now=clock.now() - timedelta(days=100))
    envvars = {"ATVIRA_PRIVATE_DB": str(env.settings.private_db_path())}
    result = CliRunner().invoke(make_cli(), ["--db", str(env.db), "contributions", "list"], env=envvars)
    assert result.exit_code == 0 and "add_place" in result.output and "Motinos ir vaiko kambarys" in result.output
    assert "mama@example.lt" not in result.output
    result = CliRunner().invoke(make_cli(), ["--db", str(env.db), "contributions", "purge"], env=envvars)
    assert result.exit_code == 0 and "1 contact email(s) older than 90 days deleted" in result.output
