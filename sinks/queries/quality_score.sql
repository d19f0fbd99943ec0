-- name: quality_score
-- description: Institution data-quality score and ranking (domain.md §3.4). Per unit: records (latest versions, cancelled excluded), completeness = 1 - records with a completeness issue / records; timeliness = 1 - records with a timeliness issue (processors' per-record-type SLA) / records; consistency and validity likewise from quality issues; mapping = 1 - records carrying unmapped local codes / records; score = 100 * weighted mean (weights are parameters, default from Settings.quality_weights); rank 1 = best.
-- parameters: level String (province|city|county|institution), date_from Date, date_to Date, w_completeness Float64, w_timeliness Float64, w_consistency Float64, w_validity Float64, w_mapping Float64
-- grain: one row per unit of the level
WITH
recs AS (
    SELECT institution_code, county_code, city_code, 'encounter' AS record_type, record_id, event_time, received_time, length(unmapped) > 0 AS unmapped_flag
    FROM encounters FINAL
    WHERE status != 'cancelled' AND toDate(event_time, 'Asia/Shanghai') BETWEEN {date_from:Date} AND {date_to:Date}
    UNION ALL
    SELECT institution_code, any(county_code), any(city_code), 'prescription', record_id, min(event_time), min(received_time), max(length(unmapped) > 0)
    FROM prescription_items FINAL
    WHERE status != 'cancelled' AND toDate(event_time, 'Asia/Shanghai') BETWEEN {date_from:Date} AND {date_to:Date}
    GROUP BY institution_code, record_id
    UNION ALL
    SELECT institution_code, county_code, city_code, 'charge', record_id, event_time, received_time, length(unmapped) > 0
    FROM charges FINAL
    WHERE status != 'cancelled' AND toDate(event_time, 'Asia/Shanghai') BETWEEN {date_from:Date} AND {date_to:Date}
),
iss AS (
    SELECT institution_code, record_type, record_id,
           max(dimension = 'completeness') AS completeness_issue,
           max(dimension = 'timeliness') AS timeliness_issue,
           max(dimension = 'consistency') AS consistency_issue,
           max(dimension = 'validity') AS validity_issue
    FROM quality_issues FINAL
    WHERE record_id != '' AND toDate(event_time, 'Asia/Shanghai') BETWEEN {date_from:Date} AND {date_to:Date}
    GROUP BY institution_code, record_type, record_id
),
per_unit AS (
    SELECT
        multiIf({level:String} = 'province', concat(substring(r.county_code, 1, 2), '0000'),
                {level:String} = 'city', r.city_code,
                {level:String} = 'county', r.county_code,
                r.institution_code) AS unit,
        count() AS records,
        uniqExact(r.institution_code) AS institutions,
        1 - sum(i.completeness_issue) / count() AS completeness,
        1 - sum(i.timeliness_issue) / count() AS timeliness,
        1 - sum(i.consistency_issue) / count() AS consistency,
        1 - sum(i.validity_issue) / count() AS validity,
        1 - sum(r.unmapped_flag) / count() AS mapping
    FROM recs AS r
    LEFT JOIN iss AS i ON r.institution_code = i.institution_code AND r.record_type = i.record_type AND r.record_id = i.record_id
    GROUP BY unit
)
SELECT
    p.unit AS unit,
    if(g.name = '', p.unit, g.name) AS unit_name,
    p.records AS records,
    p.institutions AS institutions,
    round(p.completeness, 4) AS completeness,
    round(p.timeliness, 4) AS timeliness,
    round(p.consistency, 4) AS consistency,
    round(p.validity, 4) AS validity,
    round(p.mapping, 4) AS mapping,
    round(100 * ({w_completeness:Float64} * p.completeness + {w_timeliness:Float64} * p.timeliness + {w_consistency:Float64} * p.consistency
           + {w_validity:Float64} * p.validity + {w_mapping:Float64} * p.mapping)
          / ({w_completeness:Float64} + {w_timeliness:Float64} + {w_consistency:Float64} + {w_validity:Float64} + {w_mapping:Float64}), 2) AS score,
    rank() OVER (ORDER BY score DESC) AS rank
FROM per_unit AS p
LEFT JOIN (SELECT code, argMax(name, seed_version) AS name FROM regions GROUP BY code) AS g ON g.code = p.unit
ORDER BY rank, unit
