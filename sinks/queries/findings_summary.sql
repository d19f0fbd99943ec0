-- name: findings_summary
-- description: Rule findings by rule, severity and unit, with the amounts involved (vola_amt) and how many the hospitals handled (acknowledged / explained).
-- parameters: level String (province|city|county|institution), date_from Date, date_to Date
-- grain: unit x rule x severity
SELECT
    multiIf({level:String} = 'province', concat(substring(f.county_code, 1, 2), '0000'),
            {level:String} = 'city', f.city_code, {level:String} = 'county', f.county_code, f.institution_code) AS unit,
    f.rule_id AS rule_id,
    any(f.rule_name) AS rule_name,
    f.severity AS severity,
    count() AS findings,
    sum(f.vola_amt) AS vola_amt,
    countIf(h.feedback_id != '') AS handled,
    uniqExact(f.institution_code) AS institutions
FROM findings AS f FINAL
LEFT JOIN (SELECT feedback_id, institution_code FROM finding_handling FINAL) AS h
    ON h.feedback_id = f.finding_id AND h.institution_code = f.institution_code
WHERE toDate(f.event_time, 'Asia/Shanghai') BETWEEN {date_from:Date} AND {date_to:Date}
GROUP BY unit, rule_id, severity
ORDER BY findings DESC, unit, rule_id
