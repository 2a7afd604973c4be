"""The SQLite download opened by Datasette, as a journalist would: `datasette facilities.sqlite
-m datasette-metadata.json` shows the facilities table with full-text search and facets."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

from datasette.app import Datasette

from directory.store import connect
from directory.sync import apply_records
from tests.conftest import derive, facility


def _download(client, tmp_path):
    resp = client.get("/downloads/facilities.sqlite")
    assert resp.status_code == 200
    path = tmp_path / "facilities.sqlite"
    path.write_bytes(resp.get_data())
    meta = client.get("/downloads/datasette-metadata.json").get_json()
    return path, meta


def test_datasette_finds_the_full_text_index_and_searches_without_diacritics(settings, make_app, tmp_path):
    conn = connect(settings.db)
    apply_records(conn, [
        facility("a", name="Lopšelis-darželis „Žiogelis“", categories=["kindergarten"], lon=25.28, lat=54.68),
        facility("b", name="Aikštelė prie upės", lon=25.29, lat=54.69),
        facility("c", name="Bibliotekos kambarys", categories=["baby_room"], lon=25.30, lat=54.70),
    ], source="test", scope="s")
    derive(conn)
    conn.close()
    path, meta = _download(make_app().test_client(), tmp_path)
    assert meta["databases"]["facilities"]["tables"]["facilities"]["fts_table"] == "facilities_fts"
    assert meta["license"] and meta["source"] == "test"

    async def browse():
        ds = Datasette([str(path)], metadata=meta)
        await ds.invoke_startup()
        table = await ds.client.get("/facilities/facilities")
        found = await ds.client.get("/facilities/facilities.json?_search=darzelis&_shape=objects")
        faceted = await ds.client.get("/facilities/facilities.json?_facet=sector&_shape=objects")
        fts = await ds.get_database("facilities").fts_table("facilities")
        return table, found, faceted, fts

    # In a thread of its own: Playwright's sync API (used by other tests in this worker) leaves an
    # event loop running in the main thread, and asyncio.run refuses to nest.
    with ThreadPoolExecutor(1) as pool:
        table, found, faceted, fts = pool.submit(asyncio.run, browse()).result()
    assert fts == "facilities_fts"  # Datasette's own detection, not only our metadata
    assert table.status_code == 200 and 'name="_search"' in table.text  # the search box is offered
    rows = found.json()["rows"]
    assert [r["id"] for r in rows] == ["test-a"]  # "darzelis" finds "darželis"
    assert "sector" in json.dumps(faceted.json()["facet_results"])
