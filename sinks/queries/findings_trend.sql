-- name: findings_trend
-- description: Findings per day and severity (from the daily_findings rollup), optionally for one unit.
-- parameters: level String (province|city|county|institution), unit String ('' = all), date_from Date, date_to Date
-- grain: day x severity
SELECT day, severity, uniqExactMerge(findings) AS findings
FROM daily_findings
WHERE day BETWEEN {date_from:Date} AND {date_to:Date}
  AND ({unit:String} = ''
       OR multiIf({level:String} = 'province', concat(substring(county_code, 1, 2), '0000'),
                  {level:String} = 'city', city_code, {level:String} = 'county', county_code, institution_code) = {unit:String})
GROUP BY day, severity
ORDER BY day, severity
