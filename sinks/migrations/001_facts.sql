-- Fact tables: one row per record version (encounters, charges) or per prescription item.
-- ReplacingMergeTree(version): the latest version of a record wins (read with FINAL or argMax);
-- a re-delivered row with the same key and version collapses into one. Cancelled records keep
-- their row with status = 'cancelled'; analytics filter them out.
-- Placeholders (rendered by yijian.sinks.migrate): ${db} ${on_cluster} ${engine:...} ${dedup_window}

CREATE TABLE IF NOT EXISTS ${db}.encounters ${on_cluster}
(
    institution_code LowCardinality(String) COMMENT 'class=public; 定点医疗机构编码',
    county_code LowCardinality(String) COMMENT 'class=public; 机构所在县级区划',
    city_code LowCardinality(String) COMMENT 'class=public; 机构所在地级区划',
    institution_level UInt8 COMMENT 'class=public; 机构级别 1/2/3 (0 未知)',
    institution_type LowCardinality(String) COMMENT 'class=public; 机构类型',
    record_id String COMMENT 'class=internal; 就诊ID',
    version UInt32 COMMENT 'class=internal; 版本号',
    status LowCardinality(String) COMMENT 'class=internal; 记录状态 normal/corrected/cancelled',
    med_type LowCardinality(String) COMMENT 'class=public; 就诊类型',
    insutype LowCardinality(String) COMMENT 'class=public; 险种类型',
    patient_pseudonym String COMMENT 'class=sensitive; 患者假名 (HMAC-SM3)',
    patient_sex LowCardinality(String) COMMENT 'class=sensitive; 性别',
    patient_age UInt8 COMMENT 'class=sensitive; 年龄(岁)',
    patient_region_code LowCardinality(String) COMMENT 'class=sensitive; 患者户籍区划(身份证前6位)',
    patient_id_valid Bool COMMENT 'class=internal; 身份证号校验通过',
    dept_code String COMMENT 'class=internal; 科室编码(院内)',
    dept_std String COMMENT 'class=public; 科别(标准)',
    atddr_code String COMMENT 'class=internal; 主诊医师代码',
    begntime DateTime64(3, 'UTC') COMMENT 'class=internal; 就诊/入院时间',
    endtime Nullable(DateTime64(3, 'UTC')) COMMENT 'class=internal; 结束/出院时间',
    main_diag_code String COMMENT 'class=internal; 主诊断(院内码)',
    main_diag_icd String COMMENT 'class=internal; 主诊断ICD-10医保版 ("" 未映射)',
    diag_icd Array(String) COMMENT 'class=internal; 全部诊断ICD-10 ("" 未映射)',
    oprn_icd9 Array(String) COMMENT 'class=internal; 手术操作ICD-9-CM-3',
    fst_visit_flag Nullable(Bool) COMMENT 'class=internal; 初诊标志',
    rinp_plan_flag Nullable(Bool) COMMENT 'class=internal; 计划再住院标志',
    medfee_sumamt Decimal(16, 2) COMMENT 'class=internal; 医疗费用总额(元)',
    fund_pay_sumamt Decimal(16, 2) COMMENT 'class=internal; 基金支付总额(元)',
    psn_selfpay_amt Decimal(16, 2) COMMENT 'class=internal; 个人自付金额(元)',
    unmapped Array(String) COMMENT 'class=internal; 未映射的本地编码',
    producer_id LowCardinality(String) COMMENT 'class=internal; 上报程序标识',
    seq UInt64 COMMENT 'class=internal; 上报序号',
    key_id LowCardinality(String) COMMENT 'class=internal; 密钥ID',
    schema_fp LowCardinality(String) COMMENT 'class=internal; 模式指纹',
    refdata_version LowCardinality(String) COMMENT 'class=internal; 参考数据版本',
    event_time DateTime64(3, 'UTC') COMMENT 'class=internal; 业务发生时间',
    received_time DateTime64(3, 'UTC') COMMENT 'class=internal; 平台接收时间',
    processed_time DateTime64(3, 'UTC') COMMENT 'class=internal; 处理时间',
    ingested_time DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'class=internal; 入库时间',
    src_topic LowCardinality(String) COMMENT 'class=internal; 来源Kafka主题',
    src_partition UInt32 COMMENT 'class=internal; 来源分区',
    src_offset UInt64 COMMENT 'class=internal; 来源偏移量',
    src_index UInt32 COMMENT 'class=internal; 信封内序号'
)
ENGINE = ${engine:ReplacingMergeTree(version)}
PARTITION BY toYYYYMM(event_time)
ORDER BY (institution_code, record_id)
SETTINGS ${dedup_window}
COMMENT 'class=internal; 就诊记录 (latest version wins)';

CREATE TABLE IF NOT EXISTS ${db}.prescription_items ${on_cluster}
(
    institution_code LowCardinality(String) COMMENT 'class=public; 定点医疗机构编码',
    county_code LowCardinality(String) COMMENT 'class=public; 机构所在县级区划',
    city_code LowCardinality(String) COMMENT 'class=public; 机构所在地级区划',
    institution_level UInt8 COMMENT 'class=public; 机构级别',
    institution_type LowCardinality(String) COMMENT 'class=public; 机构类型',
    record_id String COMMENT 'class=internal; 处方号',
    item_no UInt32 COMMENT 'class=internal; 处方明细序号',
    version UInt32 COMMENT 'class=internal; 版本号',
    status LowCardinality(String) COMMENT 'class=internal; 记录状态',
    item_count UInt32 COMMENT 'class=internal; 该版本处方明细条数',
    mdtrt_id String COMMENT 'class=internal; 就诊ID',
    med_type LowCardinality(String) COMMENT 'class=public; 就诊类型',
    rx_kind LowCardinality(String) COMMENT 'class=public; 处方类别',
    rx_time DateTime64(3, 'UTC') COMMENT 'class=internal; 开方时间',
    dept_code String COMMENT 'class=internal; 开方科室编码',
    prsc_dr_code String COMMENT 'class=internal; 开方医师代码',
    phar_code String COMMENT 'class=internal; 审核药师代码',
    online_flag Bool COMMENT 'class=public; 互联网处方标志',
    chronic_flag Bool COMMENT 'class=internal; 慢病长处方标志',
    patient_pseudonym String COMMENT 'class=sensitive; 患者假名',
    patient_sex LowCardinality(String) COMMENT 'class=sensitive; 性别',
    patient_age UInt8 COMMENT 'class=sensitive; 年龄(岁)',
    medins_list_codg String COMMENT 'class=internal; 医药机构目录编码(院内)',
    med_list_codg String COMMENT 'class=public; 医保药品编码 ("" 未映射)',
    drug_name String COMMENT 'class=public; 药品名称',
    sin_doscnt Decimal(16, 4) COMMENT 'class=internal; 单次剂量',
    dose_unit LowCardinality(String) COMMENT 'class=internal; 剂量单位',
    used_frqu LowCardinality(String) COMMENT 'class=internal; 使用频次',
    drug_route LowCardinality(String) COMMENT 'class=internal; 给药途径',
    prd_days UInt32 COMMENT 'class=internal; 用药天数',
    cnt Decimal(16, 4) COMMENT 'class=internal; 数量',
    pric Decimal(16, 4) COMMENT 'class=internal; 单价(元)',
    det_item_fee_sumamt Decimal(16, 2) COMMENT 'class=internal; 明细金额(元)',
    antibiotic_tier LowCardinality(String) COMMENT 'class=public; 抗菌药物级别',
    controlled_class LowCardinality(String) COMMENT 'class=public; 麻精药品类别',
    unmapped Array(String) COMMENT 'class=internal; 未映射的本地编码',
    producer_id LowCardinality(String) COMMENT 'class=internal; 上报程序标识',
    seq UInt64 COMMENT 'class=internal; 上报序号',
    key_id LowCardinality(String) COMMENT 'class=internal; 密钥ID',
    schema_fp LowCardinality(String) COMMENT 'class=internal; 模式指纹',
    refdata_version LowCardinality(String) COMMENT 'class=internal; 参考数据版本',
    event_time DateTime64(3, 'UTC') COMMENT 'class=internal; 业务发生时间(开方时间)',
    received_time DateTime64(3, 'UTC') COMMENT 'class=internal; 平台接收时间',
    processed_time DateTime64(3, 'UTC') COMMENT 'class=internal; 处理时间',
    ingested_time DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'class=internal; 入库时间',
    src_topic LowCardinality(String) COMMENT 'class=internal; 来源Kafka主题',
    src_partition UInt32 COMMENT 'class=internal; 来源分区',
    src_offset UInt64 COMMENT 'class=internal; 来源偏移量',
    src_index UInt32 COMMENT 'class=internal; 信封内序号'
)
ENGINE = ${engine:ReplacingMergeTree(version)}
PARTITION BY toYYYYMM(event_time)
ORDER BY (institution_code, record_id, item_no)
SETTINGS ${dedup_window}
COMMENT 'class=internal; 处方明细, one row per item; items of older versions are ignored via the prescription''s max version';

CREATE TABLE IF NOT EXISTS ${db}.charges ${on_cluster}
(
    institution_code LowCardinality(String) COMMENT 'class=public; 定点医疗机构编码',
    county_code LowCardinality(String) COMMENT 'class=public; 机构所在县级区划',
    city_code LowCardinality(String) COMMENT 'class=public; 机构所在地级区划',
    institution_level UInt8 COMMENT 'class=public; 机构级别',
    institution_type LowCardinality(String) COMMENT 'class=public; 机构类型',
    record_id String COMMENT 'class=internal; 费用明细流水号',
    version UInt32 COMMENT 'class=internal; 版本号',
    status LowCardinality(String) COMMENT 'class=internal; 记录状态',
    mdtrt_id String COMMENT 'class=internal; 就诊ID',
    med_type LowCardinality(String) COMMENT 'class=public; 就诊类型',
    rxno String COMMENT 'class=internal; 处方号',
    item_type LowCardinality(String) COMMENT 'class=public; 项目类别 drug/service/consumable',
    medins_list_codg String COMMENT 'class=internal; 医药机构目录编码(院内)',
    med_list_codg String COMMENT 'class=public; 医保目录编码 ("" 未映射)',
    item_name String COMMENT 'class=public; 项目名称',
    cnt Decimal(16, 4) COMMENT 'class=internal; 数量',
    pric Decimal(16, 4) COMMENT 'class=internal; 单价(元)',
    det_item_fee_sumamt Decimal(16, 2) COMMENT 'class=internal; 明细金额(元)',
    fulamt_ownpay_amt Decimal(16, 2) COMMENT 'class=internal; 全自费金额(元)',
    fund_pay_amt Decimal(16, 2) COMMENT 'class=internal; 基金支付金额(元)',
    fee_ocur_time DateTime64(3, 'UTC') COMMENT 'class=internal; 费用发生时间',
    bilg_dept_codg String COMMENT 'class=internal; 开单科室编码',
    bilg_dr_codg String COMMENT 'class=internal; 开单医师代码',
    patient_pseudonym String COMMENT 'class=sensitive; 患者假名',
    patient_sex LowCardinality(String) COMMENT 'class=sensitive; 性别',
    patient_age UInt8 COMMENT 'class=sensitive; 年龄(岁)',
    unmapped Array(String) COMMENT 'class=internal; 未映射的本地编码',
    producer_id LowCardinality(String) COMMENT 'class=internal; 上报程序标识',
    seq UInt64 COMMENT 'class=internal; 上报序号',
    key_id LowCardinality(String) COMMENT 'class=internal; 密钥ID',
    schema_fp LowCardinality(String) COMMENT 'class=internal; 模式指纹',
    refdata_version LowCardinality(String) COMMENT 'class=internal; 参考数据版本',
    event_time DateTime64(3, 'UTC') COMMENT 'class=internal; 业务发生时间(费用发生时间)',
    received_time DateTime64(3, 'UTC') COMMENT 'class=internal; 平台接收时间',
    processed_time DateTime64(3, 'UTC') COMMENT 'class=internal; 处理时间',
    ingested_time DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'class=internal; 入库时间',
    src_topic LowCardinality(String) COMMENT 'class=internal; 来源Kafka主题',
    src_partition UInt32 COMMENT 'class=internal; 来源分区',
    src_offset UInt64 COMMENT 'class=internal; 来源偏移量',
    src_index UInt32 COMMENT 'class=internal; 信封内序号'
)
ENGINE = ${engine:ReplacingMergeTree(version)}
PARTITION BY toYYYYMM(event_time)
ORDER BY (institution_code, record_id)
SETTINGS ${dedup_window}
COMMENT 'class=internal; 费用明细 (latest version wins)';
