"""ClickHouse store: migrations on the embedded engine, cluster DDL syntax, classification, regions."""

from __future__ import annotations

import pytest

from yijian.sinks.client import make_client
from yijian.sinks.migrate import migrate, migrations, read_regions, rendered_statements, security_sql, statements

BASE_TABLES = ("encounters", "prescription_items", "charges", "quality_issues", "findings", "rejected", "finding_handling",
               "regions", "institutions", "daily_records", "daily_quality", "daily_findings", "schema_migrations")


def test_local_profile_applies_to_empty_db_and_reapplies_idempotently(settings):
    client = make_client(settings)
    first = migrate(settings, client=client)
    assert first.applied == [m.path.name for m in migrations("local")]
    assert first.seeded == ["regions_520000.csv"]
    second = migrate(settings, client=client)
    assert second.applied == [] and second.seeded == []
    assert second.skipped == first.applied
    tables = {r[0] for r in client.query("SELECT name FROM system.tables WHERE database = {d:String}", parameters={"d": settings.clickhouse_database}).result_rows}
    assert set(BASE_TABLES) <= tables
    assert {"mv_daily_encounters", "mv_daily_prescriptions", "mv_daily_charges", "mv_daily_quality", "mv_daily_findings"} <= tables
    assert not any(t.endswith("_all") for t in tables), "Distributed tables are cluster-only"
    # ledger has one row per file + the seed
    assert client.query(f"SELECT count() FROM {settings.clickhouse_database}.schema_migrations FINAL").result_rows[0][0] == len(first.applied) + 1


def test_every_column_is_classified(settings):
    client = make_client(settings)
    migrate(settings, client=client)
    rows = client.query(
        "SELECT table, name, comment FROM system.columns WHERE database = {d:String} AND table IN {t:Array(String)}",
        parameters={"d": settings.clickhouse_database, "t": list(BASE_TABLES)},
    ).result_rows
    assert len(rows) > 150
    bad = [(t, c, cm) for t, c, cm in rows if not cm.split(";")[0] in ("class=public", "class=internal", "class=sensitive")]
    assert bad == []
    sensitive = {c for t, c, cm in rows if cm.startswith("class=sensitive")}
    assert "patient_pseudonym" in sensitive
    names = {c for _, c, _ in rows}
    assert not names & {"psn_name", "certno", "patient_name", "id_number"}, "no names or ID numbers in analytics"


def test_regions_seed_has_all_guizhou_counties_and_maps_history_forward(settings):
    client = make_client(settings)
    migrate(settings, client=client)
    db = settings.clickhouse_database
    rows = client.query(f"SELECT level, count() FROM {db}.regions FINAL WHERE valid_to IS NULL GROUP BY level ORDER BY level").result_rows
    assert dict(rows) == {"city": 9, "county": 88, "province": 1}
    cur = dict(client.query(f"SELECT code, current_code FROM {db}.regions FINAL WHERE valid_to IS NOT NULL").result_rows)
    assert cur["520522"] == "520581"  # 黔西县 → 黔西市
    assert cur["520221"] == "520204"  # 水城县 → 水城区
    assert cur["522423"] == "520581"  # 毕节地区黔西县 → 黔西县 → 黔西市 (chain resolved)
    per_city = dict(client.query(f"SELECT city_code, count() FROM {db}.regions FINAL WHERE level = 'county' AND valid_to IS NULL GROUP BY city_code").result_rows)
    assert per_city == {"520100": 10, "520200": 4, "520300": 14, "520400": 6, "520500": 8, "520600": 10, "522300": 8, "522600": 16, "522700": 12}
    assert sum(1 for r in read_regions() if r["level"] == "county" and not r["valid_to"]) == 88


def test_cluster_rendering_is_valid_clickhouse_syntax(settings):
    client = make_client(settings)
    stmts = rendered_statements("cluster", "yijian", "prod")
    text = "\n".join(s for _, s in stmts)
    assert "ON CLUSTER prod" in text
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', version)" in text
    assert "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')" in text
    assert "Distributed('prod', 'yijian', 'encounters', cityHash64(institution_code))" in text
    assert "${" not in text
    for mig, stmt in stmts:
        formatted = client.query("SELECT formatQuery({q:String})", parameters={"q": stmt}).result_rows[0][0]
        assert formatted.startswith("CREATE"), mig.path.name
    # the check can fail: a broken statement is rejected by the parser
    with pytest.raises(Exception):
        client.query("SELECT formatQuery({q:String})", parameters={"q": stmts[0][1].replace("ENGINE =", "ENGINE = = ")})
    local = "\n".join(s for _, s in rendered_statements("local", "yijian"))
    assert "Replicated" not in local and "ON CLUSTER" not in local and "Distributed" not in local


def test_security_ddl_parses_but_needs_a_real_server(settings):
    client = make_client(settings)
    sql = security_sql("yijian")
    stmts = statements(sql)
    assert sum(s.startswith("CREATE ROW POLICY") for s in stmts) == 10 * (9 + 88) + 10
    assert "USING city_code = '520100' TO yijian_analyst_city_520100" in sql
    assert "USING county_code = '520581' TO yijian_analyst_county_520581" in sql
    for s in stmts[:5] + [s for s in stmts if "ROW POLICY" in s][:3]:
        client.query("SELECT formatQuery({q:String})", parameters={"q": s})
    # chdb refuses SQL access control: this is why the file is for a real server only
    with pytest.raises(Exception, match="(?i)privilege|denied|ACCESS"):
        client.command("CREATE ROLE IF NOT EXISTS yijian_test_role")
