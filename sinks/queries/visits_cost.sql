-- name: visits_cost
-- description: Visits and average cost: outpatient visits (outpatient, emergency, internet) and inpatient stays (latest versions, cancelled excluded), average cost per outpatient visit and per stay, and self-pay share = patient self-pay / total cost.
-- parameters: level String (province|city|county|institution), date_from Date, date_to Date, by_day UInt8
-- grain: unit x day (day = date_to when by_day = 0)
SELECT
    multiIf({level:String} = 'province', concat(substring(county_code, 1, 2), '0000'),
            {level:String} = 'city', city_code, {level:String} = 'county', county_code, institution_code) AS unit,
    if({by_day:UInt8} = 1, toDate(event_time, 'Asia/Shanghai'), {date_to:Date}) AS day,
    countIf(med_type != 'inpatient') AS outpatient_visits,
    countIf(med_type = 'inpatient') AS inpatient_stays,
    round(sumIf(medfee_sumamt, med_type != 'inpatient') / nullIf(countIf(med_type != 'inpatient'), 0), 2) AS avg_cost_per_visit,
    round(sumIf(medfee_sumamt, med_type = 'inpatient') / nullIf(countIf(med_type = 'inpatient'), 0), 2) AS avg_cost_per_stay,
    sum(medfee_sumamt) AS total_cost,
    round(toFloat64(sum(psn_selfpay_amt)) / nullIf(toFloat64(sum(medfee_sumamt)), 0), 4) AS self_pay_share
FROM encounters FINAL
WHERE status != 'cancelled' AND toDate(event_time, 'Asia/Shanghai') BETWEEN {date_from:Date} AND {date_to:Date}
GROUP BY unit, day
ORDER BY unit, day
