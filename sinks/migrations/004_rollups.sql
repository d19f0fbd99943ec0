-- Rollups by day (Beijing business day) x institution x record type, fed by materialized views
-- with explicit targets. Every measure is idempotent (uniqExact states) so re-emitted or
-- re-delivered rows never inflate them; money indicators are read from the facts with FINAL.

CREATE TABLE IF NOT EXISTS ${db}.daily_records ${on_cluster}
(
    day Date COMMENT 'class=public; 业务日期(北京时间)',
    institution_code LowCardinality(String) COMMENT 'class=public; 定点医疗机构编码',
    county_code LowCardinality(String) COMMENT 'class=public; 县级区划',
    city_code LowCardinality(String) COMMENT 'class=public; 地级区划',
    record_type LowCardinality(String) COMMENT 'class=public; 记录类型',
    records AggregateFunction(uniqExact, String) COMMENT 'class=public; 记录数(去重)',
    record_versions AggregateFunction(uniqExact, String, UInt32) COMMENT 'class=public; 记录版本数(去重)',
    latency_ms AggregateFunction(quantilesTDigest(0.5, 0.9, 0.99), Int64) COMMENT 'class=public; 上报延迟分布(毫秒)',
    last_received SimpleAggregateFunction(max, DateTime64(3, 'UTC')) COMMENT 'class=public; 最后接收时间'
)
ENGINE = ${engine:AggregatingMergeTree()}
PARTITION BY toYYYYMM(day)
ORDER BY (day, institution_code, record_type, county_code, city_code)
COMMENT 'class=public; 日×机构×类型 记录量与时效';

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_daily_encounters ${on_cluster} TO ${db}.daily_records AS
SELECT toDate(event_time, 'Asia/Shanghai') AS day, institution_code, county_code, city_code,
       'encounter' AS record_type,
       uniqExactState(record_id) AS records,
       uniqExactState(record_id, version) AS record_versions,
       quantilesTDigestState(0.5, 0.9, 0.99)(toInt64(dateDiff('millisecond', event_time, received_time))) AS latency_ms,
       max(received_time) AS last_received
FROM ${db}.encounters
GROUP BY day, institution_code, county_code, city_code;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_daily_prescriptions ${on_cluster} TO ${db}.daily_records AS
SELECT toDate(event_time, 'Asia/Shanghai') AS day, institution_code, county_code, city_code,
       'prescription' AS record_type,
       uniqExactState(record_id) AS records,
       uniqExactState(record_id, version) AS record_versions,
       quantilesTDigestState(0.5, 0.9, 0.99)(toInt64(dateDiff('millisecond', event_time, received_time))) AS latency_ms,
       max(received_time) AS last_received
FROM ${db}.prescription_items
GROUP BY day, institution_code, county_code, city_code;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_daily_charges ${on_cluster} TO ${db}.daily_records AS
SELECT toDate(event_time, 'Asia/Shanghai') AS day, institution_code, county_code, city_code,
       'charge' AS record_type,
       uniqExactState(record_id) AS records,
       uniqExactState(record_id, version) AS record_versions,
       quantilesTDigestState(0.5, 0.9, 0.99)(toInt64(dateDiff('millisecond', event_time, received_time))) AS latency_ms,
       max(received_time) AS last_received
FROM ${db}.charges
GROUP BY day, institution_code, county_code, city_code;

CREATE TABLE IF NOT EXISTS ${db}.daily_quality ${on_cluster}
(
    day Date COMMENT 'class=public; 业务日期(北京时间)',
    institution_code LowCardinality(String) COMMENT 'class=public; 定点医疗机构编码',
    county_code LowCardinality(String) COMMENT 'class=public; 县级区划',
    city_code LowCardinality(String) COMMENT 'class=public; 地级区划',
    record_type LowCardinality(String) COMMENT 'class=public; 记录类型',
    dimension LowCardinality(String) COMMENT 'class=public; 质量维度',
    severity LowCardinality(String) COMMENT 'class=public; 严重程度',
    issues AggregateFunction(uniqExact, String) COMMENT 'class=public; 问题数(去重)',
    records AggregateFunction(uniqExact, String) COMMENT 'class=public; 涉及记录数(去重)'
)
ENGINE = ${engine:AggregatingMergeTree()}
PARTITION BY toYYYYMM(day)
ORDER BY (day, institution_code, record_type, dimension, severity, county_code, city_code)
COMMENT 'class=public; 日×机构×类型×维度 质量问题';

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_daily_quality ${on_cluster} TO ${db}.daily_quality AS
SELECT toDate(event_time, 'Asia/Shanghai') AS day, institution_code, county_code, city_code,
       record_type, dimension, severity,
       uniqExactState(issue_id) AS issues,
       uniqExactStateIf(record_id, record_id != '') AS records
FROM ${db}.quality_issues
GROUP BY day, institution_code, county_code, city_code, record_type, dimension, severity;

CREATE TABLE IF NOT EXISTS ${db}.daily_findings ${on_cluster}
(
    day Date COMMENT 'class=public; 业务日期(北京时间)',
    institution_code LowCardinality(String) COMMENT 'class=public; 定点医疗机构编码',
    county_code LowCardinality(String) COMMENT 'class=public; 县级区划',
    city_code LowCardinality(String) COMMENT 'class=public; 地级区划',
    record_type LowCardinality(String) COMMENT 'class=public; 记录类型',
    rule_id LowCardinality(String) COMMENT 'class=public; 规则ID',
    severity LowCardinality(String) COMMENT 'class=public; 严重程度',
    findings AggregateFunction(uniqExact, String) COMMENT 'class=public; 命中数(去重)'
)
ENGINE = ${engine:AggregatingMergeTree()}
PARTITION BY toYYYYMM(day)
ORDER BY (day, institution_code, record_type, rule_id, severity, county_code, city_code)
COMMENT 'class=public; 日×机构×类型×规则 命中数';

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_daily_findings ${on_cluster} TO ${db}.daily_findings AS
SELECT toDate(event_time, 'Asia/Shanghai') AS day, institution_code, county_code, city_code,
       record_type, rule_id, severity,
       uniqExactState(finding_id) AS findings
FROM ${db}.findings
GROUP BY day, institution_code, county_code, city_code, record_type, rule_id, severity;
