-- name: timeliness
-- description: Reporting latency (received - event time) percentiles and on-time rate per unit and day, from the daily_records rollup (percentiles: t-digest, approximate) and the facts (on-time rate of encounters: not flagged late by the processors, whose SLA is per record type; latest versions).
-- parameters: level String (province|city|county|institution), date_from Date, date_to Date, by_day UInt8 (1: one row per day)
-- grain: unit x day (day = date_to when by_day = 0)
WITH
lat AS (
    SELECT
        multiIf({level:String} = 'province', concat(substring(county_code, 1, 2), '0000'),
                {level:String} = 'city', city_code, {level:String} = 'county', county_code, institution_code) AS unit,
        if({by_day:UInt8} = 1, day, {date_to:Date}) AS d,
        quantilesTDigestMerge(0.5, 0.9, 0.99)(latency_ms) AS q,
        uniqExactMerge(records) AS records
    FROM daily_records
    WHERE day BETWEEN {date_from:Date} AND {date_to:Date}
    GROUP BY unit, d
),
ontime AS (
    SELECT
        multiIf({level:String} = 'province', concat(substring(county_code, 1, 2), '0000'),
                {level:String} = 'city', city_code, {level:String} = 'county', county_code, institution_code) AS unit,
        if({by_day:UInt8} = 1, toDate(event_time, 'Asia/Shanghai'), {date_to:Date}) AS d,
        countIf((institution_code, record_id) NOT IN (
            SELECT institution_code, record_id FROM quality_issues FINAL WHERE record_type = 'encounter' AND code = 'late')) / count() AS on_time_rate
    FROM encounters FINAL
    WHERE status != 'cancelled' AND toDate(event_time, 'Asia/Shanghai') BETWEEN {date_from:Date} AND {date_to:Date}
    GROUP BY unit, d
)
SELECT lat.unit AS unit, lat.d AS day, lat.records AS records,
       round(lat.q[1] / 1000, 1) AS p50_seconds, round(lat.q[2] / 1000, 1) AS p90_seconds, round(lat.q[3] / 1000, 1) AS p99_seconds,
       round(ontime.on_time_rate, 4) AS encounter_on_time_rate
FROM lat LEFT JOIN ontime ON lat.unit = ontime.unit AND lat.d = ontime.d
ORDER BY unit, day
