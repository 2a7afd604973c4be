"""The OpenAPI document matches what the API does: every /api route documented, and schemathesis
finds no 5xx and no response that violates the document (on a small store)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from directory.config import Settings
from directory.openapi import build_spec
from directory.snapshots import create_snapshot
from directory.sync import apply_records
from tests.conftest import facility


@pytest.fixture
def small_app(make_app, store, tmp_path):
    store.execute("INSERT INTO areas(code, level, name, geometry, population) VALUES"
                  " ('13', 'municipality', 'Vilniaus m. sav.', '{}', 588412),"
                  " ('1301', 'eldership', 'Senamiesčio sen.', '{}', 20000)")
    store.execute("UPDATE areas SET parent_code = '13' WHERE code = '1301'")
    apply_records(store, [
        facility("a", municipality_code="13", eldership_code="1301", opening_hours="Mo-Fr 08:00-18:00",
                 features={"changing_table": "yes"}),
        facility("b", categories=["baby_room", "library"], lon=25.3, lat=54.7, name='=HYPERLINK("x")'),
        facility("c", lon=None, lat=None),
    ], source="test", scope="s")
    apply_records(store, [facility("a", opening_hours="Mo-Su 08:00-20:00"), facility("d")], source="test", scope="s")
    create_snapshot(store, Settings(db=tmp_path / "atvira.db", snapshots_dir=tmp_path / "snaps"))
    return make_app(snapshots_dir=tmp_path / "snaps")


def test_every_api_route_is_documented(small_app):
    documented = set(build_spec()["paths"])
    for rule in small_app.url_map.iter_rules():
        if "GET" not in rule.methods:
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        path = path.replace("{int:", "{").replace("{path:", "{")
        if path.startswith(("/api/", "/open311/")):
            assert path in documented, f"{rule.rule} is not in directory/openapi.py PATHS"
    served = small_app.test_client().get("/api/openapi.json").get_json()
    assert served["openapi"].startswith("3.") and served["paths"].keys() == documented


def test_api_page_shows_examples(small_app):
    page = small_app.test_client().get("/api").get_data(as_text=True)
    for needle in ("curl ", "pd.read_csv", "gpd.read_file", "/api/openapi.json", "/api/changes"):
        assert needle in page


def test_schemathesis_finds_no_5xx_and_no_schema_violation(small_app):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", small_app)
    # The downloads are tested format by format in test_exports; here the JSON API only.
    schema = schema.include(path_regex=r"^/(api|open311)/", method="GET")
    failures: list[str] = []
    ran: list[str] = []

    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        ran.append(f"{case.method} {case.path}")
        try:
            # Every default check except "schema-valid data is accepted": a schema can say a bbox is
            # four numbers but not that west <= east, and a 400 naming the parameter is then right.
            case.call_and_validate(excluded_checks=[positive_data_acceptance])
        except AssertionError as exc:  # schemathesis reports every violation as an assertion
            failures.append(f"{case.method} {case.formatted_path} {case.query}: {exc}")
            raise

    for result in schema.get_all_operations():
        operation = result.ok()
        given(case=operation.as_strategy())(check)()
    assert not failures
    assert {r.split(" ")[1] for r in ran} >= {"/api/facilities", "/api/changes", "/api/areas", "/api/snapshots",
                                              "/open311/v2/services.json", "/open311/v2/requests.json"}
