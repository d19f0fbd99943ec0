-- name: institution_detail
-- description: Drill-down for one institution: per day, records by type (rollup), quality issues by dimension and findings (rollups).
-- parameters: institution String, date_from Date, date_to Date
-- grain: day
SELECT d.day AS day,
       d.encounters AS encounters, d.prescriptions AS prescriptions, d.charges AS charges,
       q.issues AS quality_issues, f.findings AS findings
FROM (
    SELECT day,
           uniqExactMergeIf(records, record_type = 'encounter') AS encounters,
           uniqExactMergeIf(records, record_type = 'prescription') AS prescriptions,
           uniqExactMergeIf(records, record_type = 'charge') AS charges
    FROM daily_records
    WHERE institution_code = {institution:String} AND day BETWEEN {date_from:Date} AND {date_to:Date}
    GROUP BY day
) AS d
LEFT JOIN (
    SELECT day, uniqExactMerge(issues) AS issues FROM daily_quality
    WHERE institution_code = {institution:String} AND day BETWEEN {date_from:Date} AND {date_to:Date} GROUP BY day
) AS q ON q.day = d.day
LEFT JOIN (
    SELECT day, uniqExactMerge(findings) AS findings FROM daily_findings
    WHERE institution_code = {institution:String} AND day BETWEEN {date_from:Date} AND {date_to:Date} GROUP BY day
) AS f ON f.day = d.day
ORDER BY day
