-- yijian: ClickHouse roles and row policies (run as `admin` after `yijian db migrate`).
-- Applied by the Job clickhouse-security (Kubernetes) and the `clickhouse-security` service (compose).
-- Idempotent: every statement is IF NOT EXISTS / OR REPLACE; re-run after editing.
--
-- Service users (admin, sink, dashboard) are defined in XML (users.d / the ClickHouseInstallation);
-- analysts are SQL users created below with a role. A region role sees only its region's rows:
-- every fact table carries city_code and county_code (see sinks/migrations).
-- Row policies are created on the local tables; queries through the Distributed *_all tables run on
-- each shard as the initial user (cluster secret), so the same policies apply there.
-- For every city and county of a province, sinks' generator writes the full set
-- (yijian.sinks.migrate.security_sql); this file carries the province role and one city as the pattern.

CREATE ROLE IF NOT EXISTS yijian_analyst_province ON CLUSTER yijian;
GRANT ON CLUSTER yijian SELECT ON yijian.* TO yijian_analyst_province;

-- 贵阳市 (520100): the pattern for a city; a county uses county_code instead.
CREATE ROLE IF NOT EXISTS yijian_analyst_city_520100 ON CLUSTER yijian;
GRANT ON CLUSTER yijian SELECT ON yijian.* TO yijian_analyst_city_520100;
CREATE ROW POLICY OR REPLACE rp_520100 ON CLUSTER yijian ON yijian.encounters, yijian.prescription_items, yijian.charges, yijian.quality_issues, yijian.findings, yijian.rejected, yijian.finding_handling, yijian.daily_records, yijian.daily_quality, yijian.daily_findings FOR SELECT USING city_code = '520100' TO yijian_analyst_city_520100;

-- Once a table has a row policy, users without a permissive policy see no rows of it: give
-- everyone except the region roles the whole table (service users, the province role, admins).
CREATE ROW POLICY OR REPLACE rp_all ON CLUSTER yijian ON yijian.encounters, yijian.prescription_items, yijian.charges, yijian.quality_issues, yijian.findings, yijian.rejected, yijian.finding_handling, yijian.daily_records, yijian.daily_quality, yijian.daily_findings FOR SELECT USING 1 TO ALL EXCEPT yijian_analyst_city_520100;

-- Analysts: create each with a password from your secret store, e.g.
--   CREATE USER IF NOT EXISTS analyst_gy ON CLUSTER yijian IDENTIFIED WITH sha256_password BY '<from vault>'
--     DEFAULT ROLE yijian_analyst_city_520100;
--   GRANT ON CLUSTER yijian yijian_analyst_city_520100 TO analyst_gy;
-- Quotas bound what one analyst can cost:
CREATE QUOTA IF NOT EXISTS yijian_analyst_quota ON CLUSTER yijian FOR INTERVAL 1 hour MAX queries = 2000, execution_time = 3600 TO yijian_analyst_province, yijian_analyst_city_520100;
