"""`atvira audit [MUNICIPALITY]`: the audit's numbers in the terminal, read from the same stored
tables as the pages (`directory.audit_report`); `--recompute` runs `directory.audit.recompute`."""

from __future__ import annotations

import json

import click

from .. import audit as core
from .. import audit_report as report
from ..areas_store import find_area
from ..audit_report import fmt
from ..config import Settings
from ..derived import refresh_derived, stale_parts
from ..errors import NotFound
from ..store import connect
from .base import pass_settings


@click.command("audit")
@click.argument("municipality", required=False)
@click.option("--category", default="kindergarten", show_default=True,
              help="Category for the municipality table and the elderships.")
@click.option("--sort", default="name", show_default=True,
              help="Column to sort the table by; prefix '-' for descending (e.g. -per_10k).")
@click.option("--recompute", is_flag=True, help="Recompute the stored audit first (ingests do this themselves).")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON the API serves instead of a table.")
@pass_settings
def audit(cfg: Settings, municipality: str | None, category: str, sort: str, recompute: bool,
          as_json: bool) -> None:
    """The municipal openness audit: all municipalities, or one MUNICIPALITY (code or name)."""
    category = report.check_category(category, param="--category")
    key, descending = report.check_sort(sort, param="--sort")
    # Any stale derived data (e.g. after a crash between a run's commit and its refresh) is
    # repaired first, so the figures printed are the store's current ones.
    stale = set(stale_parts(connect(cfg.db, readonly=True))) & {"map", "audit"}
    derived = (refresh_derived(connect(cfg.db), cfg, force=("audit",) if recompute else (), snapshot=False)
               if recompute or stale else None)
    if derived is not None and "audit" in derived.done:
        summary = core.computed(connect(cfg.db, readonly=True))
        click.echo(f"audit recomputed in {derived.done['audit']:.2f}s "
                   f"({summary.get('municipalities')} municipalities, {summary.get('institutions')} institutions)",
                   err=True)
    conn = connect(cfg.db, readonly=True)
    if municipality:
        if conn.execute("SELECT 1 FROM areas WHERE level = 'municipality' LIMIT 1").fetchone() is None:
            raise NotFound("no areas are loaded in this store, so no municipality can be found; load them with"
                           " `atvira areas load --from ../shared/data/govlt-powerbi-map-lt` (or `atvira areas load`"
                           " to download them), then run the audit again", where="MUNICIPALITY")
        found = find_area(conn, municipality)
        if found is None or found["level"] != "municipality":
            raise NotFound(f"no municipality named or coded {municipality!r}", where="MUNICIPALITY")
        data = report.municipality(conn, found["code"], category=category, institutions_limit=None if as_json else 0)
        if as_json:
            click.echo(json.dumps(data, ensure_ascii=False, indent=1))
        else:
            _print_municipality(data)
        return
    rows = report.municipalities(conn, category=category, sort=key, descending=descending)
    if as_json:
        click.echo(json.dumps({"national": report.national(conn, category=category), "municipalities": rows},
                              ensure_ascii=False, indent=1))
        return
    click.echo(f"{'code':>4}  {'municipality':<28} {'population':>10} {category[:12]:>12} {'per 10k':>8}"
               f" {'rank':>4} {'uncovered':>9} {'checklist':>9} {'no hours':>8}")
    for r in rows:
        click.echo(f"{r['code']:>4}  {r['name']:<28} {fmt(r['population'], 'count'):>10} {r['count']:>12}"
                   f" {fmt(r['per_10k'], 'rate'):>8} {r['rank'] or '—':>4}"
                   f" {fmt(r['share_population_uncovered'], 'share'):>9} {_score(r['checklist_status'], r['checklist_score']):>9}"
                   f" {fmt(r['missing_hours_share'], 'share'):>8}")
    ranked = rows[0]["ranked_of"] if rows else 0
    rules = report.checklist_rules()
    click.echo(f"rank: by per 10k among the {ranked} municipalities with at least one {category} (ties share a"
               f" rank; none: —). checklist: {', '.join(rules['categories'])} only; a score needs at least"
               f" {fmt(rules['min_known_share'], 'share')} of the points known ('too few' otherwise)")
    n = report.national(conn, category=category)["indicators"]
    if n:
        click.echo(f"Lithuania: {n['count']} {category}, {fmt(n['per_10k'], 'rate')} per 10,000,"
                   f" median municipality {fmt(n['median_per_10k'], 'rate')},"
                   f" {fmt(n['share_population_uncovered'], 'share')} of residents in elderships with none")


def _score(status: str, score: float | None) -> str:
    return "too few" if status == "too_few_known" else fmt(score, "score")


def _rank(rank: int | None, of: int) -> str:
    return f"{rank}/{of}" if rank else "—"


def _print_municipality(d: dict) -> None:
    click.echo(f"{d['name']} ({d['code']}), {d['county'] or ''}, population {fmt(d['population'], 'count')}")
    click.echo(f"{'category':<17} {'count':>6} {'per 10k':>8} {'median':>8} {'county':>8} {'rank':>7}"
               f" {'eld. none':>9} {'uncovered':>17} {'per child':>9}")
    for i in d["indicators"]:
        m = i["municipality"] or {}
        uncovered = f"{fmt(m.get('population_uncovered'), 'count')} ({fmt(m.get('share_population_uncovered'), 'share')})"
        click.echo(f"{i['category']:<17} {m.get('count', 0):>6} {fmt(m.get('per_10k'), 'rate'):>8}"
                   f" {fmt(i['median_per_10k'], 'rate'):>8} {fmt(i['county_per_10k'], 'rate'):>8}"
                   f" {_rank(m.get('rank'), i['ranked_of']):>7} {str(m.get('elderships_none', 0)) + '/' + str(m.get('elderships', 0)):>9}"
                   f" {uncovered:>17} {fmt(m.get('capacity_per_child'), 'ratio'):>9}")
    c = d["checklist"]
    score = (f"checklist score {fmt(c['score'], 'score')} of known points" if c["score_status"] == "scored" else
             f"checklist score: too few known points ({c['known_points']} known, {c['points_needed']} needed)")
    click.echo(f"public institutions: {c['institutions']}; {score},"
               f" {fmt(c['coverage'], 'share')} of points known; {c['meets_all']} meet every point")
    for key, counts in c["points"].items():
        click.echo(f"  {key:<16} yes {counts['yes']:>6}  no {counts['no']:>6}  unknown {counts['unknown']:>6}")
    q = d["quality"]
    click.echo(f"data quality ({q['facilities']} facilities): "
               + ", ".join(f"{k} {q[k]} ({fmt(q[k + '_share'], 'share')})" for k in core.QUALITY_PROBLEMS)
               + ("" if q["conflicts_tracked"] else " [conflicts not tracked yet: counted as 0]"))
    gaps = d["gaps"]
    click.echo(f"gaps ({d['category']}): {len(gaps)} populated elderships with none"
               + (": " + ", ".join(g["name"] for g in gaps) if gaps else ""))
