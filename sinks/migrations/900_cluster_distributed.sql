-- profile: cluster
-- Distributed tables over the replicated local tables (cluster profile only). Analysts and the
-- dashboard query the *_all tables; the sink inserts into the local Replicated* tables of the
-- shard it is attached to (or through *_all with a sharding key of cityHash64(institution_code)).

CREATE TABLE IF NOT EXISTS ${db}.encounters_all ${on_cluster} AS ${db}.encounters
ENGINE = Distributed('${cluster}', '${db}', 'encounters', cityHash64(institution_code));

CREATE TABLE IF NOT EXISTS ${db}.prescription_items_all ${on_cluster} AS ${db}.prescription_items
ENGINE = Distributed('${cluster}', '${db}', 'prescription_items', cityHash64(institution_code));

CREATE TABLE IF NOT EXISTS ${db}.charges_all ${on_cluster} AS ${db}.charges
ENGINE = Distributed('${cluster}', '${db}', 'charges', cityHash64(institution_code));

CREATE TABLE IF NOT EXISTS ${db}.quality_issues_all ${on_cluster} AS ${db}.quality_issues
ENGINE = Distributed('${cluster}', '${db}', 'quality_issues', cityHash64(institution_code));

CREATE TABLE IF NOT EXISTS ${db}.findings_all ${on_cluster} AS ${db}.findings
ENGINE = Distributed('${cluster}', '${db}', 'findings', cityHash64(institution_code));

CREATE TABLE IF NOT EXISTS ${db}.rejected_all ${on_cluster} AS ${db}.rejected
ENGINE = Distributed('${cluster}', '${db}', 'rejected', cityHash64(institution_code));

CREATE TABLE IF NOT EXISTS ${db}.finding_handling_all ${on_cluster} AS ${db}.finding_handling
ENGINE = Distributed('${cluster}', '${db}', 'finding_handling', cityHash64(institution_code));

CREATE TABLE IF NOT EXISTS ${db}.daily_records_all ${on_cluster} AS ${db}.daily_records
ENGINE = Distributed('${cluster}', '${db}', 'daily_records', cityHash64(institution_code));

CREATE TABLE IF NOT EXISTS ${db}.daily_quality_all ${on_cluster} AS ${db}.daily_quality
ENGINE = Distributed('${cluster}', '${db}', 'daily_quality', cityHash64(institution_code));

CREATE TABLE IF NOT EXISTS ${db}.daily_findings_all ${on_cluster} AS ${db}.daily_findings
ENGINE = Distributed('${cluster}', '${db}', 'daily_findings', cityHash64(institution_code));
