-- Dimensions: administrative divisions (validity-dated, historic codes mapped forward) and
-- institutions (upserted by the sink from the standardized records' metadata).

CREATE TABLE IF NOT EXISTS ${db}.regions ${on_cluster}
(
    code String COMMENT 'class=public; 行政区划代码 GB/T 2260',
    name String COMMENT 'class=public; 名称',
    level LowCardinality(String) COMMENT 'class=public; province/city/county',
    parent_code String COMMENT 'class=public; 上级区划',
    city_code String COMMENT 'class=public; 所属地级区划(现行)',
    province_code String COMMENT 'class=public; 所属省级区划',
    valid_from Date32 COMMENT 'class=public; 启用日期',
    valid_to Nullable(Date32) COMMENT 'class=public; 停用日期 (NULL 现行)',
    successor String COMMENT 'class=public; 现行继承代码 ("" 现行)',
    current_code String COMMENT 'class=public; 映射后的现行代码',
    seed_version UInt64 COMMENT 'class=internal; 种子数据版本'
)
ENGINE = ${engine:ReplacingMergeTree(seed_version)}
ORDER BY code
COMMENT 'class=public; 行政区划 (validity-dated)';

CREATE TABLE IF NOT EXISTS ${db}.institutions ${on_cluster}
(
    institution_code String COMMENT 'class=public; 定点医疗机构编码',
    name String COMMENT 'class=public; 机构名称 ("" 未登记)',
    county_code LowCardinality(String) COMMENT 'class=public; 县级区划(现行)',
    city_code LowCardinality(String) COMMENT 'class=public; 地级区划(现行)',
    institution_level UInt8 COMMENT 'class=public; 机构级别',
    institution_type LowCardinality(String) COMMENT 'class=public; 机构类型',
    first_seen DateTime64(3, 'UTC') COMMENT 'class=internal; 首次出现',
    updated_time DateTime64(3, 'UTC') COMMENT 'class=internal; 更新时间'
)
ENGINE = ${engine:ReplacingMergeTree(updated_time)}
ORDER BY institution_code
COMMENT 'class=public; 定点医疗机构';
