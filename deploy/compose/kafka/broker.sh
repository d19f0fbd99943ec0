#!/bin/bash
# One node of the compose Kafka cluster: KRaft broker + controller (Apache Kafka 3.9, apache/kafka image).
# Writes server.properties from the environment (NODE_ID, EXTERNAL_HOST, EXTERNAL_PORT) and the
# secrets under /run/secrets, formats the storage on first start, then runs the broker.
#
# Listeners (all TLS; certificates from ../gen-secrets.sh, one CA):
#   CLIENT      :9092  SASL_SSL, SCRAM-SHA-512  platform services in the compose network
#   EXTERNAL    :9094  SASL_SSL, SCRAM-SHA-512  hospitals (published on the host as EXTERNAL_PORT)
#   REPLICATION :9091  SSL + client certificate brokers between themselves (principal User:broker)
#   CONTROLLER  :9093  SSL + client certificate KRaft quorum (SCRAM cannot serve controllers: KIP-900)
set -euo pipefail
: "${NODE_ID:?}" "${EXTERNAL_HOST:?}" "${EXTERNAL_PORT:?}"
KAFKA=/opt/kafka
CONF=/tmp/server.properties
DATA=/var/lib/kafka/data

cat > "$CONF" <<PROPS
process.roles=broker,controller
node.id=${NODE_ID}
controller.quorum.voters=1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093
controller.listener.names=CONTROLLER
inter.broker.listener.name=REPLICATION
listeners=CLIENT://:9092,EXTERNAL://:9094,REPLICATION://:9091,CONTROLLER://:9093
advertised.listeners=CLIENT://kafka-${NODE_ID}:9092,EXTERNAL://${EXTERNAL_HOST}:${EXTERNAL_PORT},REPLICATION://kafka-${NODE_ID}:9091
listener.security.protocol.map=CLIENT:SASL_SSL,EXTERNAL:SASL_SSL,REPLICATION:SSL,CONTROLLER:SSL

# TLS: PEM files (private key + certificate chain in one file; the CA as trust store)
ssl.keystore.type=PEM
ssl.keystore.location=/run/secrets/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=/run/secrets/ca.crt
ssl.endpoint.identification.algorithm=https
listener.name.replication.ssl.client.auth=required
listener.name.controller.ssl.client.auth=required
# certificate subject CN=broker -> principal User:broker
ssl.principal.mapping.rules=RULE:^CN=([a-zA-Z0-9.-]+).*$/\$1/,DEFAULT

# SASL/SCRAM for clients; the credentials live in the cluster metadata (kafka-configs / setup.sh)
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.external.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;

# ACLs: nothing is allowed unless granted (setup.sh); brokers and the admin are super users
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:broker;User:admin

# Durability: 3 copies, a write needs 2 of them
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
# topics are created on purpose (setup.sh, or Faust for its changelogs), with the data topics' 32 partitions by default
auto.create.topics.enable=false
num.partitions=32
log.dirs=${DATA}
log.retention.hours=168
PROPS

# First start only: format the KRaft storage. The admin's SCRAM credential is written into the
# metadata here (KIP-900), so that setup.sh can authenticate before any user has been created.
if [ ! -f "$DATA/meta.properties" ]; then
  "$KAFKA/bin/kafka-storage.sh" format --ignore-formatted \
    --config "$CONF" \
    --cluster-id "$(cat /run/secrets/kafka_cluster_id)" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=$(cat /run/secrets/kafka_admin_password)]"
fi
exec "$KAFKA/bin/kafka-server-start.sh" "$CONF"
