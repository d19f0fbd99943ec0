-- name: drug_cost_share
-- description: Drug cost share (药占比) = drug charge amounts / all charge amounts, from charge lines (latest versions, cancelled excluded); also the fully self-paid share of charges.
-- parameters: level String (province|city|county|institution), date_from Date, date_to Date, by_day UInt8
-- grain: unit x day (day = date_to when by_day = 0)
SELECT
    multiIf({level:String} = 'province', concat(substring(county_code, 1, 2), '0000'),
            {level:String} = 'city', city_code, {level:String} = 'county', county_code, institution_code) AS unit,
    if({by_day:UInt8} = 1, toDate(event_time, 'Asia/Shanghai'), {date_to:Date}) AS day,
    sumIf(det_item_fee_sumamt, item_type = 'drug') AS drug_amount,
    sum(det_item_fee_sumamt) AS total_amount,
    round(toFloat64(sumIf(det_item_fee_sumamt, item_type = 'drug')) / nullIf(toFloat64(sum(det_item_fee_sumamt)), 0), 4) AS drug_cost_share,
    round(toFloat64(sum(fulamt_ownpay_amt)) / nullIf(toFloat64(sum(det_item_fee_sumamt)), 0), 4) AS fully_self_paid_share
FROM charges FINAL
WHERE status != 'cancelled' AND toDate(event_time, 'Asia/Shanghai') BETWEEN {date_from:Date} AND {date_to:Date}
GROUP BY unit, day
ORDER BY unit, day
