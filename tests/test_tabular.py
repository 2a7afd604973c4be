"""The tabular adapter's parse half: CSV dialects, numbers, WKT, LKS-94 axes, JSON/JSONL, mappings."""

from __future__ import annotations

from pathlib import Path

import pytest

from directory.errors import InputError
from ingest.coords import CoordinateError, lks94_to_wgs84, to_wgs84
from ingest.mapping import load_mapping
from ingest.tabular import decode_text, parse_number, parse_wkt_point, read_csv, read_json, read_jsonl, sniff_delimiter


def test_lks94_axis_is_decided_by_magnitude_not_order():
    # Vilnius Cathedral bell tower (Spinta notes): E 582966, N 6061792 = 25.28669 E, 54.68570 N.
    for a, b in ((582966, 6061792), (6061792, 582966)):
        lon, lat = lks94_to_wgs84(a, b)
        assert lon == pytest.approx(25.28669, abs=5e-5) and lat == pytest.approx(54.68570, abs=5e-5)
    with pytest.raises(CoordinateError, match="not LKS-94"):
        lks94_to_wgs84(25.28, 54.68)
    assert to_wgs84(0, 0, crs="EPSG:3346") is None and to_wgs84(None, None, crs="EPSG:3346") is None
    assert to_wgs84(582966, 6061792, crs="auto") == lks94_to_wgs84(582966, 6061792)


def test_numbers_with_decimal_comma_and_spaces():
    assert parse_number("12,5") == 12.5 and parse_number("12.5") == 12.5
    assert parse_number("6 061 792,25") == 6061792.25 and parse_number("") is None and parse_number(7) == 7.0
    with pytest.raises(ValueError, match="not a number"):
        parse_number("12a")


def test_wkt_points():
    assert parse_wkt_point("POINT (582966 6061792)") == (582966.0, 6061792.0)
    assert parse_wkt_point("SRID=3346;POINT(582966.5 6061792)") == (582966.5, 6061792.0)
    assert parse_wkt_point("POINT EMPTY") is None and parse_wkt_point(None) is None
    with pytest.raises(ValueError, match="not a WKT POINT"):
        parse_wkt_point("POLYGON ((0 0, 1 1, 1 0, 0 0))")


def test_csv_dialects_bom_cp1257_semicolon():
    text = "id;pavadinimas;x\n1;Lopšelis-darželis „Žiogelis“;\"6061792,5\"\n"
    for data in (text.encode("utf-8"), b"\xef\xbb\xbf" + text.encode("utf-8"),
                 text.replace("„", '"').replace("“", '"').encode("cp1257")):
        assert decode_text(data)[0].startswith("id;")
        rows = list(read_csv(data, name="f.csv"))
        assert rows[0].values["pavadinimas"].startswith("Lopšelis-darželis")
        assert rows[0].where == "f.csv:2" and parse_number(rows[0].values["x"]) == 6061792.5
    assert sniff_delimiter('a,b,c\n1,"2,5",3\n') == ","
    with pytest.raises(InputError, match="f.csv:3"):
        list(read_csv(b"a,b\n1,2\n1,2,3\n", name="f.csv"))


def test_json_spinta_page_and_jsonl():
    rows = list(read_json(b'{"_type": "x/Sarasas", "_data": [{"_id": "u1", "a": 1}], "_page": {"next": "t"}}', name="p.json"))
    assert rows[0].values["a"] == 1 and rows[0].where == "p.json:record 1"
    rows = list(read_jsonl(b'{"a": 1}\n\n{"a": 2}\n', name="p.jsonl"))
    assert [r.where for r in rows] == ["p.jsonl:1", "p.jsonl:3"]
    with pytest.raises(InputError, match="p.jsonl:2"):
        list(read_jsonl(b'{"a": 1}\n{"a": \n', name="p.jsonl"))


def test_mapping_errors_name_the_key(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nlicence = "CC-BY-4.0"\n[columns]\nid = "id"\n[features.wings]\ncolumn = "w"\n')
    with pytest.raises(InputError, match="features.wings: unknown feature"):
        load_mapping(bad)
    with pytest.raises(InputError, match="no mapping 'nope'"):
        load_mapping("nope")
    assert load_mapping("vilnius-darzeliai").aggregate is True
