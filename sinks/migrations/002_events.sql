-- What the platform produced about the records: quality issues, rule findings, rejections, and
-- the hospitals' handling of findings. Ids are deterministic upstream, so ReplacingMergeTree on
-- the id collapses re-emitted copies (latest detection wins).

CREATE TABLE IF NOT EXISTS ${db}.quality_issues ${on_cluster}
(
    issue_id String COMMENT 'class=internal; 问题ID(确定性)',
    institution_code LowCardinality(String) COMMENT 'class=public; 定点医疗机构编码',
    county_code LowCardinality(String) COMMENT 'class=public; 县级区划',
    city_code LowCardinality(String) COMMENT 'class=public; 地级区划',
    record_type LowCardinality(String) COMMENT 'class=public; 记录类型 (institution: 机构级问题)',
    record_id String COMMENT 'class=internal; 记录ID ("" 机构级)',
    version UInt32 COMMENT 'class=internal; 记录版本',
    dimension LowCardinality(String) COMMENT 'class=public; 质量维度',
    code LowCardinality(String) COMMENT 'class=public; 问题编码',
    field LowCardinality(String) COMMENT 'class=public; 字段',
    message String COMMENT 'class=internal; 问题说明',
    severity LowCardinality(String) COMMENT 'class=public; 严重程度 提示/预警/违规',
    details String COMMENT 'class=internal; 明细(JSON)',
    event_time DateTime64(3, 'UTC') COMMENT 'class=internal; 业务时间(无则为检测时间)',
    received_time DateTime64(3, 'UTC') COMMENT 'class=internal; 消息时间(Kafka)',
    processed_time DateTime64(3, 'UTC') COMMENT 'class=internal; 检测时间',
    ingested_time DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'class=internal; 入库时间',
    src_topic LowCardinality(String) COMMENT 'class=internal; 原始记录Kafka主题',
    src_partition UInt32 COMMENT 'class=internal; 原始记录分区',
    src_offset UInt64 COMMENT 'class=internal; 原始记录偏移量',
    src_index UInt32 COMMENT 'class=internal; 信封内序号'
)
ENGINE = ${engine:ReplacingMergeTree(processed_time)}
PARTITION BY toYYYYMM(event_time)
ORDER BY (institution_code, issue_id)
SETTINGS ${dedup_window}
COMMENT 'class=internal; 数据质量问题';

CREATE TABLE IF NOT EXISTS ${db}.findings ${on_cluster}
(
    finding_id String COMMENT 'class=internal; 结果ID(确定性)',
    rule_id LowCardinality(String) COMMENT 'class=public; 规则ID',
    rule_version UInt32 COMMENT 'class=public; 规则版本',
    rule_name String COMMENT 'class=public; 规则名称',
    category LowCardinality(String) COMMENT 'class=public; 规则类别 政策/管理/医疗',
    severity LowCardinality(String) COMMENT 'class=public; 严重程度',
    result_type LowCardinality(String) COMMENT 'class=public; 结果类型 明确/可疑',
    warn_level UInt8 COMMENT 'class=public; 提醒级别',
    institution_code LowCardinality(String) COMMENT 'class=public; 定点医疗机构编码',
    county_code LowCardinality(String) COMMENT 'class=public; 县级区划',
    city_code LowCardinality(String) COMMENT 'class=public; 地级区划',
    record_type LowCardinality(String) COMMENT 'class=public; 记录类型',
    record_id String COMMENT 'class=internal; 记录ID',
    version UInt32 COMMENT 'class=internal; 记录版本',
    patient_pseudonym String COMMENT 'class=sensitive; 患者假名',
    message String COMMENT 'class=internal; 违规内容',
    basis String COMMENT 'class=public; 依据',
    vola_amt Decimal(16, 2) COMMENT 'class=internal; 违规金额(元)',
    item_record_type Array(String) COMMENT 'class=internal; 明细记录类型',
    item_record_id Array(String) COMMENT 'class=internal; 明细记录ID',
    item_vola_type Array(UInt8) COMMENT 'class=internal; 1 违规项 / 2 涉及项',
    item_vola_amt Array(Decimal(16, 2)) COMMENT 'class=internal; 明细违规金额',
    pack_version LowCardinality(String) COMMENT 'class=public; 规则包版本',
    event_time DateTime64(3, 'UTC') COMMENT 'class=internal; 业务时间',
    received_time DateTime64(3, 'UTC') COMMENT 'class=internal; 消息时间(Kafka)',
    processed_time DateTime64(3, 'UTC') COMMENT 'class=internal; 检测时间',
    ingested_time DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'class=internal; 入库时间',
    src_topic LowCardinality(String) COMMENT 'class=internal; 原始记录Kafka主题',
    src_partition UInt32 COMMENT 'class=internal; 原始记录分区',
    src_offset UInt64 COMMENT 'class=internal; 原始记录偏移量',
    src_index UInt32 COMMENT 'class=internal; 信封内序号'
)
ENGINE = ${engine:ReplacingMergeTree(processed_time)}
PARTITION BY toYYYYMM(event_time)
ORDER BY (institution_code, finding_id)
SETTINGS ${dedup_window}
COMMENT 'class=internal; 规则命中结果';

CREATE TABLE IF NOT EXISTS ${db}.rejected ${on_cluster}
(
    reject_id String COMMENT 'class=internal; topic:partition:offset[:index]',
    reason LowCardinality(String) COMMENT 'class=public; 拒收原因编码',
    message String COMMENT 'class=internal; 拒收说明',
    institution_code LowCardinality(String) COMMENT 'class=public; 声称的机构编码',
    county_code LowCardinality(String) COMMENT 'class=public; 县级区划(由机构编码推得)',
    city_code LowCardinality(String) COMMENT 'class=public; 地级区划(由机构编码推得)',
    record_type LowCardinality(String) COMMENT 'class=public; 记录类型',
    record_id String COMMENT 'class=internal; 记录ID(拒收时未知, 为空)',
    version UInt32 COMMENT 'class=internal; 记录版本(未知为0)',
    key_id LowCardinality(String) COMMENT 'class=internal; 密钥ID',
    producer_id LowCardinality(String) COMMENT 'class=internal; 上报程序标识',
    first_seq UInt64 COMMENT 'class=internal; 起始序号',
    record_count UInt32 COMMENT 'class=internal; 记录数',
    record_index Int32 COMMENT 'class=internal; 信封内序号 (-1 整个信封)',
    original_size UInt32 COMMENT 'class=internal; 原始大小(字节)',
    event_time DateTime64(3, 'UTC') COMMENT 'class=internal; 拒收时间',
    received_time DateTime64(3, 'UTC') COMMENT 'class=internal; 消息时间(Kafka)',
    processed_time DateTime64(3, 'UTC') COMMENT 'class=internal; 检测时间',
    ingested_time DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'class=internal; 入库时间',
    src_topic LowCardinality(String) COMMENT 'class=internal; 原始Kafka主题',
    src_partition UInt32 COMMENT 'class=internal; 原始分区',
    src_offset UInt64 COMMENT 'class=internal; 原始偏移量',
    src_index UInt32 COMMENT 'class=internal; 信封内序号'
)
ENGINE = ${engine:ReplacingMergeTree(processed_time)}
PARTITION BY toYYYYMM(event_time)
ORDER BY (institution_code, reject_id)
SETTINGS ${dedup_window}
COMMENT 'class=internal; 拒收记录 (nothing is dropped silently)';

CREATE TABLE IF NOT EXISTS ${db}.finding_handling ${on_cluster}
(
    feedback_id String COMMENT 'class=internal; 反馈ID',
    institution_code LowCardinality(String) COMMENT 'class=public; 定点医疗机构编码',
    county_code LowCardinality(String) COMMENT 'class=public; 县级区划',
    city_code LowCardinality(String) COMMENT 'class=public; 地级区划',
    record_id String COMMENT 'class=internal; 反馈ID (同 feedback_id)',
    version UInt32 COMMENT 'class=internal; 处理次序(1起)',
    dspo_way LowCardinality(String) COMMENT 'class=public; 处理方式 acknowledge/explain/correct/self_pay',
    dspo_way_rea String COMMENT 'class=internal; 处理原因/说明',
    handler_code String COMMENT 'class=internal; 处理人',
    event_time DateTime64(3, 'UTC') COMMENT 'class=internal; 处理时间',
    received_time DateTime64(3, 'UTC') COMMENT 'class=internal; 消息时间(Kafka)',
    processed_time DateTime64(3, 'UTC') COMMENT 'class=internal; 入流时间',
    ingested_time DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'class=internal; 入库时间',
    src_topic LowCardinality(String) COMMENT 'class=internal; Kafka主题',
    src_partition UInt32 COMMENT 'class=internal; 分区',
    src_offset UInt64 COMMENT 'class=internal; 偏移量',
    src_index UInt32 COMMENT 'class=internal; 批内序号'
)
ENGINE = ${engine:ReplacingMergeTree(event_time)}
PARTITION BY toYYYYMM(event_time)
ORDER BY (institution_code, feedback_id)
SETTINGS ${dedup_window}
COMMENT 'class=internal; 医院对反馈的处理 (latest handling wins)';
