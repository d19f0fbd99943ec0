#!/bin/bash
# One-shot setup of the compose Kafka cluster, idempotent (safe to re-run):
#   docker compose run --rm kafka-setup
# 1. SCRAM users for the platform and one example hospital, 2. their ACLs, 3. the topics listed in
# topics.txt (GENERATED from yijian/topics.py by `python -m yijian.deploy.render_topics`).
# The same users and ACLs exist on Kubernetes as KafkaUser resources (deploy/k8s/base/kafka/users.yaml).
set -euo pipefail
K=/opt/kafka/bin
B=kafka-1:9092,kafka-2:9092,kafka-3:9092
ADMIN=/tmp/admin.properties
umask 077
cat > "$ADMIN" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(cat /run/secrets/kafka_admin_password)";
ssl.truststore.type=PEM
ssl.truststore.location=/run/secrets/ca.crt
PROPS

echo "waiting for the cluster ..."
for _ in $(seq 1 90); do
  if "$K/kafka-topics.sh" --bootstrap-server "$B" --command-config "$ADMIN" --list >/dev/null 2>&1; then break; fi
  sleep 2
done

user() {  # user NAME SECRET_FILE
  "$K/kafka-configs.sh" --bootstrap-server "$B" --command-config "$ADMIN" --alter \
    --entity-type users --entity-name "$1" --add-config "SCRAM-SHA-512=[password=$(cat "/run/secrets/$2")]"
}
acl() {   # acl PRINCIPAL ARGS...
  local who=$1; shift
  "$K/kafka-acls.sh" --bootstrap-server "$B" --command-config "$ADMIN" --add --force --allow-principal "User:$who" "$@" >/dev/null
}

user yijian-worker kafka_worker_password
user yijian-sink kafka_sink_password
user yijian-ops kafka_ops_password
user yijian-monitor kafka_monitor_password
user hospital-h52010100001 kafka_hospital_password   # example institution; one user per hospital

# processors: everything under the prefix (incl. Faust's own yijian.processors-* topics), group yijian.*
acl yijian-worker --operation Read --operation Write --operation Describe --operation DescribeConfigs --operation Create \
  --topic yijian. --resource-pattern-type prefixed
acl yijian-worker --operation Read --operation Describe --group yijian. --resource-pattern-type prefixed
# sink: read only
acl yijian-sink --operation Read --operation Describe --topic yijian. --resource-pattern-type prefixed
acl yijian-sink --operation Read --operation Describe --group yijian-sink --resource-pattern-type prefixed
# ops tools: rules/refdata/keys topics, replay
acl yijian-ops --operation Read --operation Write --operation Describe --operation DescribeConfigs \
  --topic yijian. --resource-pattern-type prefixed
acl yijian-ops --operation Read --operation Describe --group yijian --resource-pattern-type prefixed
# monitoring (kafka-exporter): describe topics and groups
acl yijian-monitor --operation Describe --operation DescribeConfigs --topic '*'
acl yijian-monitor --operation Describe --group '*'
acl yijian-monitor --operation Describe --cluster
# a hospital: write its raw topics and handling answers, read feedback
acl hospital-h52010100001 --operation Write --operation Describe --topic yijian.raw. --resource-pattern-type prefixed
acl hospital-h52010100001 --operation Write --operation Describe --topic yijian.feedback.handling
acl hospital-h52010100001 --operation Read --operation Describe --topic yijian.feedback
acl hospital-h52010100001 --operation Read --group hospital-h52010100001 --resource-pattern-type prefixed

while read -r name partitions replication config; do
  case "$name" in ''|'#'*) continue ;; esac
  args=()
  IFS=',' read -ra kvs <<< "$config"
  for kv in "${kvs[@]}"; do args+=(--config "$kv"); done
  "$K/kafka-topics.sh" --bootstrap-server "$B" --command-config "$ADMIN" --create --if-not-exists \
    --topic "$name" --partitions "$partitions" --replication-factor "$replication" "${args[@]}"
done < /opt/yijian/topics.txt
echo "kafka setup done"
