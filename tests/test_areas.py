"""Areas: reading the govlt boundaries + 2021 census population, and locating points in them."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import box

from directory.areas import ELDERSHIP, MUNICIPALITY, Area, AreaLocator, area_to_geojson
from directory.errors import FetchError, InputError
from ingest.areas import DEFAULT_BASE_URL, SOURCE_FILES, fetch_areas, read_areas

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
GOVLT = SHARED / "govlt-powerbi-map-lt"
CENSUS_2021_TOTAL = 2_810_755


@pytest.fixture(scope="module")
def areas() -> list[Area]:
    return read_areas(GOVLT)


@pytest.fixture(scope="module")
def locator(areas: list[Area]) -> AreaLocator:
    return AreaLocator(areas)


def _by_code(areas: list[Area], level: str) -> dict[str, Area]:
    return {a.code: a for a in areas if a.level == level}


# --- reading -------------------------------------------------------------------------------


def test_counts_codes_and_population(areas: list[Area]) -> None:
    munis = _by_code(areas, MUNICIPALITY)
    elds = _by_code(areas, ELDERSHIP)
    assert len(munis) == 60
    assert len(elds) == 554  # codes are unique: the dict would collapse duplicates
    assert sum(a.population for a in elds.values()) == CENSUS_2021_TOTAL
    assert sum(a.population for a in munis.values()) == CENSUS_2021_TOTAL
    for mun in munis.values():
        assert mun.population == sum(e.population for e in elds.values() if e.parent_code == mun.code)
    assert all(e.parent_code in munis for e in elds.values())
    assert all(a.geometry.is_valid and a.geometry.geom_type in ("Polygon", "MultiPolygon") for a in areas)


def test_code_formats(areas: list[Area]) -> None:
    vilnius = _by_code(areas, MUNICIPALITY)["13"]
    assert (vilnius.name, vilnius.parent_code, vilnius.county) == ("Vilniaus m. sav.", "10", "Vilniaus apskr.")
    assert vilnius.extra["nuts3"] == "LT011"
    old_town = _by_code(areas, ELDERSHIP)["1314"]
    assert (old_town.name, old_town.parent_code, old_town.county) == ("Senamiesčio sen.", "13", "Vilniaus apskr.")
    assert old_town.extra["full_name"] == "Vilniaus m. sav. | Senamiesčio sen."
    assert old_town.population == old_town.extra["population_men"] + old_town.extra["population_women"]
    # The eldership code prefix is NOT always the municipality code: never derive parents from it.
    visaginas = _by_code(areas, ELDERSHIP)["5200"]
    assert (visaginas.parent_code, visaginas.extra["osp_type"]) == ("30", "SAV")


def test_municipality_centre_points_fall_inside_their_polygons(areas: list[Area], locator: AreaLocator) -> None:
    """Checks the TopoJSON decoding (quantisation) against independent centre coordinates."""
    path = GOVLT / "testdata" / "LT-savivaldybes-municipalities.csv"
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    assert len(rows) == 60
    munis = _by_code(areas, MUNICIPALITY)
    elsewhere = {}
    for row in rows:
        lon = float(row["SAV_ILGUMA"].replace(",", "."))
        lat = float(row["SAV_PLATUM"].replace(",", "."))
        assert munis[row["SAV_KODAS"]].name == row["SAV_PAV"]
        found, _ = locator.locate(lon, lat)
        if found != row["SAV_KODAS"]:
            elsewhere[row["SAV_KODAS"]] = found
    # Three district municipalities wrap around a town; their centroid lies in that town.
    assert elsewhere == {"33": "11", "69": "12", "41": "13"}  # Alytaus r.->m., Prienų r.->Birštono, Vilniaus r.->m.


# --- locating ------------------------------------------------------------------------------


def test_locate_known_places(locator: AreaLocator) -> None:
    assert locator.locate(25.28669, 54.68570) == ("13", "1314")  # Vilnius Cathedral: Senamiesčio sen.
    assert locator.locate(23.8859, 54.8972) == ("19", "1901")  # Kaunas Town Hall: Centro sen.
    assert locator.locate(24.105, 56.949) == (None, None)  # Riga
    assert locator.locate(20.5, 55.5) == (None, None)  # Baltic Sea
    # Curonian Lagoon: in Šilutės r. sav., but the eldership layer leaves the lagoon out.
    assert locator.locate(21.2, 55.3) == ("88", None)
    assert locator.locate(float("nan"), 55.0) == (None, None)
    assert not locator.is_empty


def test_bulk_locate_agrees_with_locate_and_brute_force(areas: list[Area], locator: AreaLocator) -> None:
    rng = np.random.default_rng(20210101)
    lons = rng.uniform(20.9, 26.9, 2000)
    lats = rng.uniform(53.85, 56.5, 2000)
    bulk = locator.bulk_locate(lons, lats)
    assert bulk == [locator.locate(x, y) for x, y in zip(lons, lats)]
    assert sum(m is not None for m, _ in bulk) > 900  # LT fills roughly half its bbox

    # Without snapping, the answer must be exactly: first municipality (by code) containing the
    # point, then the first of *its* elderships containing the point.
    plain = AreaLocator(areas, snap_degrees=0)
    munis = sorted((a for a in areas if a.level == MUNICIPALITY), key=lambda a: a.code)
    elds = sorted((a for a in areas if a.level == ELDERSHIP), key=lambda a: a.code)
    expected = []
    for x, y in zip(lons[:500], lats[:500]):
        mun = next((a.code for a in munis if a.geometry.intersects(shapely.Point(x, y))), None)
        eld = next((a.code for a in elds if a.parent_code == mun and a.geometry.intersects(shapely.Point(x, y))), None)
        expected.append((mun, None if mun is None else eld))
    assert plain.bulk_locate(lons[:500], lats[:500]) == expected
    # Snapping only ever fills in a missing eldership, never changes an answer.
    for (m0, e0), (m1, e1) in zip(expected, bulk):
        assert m0 == m1 and (e0 is None or e0 == e1)


def _square(code: str, level: str, parent: str | None, x0: float, y0: float, x1: float, y1: float) -> Area:
    return Area(code=code, level=level, name=code, parent_code=parent, population=1, geometry=box(x0, y0, x1, y1))


def test_locator_rules_on_synthetic_areas() -> None:
    areas = [
        _square("20", MUNICIPALITY, None, 0, 0, 1, 1),
        _square("10", MUNICIPALITY, None, 1, 0, 2, 1),
        _square("2001", ELDERSHIP, "20", 0, 0, 0.5, 1),
        # Stretched eldership of "10" that spills over into "20" (like the padded real layer).
        _square("1001", ELDERSHIP, "10", 0.8, 0, 2, 0.5),
        # "10" has a gap above 0.5 except this strip.
        _square("1002", ELDERSHIP, "10", 1.9, 0.5, 2, 1),
    ]
    loc = AreaLocator(areas, snap_degrees=0.05)
    assert loc.locate(0.25, 0.5) == ("20", "2001")
    # Eldership layer says "1001" (of 10) but the municipality layer says 20: municipality wins.
    assert loc.locate(0.9, 0.25) == ("20", None)
    # On the shared municipality edge: the smaller code, whatever the input order.
    assert loc.locate(1.0, 0.25) == ("10", "1001")
    assert AreaLocator(list(reversed(areas)), snap_degrees=0.05).locate(1.0, 0.25) == ("10", "1001")
    # In a municipality but in none of its elderships.
    assert loc.locate(1.5, 0.75) == ("10", None)
    # Within the snap distance of one of its own elderships: snapped.
    assert loc.locate(1.88, 0.75) == ("10", "1002")
    assert loc.locate(0.52, 0.75) == ("20", "2001")
    assert AreaLocator(areas, snap_degrees=0).locate(1.88, 0.75) == ("10", None)
    assert loc.locate(5, 5) == (None, None)
    assert loc.bulk_locate([], []) == []

    empty = AreaLocator([])
    assert empty.is_empty
    assert empty.locate(0.5, 0.5) == (None, None)
    with pytest.raises(ValueError):
        loc.bulk_locate([1.0, 2.0], [1.0])


def test_row_round_trip_and_geojson(areas: list[Area]) -> None:
    area = _by_code(areas, ELDERSHIP)["1314"]
    row = area.to_row()
    assert (row["code"], row["level"], row["parent_code"]) == ("1314", "eldership", "13")
    assert row["name"] == "Senamiesčio sen."
    assert row["min_lon"] < 25.28669 < row["max_lon"] and row["min_lat"] < 54.68570 < row["max_lat"]
    back = Area.from_row(row)
    assert (back.code, back.level, back.name, back.parent_code, back.population, back.county, back.extra) == (
        area.code, area.level, area.name, area.parent_code, area.population, area.county, area.extra,
    )
    # GeoJSON text keeps 6 decimals (~0.1 m); the source is quantised to ~3 m.
    assert shapely.hausdorff_distance(back.geometry, area.geometry) < 1e-6
    from_wkb = Area.from_row({**row, "geometry_geojson": None, "geometry_wkb": area.geometry_wkb})
    assert from_wkb.geometry.equals(area.geometry)
    feature = area_to_geojson(area)
    assert feature["type"] == "Feature" and feature["id"] == "1314"
    assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert json.dumps(feature)  # JSON-able


# --- bad input -----------------------------------------------------------------------------


@pytest.fixture()
def source_copy(tmp_path: Path) -> Path:
    """A throw-away copy of the three source files to break (never written into the project)."""
    for rel in SOURCE_FILES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(GOVLT / rel, tmp_path / rel)
    return tmp_path


def _rewrite_csv(path: Path, edit) -> None:
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    path.write_text("\ufeff" + "\n".join(edit(lines)) + "\n", encoding="utf-8")


def test_missing_file(source_copy: Path) -> None:
    (source_copy / "testdata" / "LT-seniunijos-wards.csv").unlink()
    with pytest.raises(InputError) as err:
        read_areas(source_copy)
    assert "LT-seniunijos-wards.csv" in str(err.value) and "not found" in str(err.value)


def test_missing_csv_column(source_copy: Path) -> None:
    csv_path = source_copy / "testdata" / "LT-seniunijos-wards.csv"
    _rewrite_csv(csv_path, lambda lines: [lines[0].replace("SEN_GYV;", "GYV;", 1)] + lines[1:])
    with pytest.raises(InputError) as err:
        read_areas(source_copy)
    assert "LT-seniunijos-wards.csv:1" in str(err.value) and "SEN_GYV" in err.value.message


def test_bad_number_names_line_and_field(source_copy: Path) -> None:
    csv_path = source_copy / "testdata" / "LT-seniunijos-wards.csv"

    def break_line_5(lines: list[str]) -> list[str]:
        fields = lines[4].split(";")  # file line 5
        fields[lines[0].split(";").index("SEN_GYV")] = "12x"
        lines[4] = ";".join(fields)
        return lines

    _rewrite_csv(csv_path, break_line_5)
    with pytest.raises(InputError) as err:
        read_areas(source_copy)
    assert err.value.where.endswith("LT-seniunijos-wards.csv:5")
    assert "SEN_GYV" in err.value.message and "12x" in err.value.message


def test_missing_topojson_field(source_copy: Path) -> None:
    path = source_copy / "topojson" / "LT-savivaldybes-municipalities.json"
    topo = json.loads(path.read_text(encoding="utf-8"))
    for geometry in topo["objects"]["LT_savivaldybes"]["geometries"]:
        del geometry["properties"]["SAV_PAV"]
    path.write_text(json.dumps(topo), encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_areas(source_copy)
    assert "LT-savivaldybes-municipalities.json" in str(err.value) and "SAV_PAV" in err.value.message


def test_population_row_missing(source_copy: Path) -> None:
    csv_path = source_copy / "testdata" / "LT-seniunijos-wards.csv"
    _rewrite_csv(csv_path, lambda lines: lines[:3] + lines[4:])  # drop one eldership's row
    with pytest.raises(InputError) as err:
        read_areas(source_copy)
    assert "no population row" in err.value.message


# --- fetching ------------------------------------------------------------------------------


class _FakeResponse:
    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content


class _FakeSession:
    """Serves the shared data files for URLs under DEFAULT_BASE_URL; 404 for the rest."""

    def __init__(self, *, broken: str | None = None) -> None:
        self.calls: list[tuple[str, float]] = []
        self.broken = broken

    def get(self, url: str, *, timeout: float) -> _FakeResponse:
        self.calls.append((url, timeout))
        rel = url.removeprefix(DEFAULT_BASE_URL + "/")
        if rel == self.broken:
            return _FakeResponse(404, b"404: Not Found")
        if rel in SOURCE_FILES:
            return _FakeResponse(200, (GOVLT / rel).read_bytes())
        return _FakeResponse(404, b"404: Not Found")


def test_fetch_areas(tmp_path: Path) -> None:
    session = _FakeSession()
    dest = fetch_areas(session=session, dest=tmp_path / "areas", timeout=5)
    assert [url for url, _ in session.calls] == [f"{DEFAULT_BASE_URL}/{rel}" for rel in SOURCE_FILES]
    assert all(timeout == 5 for _, timeout in session.calls)
    assert len(read_areas(dest)) == 614
    assert sorted(p.name for p in dest.iterdir()) == ["testdata", "topojson"]  # no temp files left


def test_fetch_failure_keeps_previous_copy(tmp_path: Path) -> None:
    dest = fetch_areas(session=_FakeSession(), dest=tmp_path)
    before = (dest / SOURCE_FILES[0]).read_bytes()
    with pytest.raises(FetchError) as err:
        fetch_areas(session=_FakeSession(broken=SOURCE_FILES[2]), dest=dest)
    assert "404" in err.value.message and SOURCE_FILES[2] in str(err.value)
    assert (dest / SOURCE_FILES[0]).read_bytes() == before
    assert len(read_areas(dest)) == 614
    assert sorted(p.name for p in dest.iterdir()) == ["testdata", "topojson"]
