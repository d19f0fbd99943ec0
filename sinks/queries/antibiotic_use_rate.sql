-- name: antibiotic_use_rate
-- description: Antibiotic use rate = outpatient/emergency prescriptions with at least one antibiotic item / all such prescriptions (latest version of each prescription only; cancelled excluded; items dropped by a correction are ignored).
-- parameters: level String (province|city|county|institution), date_from Date, date_to Date, by_day UInt8
-- grain: unit x day (day = date_to when by_day = 0)
WITH rx AS (
    SELECT institution_code, any(county_code) AS county_code, any(city_code) AS city_code, record_id,
           min(event_time) AS first_time, max(antibiotic_tier != 'none') AS has_antibiotic
    FROM prescription_items FINAL
    WHERE status != 'cancelled' AND med_type IN ('outpatient', 'emergency')
      AND toDate(event_time, 'Asia/Shanghai') BETWEEN {date_from:Date} AND {date_to:Date}
      AND (institution_code, record_id, version) IN (
          SELECT institution_code, record_id, max(version) FROM prescription_items GROUP BY institution_code, record_id)
    GROUP BY institution_code, record_id
)
SELECT
    multiIf({level:String} = 'province', concat(substring(county_code, 1, 2), '0000'),
            {level:String} = 'city', city_code, {level:String} = 'county', county_code, institution_code) AS unit,
    if({by_day:UInt8} = 1, toDate(first_time, 'Asia/Shanghai'), {date_to:Date}) AS day,
    count() AS prescriptions,
    sum(has_antibiotic) AS with_antibiotic,
    round(sum(has_antibiotic) / count(), 4) AS antibiotic_use_rate
FROM rx
GROUP BY unit, day
ORDER BY unit, day
