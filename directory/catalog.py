"""Dataset metadata: licences per source, a DCAT-AP catalogue (JSON-LD) and a Frictionless data package.

Licences are reported as the store holds them: one line per (source, licence) of the live source
records, so a new source with a new licence shows up here without code changes. OpenStreetMap
rows are ODbL 1.0 and need attribution; a download that mixes sources is covered by each
row's own licence (the `licences` column), which is what the texts here say.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .exports import COLUMNS, FORMATS

# What we know about licences that sources use; anything else is listed with its name only.
KNOWN_LICENCES: dict[str, dict[str, str]] = {
    "ODbL-1.0": {"title": "Open Data Commons Open Database License 1.0",
                 "url": "https://opendatacommons.org/licenses/odbl/1-0/",
                 "attribution": "© OpenStreetMap contributors, https://www.openstreetmap.org/copyright"},
    "CC-BY-4.0": {"title": "Creative Commons Attribution 4.0", "url": "https://creativecommons.org/licenses/by/4.0/",
                  "attribution": "the publisher named by the source"},
    "CC0-1.0": {"title": "Creative Commons Zero 1.0", "url": "https://creativecommons.org/publicdomain/zero/1.0/",
                "attribution": ""},
}
SOURCE_NAMES = {"osm": "OpenStreetMap"}
# Lithuania's extent (the configured country) as a WKT/GeoJSON box for dct:spatial.
LT_BBOX = (20.93, 53.89, 26.84, 56.45)
DESCRIPTIONS = {
    "csv": "CSV (UTF-8 with BOM, RFC 4180), one row per facility with latitude/longitude columns",
    "geojson": "GeoJSON FeatureCollection (RFC 7946, WGS84 lon/lat)",
    "gpkg": "OGC GeoPackage, layer `facilities`, EPSG:4326, with an R*Tree spatial index",
    "sqlite": "The whole SQLite store (a consistent copy); with filters, one flat `facilities` table",
}


def licences(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """One entry per (source, licence) among live source records, with the rows it covers."""
    rows = conn.execute(
        "SELECT source, licence, count(*) AS n, max(fetched_at) AS fetched_at FROM source_records"
        " WHERE removed_at IS NULL GROUP BY source, licence ORDER BY n DESC"
    ).fetchall()
    if not rows:  # a store filled without source records (synthetic): use the facilities' own
        rows = conn.execute(
            "SELECT source, licence, count(*) AS n, max(fetched_at) AS fetched_at FROM facilities"
            " WHERE status != 'removed' GROUP BY source, licence ORDER BY n DESC"
        ).fetchall()
    out = []
    for r in rows:
        known = KNOWN_LICENCES.get(r["licence"], {})
        out.append({
            "source": r["source"], "source_name": SOURCE_NAMES.get(r["source"], r["source"]),
            "licence": r["licence"], "title": known.get("title", r["licence"]), "url": known.get("url"),
            "attribution": known.get("attribution"), "records": r["n"], "fetched_at": r["fetched_at"],
        })
    return out


def modified(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT at FROM changes ORDER BY seq DESC LIMIT 1").fetchone()
    return row[0] if row else None


def dcat_catalog(conn: sqlite3.Connection, *, base_url: str) -> dict[str, Any]:
    """A DCAT-AP catalogue with one dataset and a distribution per download format and snapshot."""
    base = base_url.rstrip("/")
    lic = licences(conn)
    licence_uris = [entry["url"] or entry["licence"] for entry in lic]
    rights = "; ".join(f"{e['source_name']}: {e['title']}" + (f" ({e['attribution']})" if e["attribution"] else "")
                       for e in lic) or "no data loaded yet"
    mod = modified(conn)
    w, s, e, n = LT_BBOX
    spatial = {
        "@type": "dct:Location",
        "dcat:bbox": {"@type": "gsp:wktLiteral",
                      "@value": f"POLYGON(({w} {s},{e} {s},{e} {n},{w} {n},{w} {s}))"},
        "locn:geographicName": "Lithuania",
        "@id": "http://publications.europa.eu/resource/authority/country/LTU",
    }
    distributions = [
        {
            "@id": f"{base}/downloads/facilities.{fmt}",
            "@type": "dcat:Distribution",
            "dct:title": f"Facilities ({fmt})",
            "dct:description": DESCRIPTIONS[fmt],
            "dcat:accessURL": {"@id": f"{base}/downloads/facilities.{fmt}"},
            "dcat:downloadURL": {"@id": f"{base}/downloads/facilities.{fmt}"},
            "dcat:mediaType": {"@id": f"https://www.iana.org/assignments/media-types/{FORMATS[fmt].split(';')[0]}"},
            "dct:format": fmt.upper(),
            "dct:license": [{"@id": u} for u in licence_uris],
            "dct:rights": {"@type": "dct:RightsStatement", "rdfs:label": rights},
            **({"dct:modified": {"@value": mod, "@type": "xsd:dateTime"}} if mod else {}),
        }
        for fmt in FORMATS
    ]
    distributions.append({
        "@id": f"{base}/api",
        "@type": "dcat:Distribution",
        "dct:title": "JSON / GeoJSON API",
        "dcat:accessURL": {"@id": f"{base}/api"},
        "dcat:accessService": {"@type": "dcat:DataService", "dcat:endpointURL": {"@id": f"{base}/api"},
                               "dcat:endpointDescription": {"@id": f"{base}/api/openapi.json"}},
        "dcat:mediaType": {"@id": "https://www.iana.org/assignments/media-types/application/geo+json"},
        "dct:license": [{"@id": u} for u in licence_uris],
    })
    return {
        "@context": {
            "dcat": "http://www.w3.org/ns/dcat#", "dct": "http://purl.org/dc/terms/",
            "foaf": "http://xmlns.com/foaf/0.1/", "locn": "http://www.w3.org/ns/locn#",
            "gsp": "http://www.opengis.net/ont/geosparql#", "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
            "xsd": "http://www.w3.org/2001/XMLSchema#",
        },
        "@id": f"{base}/datasets/catalog.jsonld",
        "@type": "dcat:Catalog",
        "dct:title": "Atvira open data",
        "dct:description": "Public-friendly facilities: day centres, kindergartens, playgrounds, baby rooms, "
                           "free toilets and public institutions open to citizens.",
        "dct:publisher": {"@type": "foaf:Agent", "foaf:name": "Atvira"},
        "dcat:dataset": [{
            "@id": f"{base}/datasets#facilities",
            "@type": "dcat:Dataset",
            "dct:title": "Public-friendly facilities",
            "dct:description": "One record per facility with categories, features, opening hours, municipality "
                               "and eldership, sector, status, and every source record with its licence.",
            "dcat:keyword": ["playground", "kindergarten", "baby room", "toilet", "accessibility", "Lithuania"],
            "dct:spatial": spatial,
            "dct:accrualPeriodicity": {"@id": "http://publications.europa.eu/resource/authority/frequency/IRREG"},
            "dct:license": [{"@id": u} for u in licence_uris],
            "dct:rights": {"@type": "dct:RightsStatement", "rdfs:label": rights},
            **({"dct:modified": {"@value": mod, "@type": "xsd:dateTime"}} if mod else {}),
            "dcat:distribution": distributions,
        }],
    }


def datapackage(conn: sqlite3.Connection, *, base_url: str) -> dict[str, Any]:
    """A Frictionless Data Package describing the CSV download's fields and types."""
    base = base_url.rstrip("/")
    lic = licences(conn)
    return {
        "name": "atvira-facilities",
        "title": "Atvira: public-friendly facilities",
        "profile": "tabular-data-package",
        "licenses": [{"name": e["licence"], "title": e["title"], **({"path": e["url"]} if e["url"] else {})} for e in lic],
        "sources": [{"title": e["source_name"], **({"path": e["url"]} if e["url"] else {})} for e in lic],
        "resources": [{
            "name": "facilities",
            "path": f"{base}/downloads/facilities.csv",
            "profile": "tabular-data-resource",
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8-sig",
            "dialect": {"delimiter": ",", "quoteChar": '"', "doubleQuote": True, "lineTerminator": "\r\n", "header": True},
            "schema": {
                "fields": [{"name": c.name, "type": c.type, "description": c.description,
                            **({"format": "default"} if c.type != "datetime" else {})} for c in COLUMNS],
                "primaryKey": ["id"],
                "missingValues": [""],
            },
        }],
    }


DATASETTE_FACETS = ("sector", "status", "municipality_code", "source", "licence")


def datasette_metadata(conn: sqlite3.Connection, *, database: str = "facilities") -> dict[str, Any]:
    """Datasette's metadata for the download: title, licences and sources, and the facilities
    table's search and facets (categories is a JSON array: an array facet)."""
    lic = licences(conn)
    sources = sorted({entry["source"] for entry in lic})
    return {
        "title": "Atvira: public-friendly facilities",
        "description": "Day centres, kindergartens, playgrounds, baby rooms, toilets and public institutions, "
                       "with the source, licence and last-verified date of every row.",
        "license": "; ".join(dict.fromkeys(e["title"] for e in lic)) or None,
        "license_url": next((e["url"] for e in lic if e.get("url")), None),
        "source": ", ".join(sources) or None,
        "databases": {
            database: {
                "tables": {
                    "facilities": {
                        "description": "One row per facility; `sources` in the CSV/GeoJSON list every record.",
                        "fts_table": "facilities_fts",
                        "fts_pk": "rid",
                        "facets": [*DATASETTE_FACETS, {"array": "categories"}],
                        "sortable_columns": ["name", "updated_at", "last_verified"],
                        "label_column": "name",
                    },
                },
            },
        },
    }
