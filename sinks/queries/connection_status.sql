-- name: connection_status
-- description: Connection status per institution: last received record, connection-dimension quality issues (no heartbeat, sequence gaps) in the window; status = 'issue' if such an issue exists, 'silent' if nothing was received for stale_hours before as_of, else 'connected'.
-- parameters: date_from Date, date_to Date, as_of DateTime64(3, 'UTC'), stale_hours UInt32
-- grain: one row per institution seen
WITH
last AS (
    SELECT institution_code, any(county_code) AS county_code, any(city_code) AS city_code, max(last_received) AS last_received
    FROM daily_records
    GROUP BY institution_code
),
conn AS (
    SELECT institution_code, uniqExact(issue_id) AS connection_issues, max(processed_time) AS last_issue
    FROM quality_issues FINAL
    WHERE dimension = 'connection' AND toDate(event_time, 'Asia/Shanghai') BETWEEN {date_from:Date} AND {date_to:Date}
    GROUP BY institution_code
)
SELECT
    i.institution_code AS institution_code,
    i.county_code AS county_code,
    i.city_code AS city_code,
    l.last_received AS last_received,
    c.connection_issues AS connection_issues,
    multiIf(c.connection_issues > 0, 'issue',
            l.last_received < {as_of:DateTime64(3, 'UTC')} - toIntervalHour({stale_hours:UInt32}), 'silent',
            'connected') AS status
FROM (SELECT institution_code, argMax(county_code, updated_time) AS county_code, argMax(city_code, updated_time) AS city_code FROM institutions GROUP BY institution_code) AS i
LEFT JOIN last AS l ON l.institution_code = i.institution_code
LEFT JOIN conn AS c ON c.institution_code = i.institution_code
ORDER BY status, institution_code
