"""Production manifests: compose stack, Kubernetes (Kustomize) manifests, ClickHouse XML, Prometheus
alert rules and Grafana dashboards. Everything is validated offline against bundled schemas:
compose-spec (from check-jsonschema's vendored copy, in deploy/compose), Kubernetes 1.32 (the PyPI
package kubernetes-validate) and the operators' CRDs (deploy/k8s/schemas, built from their releases).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from yijian.deploy import render_topics
from yijian.deploy.capacity import GUIZHOU, plan
from yijian.deploy.kustomize import build, json6902
from yijian.topics import TOPICS

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
COMPOSE_DIR = DEPLOY / "compose"
K8S = DEPLOY / "k8s"
KUSTOMIZATIONS = [K8S / "base", K8S / "overlays" / "province"]
K8S_VERSION = "1.32"
IMAGE = "yijian:0.1.0"

# Secrets the manifests use but git does not hold: created by ops (docs/runbook.md) or by Strimzi.
OPS_SECRETS = {"yijian-keys", "yijian-keyring", "yijian-clickhouse"}
STRIMZI_SECRETS = {"yijian-cluster-ca-cert"}  # plus one per KafkaUser


@lru_cache(maxsize=None)
def rendered(folder: Path) -> tuple[dict, ...]:
    return tuple(build(folder))


@lru_cache(maxsize=1)
def compose() -> dict:
    return yaml.safe_load((COMPOSE_DIR / "compose.yaml").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def crd_schemas() -> dict[tuple[str, str], dict]:
    out = {}
    for path in (K8S / "schemas").glob("*.json"):
        schema = json.loads(path.read_text(encoding="utf-8"))
        out[(schema["properties"]["apiVersion"]["const"], schema["properties"]["kind"]["const"])] = schema
    return out


def _containers(resource: dict) -> list[dict]:
    spec = resource.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("containers", []) + spec.get("initContainers", [])


def _by_kind(resources, kind):
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


# --- Kubernetes ------------------------------------------------------------------------------------
@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_every_resource_is_valid_against_its_schema(folder):
    resources = rendered(folder)
    assert len(resources) > 30
    for r in resources:
        where = f"{r['kind']}/{r['metadata']['name']}"
        key = (r["apiVersion"], r["kind"])
        if key in crd_schemas():
            errors = sorted(jsonschema.Draft202012Validator(crd_schemas()[key]).iter_errors(r), key=str)
            assert not errors, f"{where}: " + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
        else:
            try:
                kubernetes_validate.validate(r, K8S_VERSION, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                pytest.fail(f"{where}: no schema for {key}: every kind must be validated")
            except kubernetes_validate.ValidationError as e:
                pytest.fail(f"{where}: {list(e.path)}: {e.message}")


def test_schemas_catch_mistakes():
    """The validation above is not vacuous: a misspelt field fails, in built-in and custom kinds."""
    resources = [json.loads(json.dumps(r)) for r in rendered(KUSTOMIZATIONS[1])]
    dep = _by_kind(resources, "Deployment")["yijian-worker"]
    dep["spec"]["template"]["spec"]["containers"][0]["livenesProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, K8S_VERSION, strict=True)
    for kind in ("Kafka", "ClickHouseInstallation", "ScaledObject", "KafkaUser"):
        r = next(x for x in resources if x["kind"] == kind)
        r["spec"]["replicaz"] = 3
        assert list(jsonschema.Draft202012Validator(crd_schemas()[(r["apiVersion"], kind)]).iter_errors(r)), kind


def test_overlay_changes_what_it_says_and_keeps_the_rest():
    base = {(r["kind"], r["metadata"]["name"]): r for r in rendered(KUSTOMIZATIONS[0])}
    prov = {(r["kind"], r["metadata"]["name"]): r for r in rendered(KUSTOMIZATIONS[1])}
    assert set(base) < set(prov)
    assert ("KafkaUser", "hospital-h52010100001") in prov
    for r in prov.values():
        assert r["metadata"]["labels"]["yijian.io/province"] == "52"
        assert r["metadata"]["labels"]["app.kubernetes.io/part-of"] == "yijian"
        if r["kind"] != "Namespace":
            assert r["metadata"]["namespace"] == "yijian"
    images = {c["image"] for r in prov.values() for c in _containers(r) if "yijian" in c["image"]}
    assert images == {"registry.gz.example/yijian/yijian:0.1.0"}
    assert prov[("ScaledObject", "yijian-worker")]["spec"]["maxReplicaCount"] < base[("ScaledObject", "yijian-worker")]["spec"]["maxReplicaCount"]


def test_renderer_json6902_operations():
    doc = {"a": {"b": [1, 2]}, "c": 1}
    json6902(doc, {"op": "add", "path": "/a/b/-", "value": 3})
    json6902(doc, {"op": "replace", "path": "/c", "value": 2})
    json6902(doc, {"op": "copy", "from": "/c", "path": "/d"})
    json6902(doc, {"op": "move", "from": "/d", "path": "/a/e"})
    json6902(doc, {"op": "remove", "path": "/a/b/0"})
    json6902(doc, {"op": "test", "path": "/a/e", "value": 2})
    assert doc == {"a": {"b": [2, 3], "e": 2}, "c": 2}


def test_topics_match_yijian_topics_including_compaction():
    assert render_topics.main(["--check"]) == 0, "run: python -m yijian.deploy.render_topics"
    kt = [r for r in rendered(KUSTOMIZATIONS[0]) if r["kind"] == "KafkaTopic"]
    by_name = {r["spec"]["topicName"]: r for r in kt}
    assert len(by_name) == len(kt)
    assert set(by_name) == {render_topics.PREFIX + t.name for t in TOPICS}
    compose_lines = [ln.split() for ln in (COMPOSE_DIR / "kafka" / "topics.txt").read_text().splitlines() if ln and not ln.startswith("#")]
    compose_topics = {ln[0]: ln for ln in compose_lines}
    assert set(compose_topics) == set(by_name)
    for t in TOPICS:
        r = by_name[render_topics.PREFIX + t.name]
        compacted = r["spec"]["config"].get("cleanup.policy") == "compact"
        assert compacted == t.compacted, t.name
        assert r["spec"]["partitions"] == (t.partitions or render_topics.PARTITIONS)
        assert r["spec"]["replicas"] == 3 and r["spec"]["config"]["min.insync.replicas"] == "2"
        assert r["metadata"]["labels"]["strimzi.io/cluster"] == "yijian"
        name, partitions, replication, conf = compose_topics[render_topics.PREFIX + t.name]
        assert int(partitions) == r["spec"]["partitions"] and int(replication) == 3
        assert ("cleanup.policy=compact" in conf) == t.compacted


def test_deployments_have_probes_resources_and_security():
    resources = rendered(KUSTOMIZATIONS[0])
    deps = _by_kind(resources, "Deployment")
    assert {"yijian-worker", "yijian-sink", "yijian-dashboard", "yijian-toolbox"} <= set(deps)
    ports = {"yijian-worker": 6066, "yijian-sink": 9108}
    for name, port in ports.items():
        pod = deps[name]["spec"]["template"]
        (c,) = pod["spec"]["containers"]
        assert {p["containerPort"] for p in c["ports"]} == {port}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert c[probe]["httpGet"]["path"] == "/health", (name, probe)
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        assert "replicas" not in deps[name]["spec"], "KEDA owns the replica count"
        assert c["resources"]["requests"]["cpu"] == "1", "one worker ≈ 1 core (documented assumption)"
    for r in resources:
        for c in _containers(r):
            assert c.get("resources", {}).get("requests"), f"{r['metadata']['name']}/{c['name']} has no requests"
            if c["image"] == IMAGE:
                sc = c["securityContext"]
                assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
                assert r["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_autoscaling_pdbs_and_references_are_consistent():
    resources = rendered(KUSTOMIZATIONS[1])
    deps = _by_kind(resources, "Deployment")
    partitions = render_topics.PARTITIONS
    for so in _by_kind(resources, "ScaledObject").values():
        target = so["spec"]["scaleTargetRef"]["name"]
        assert target in deps
        assert 1 <= so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"] <= partitions, "replicas beyond partitions idle"
        (trig,) = so["spec"]["triggers"]
        assert trig["type"] == "kafka" and trig["authenticationRef"]["name"] in _by_kind(resources, "TriggerAuthentication")
    config = _by_kind(resources, "ConfigMap")["yijian-config"]["data"]
    groups = {so["spec"]["triggers"][0]["metadata"]["consumerGroup"] for so in _by_kind(resources, "ScaledObject").values()}
    assert config["YIJIAN_PROCESSOR_APP_ID"] in groups
    assert int(config["YIJIAN_TOPIC_PARTITIONS"]) == partitions
    assert compose()["x-yijian-env"]["YIJIAN_TOPIC_PARTITIONS"] == str(partitions)
    pdbs = _by_kind(resources, "PodDisruptionBudget")
    for name in ("yijian-worker", "yijian-sink", "yijian-dashboard"):
        labels = deps[name]["spec"]["template"]["metadata"]["labels"]
        sel = pdbs[name]["spec"]["selector"]["matchLabels"]
        assert sel.items() <= labels.items()
    # every ConfigMap referenced exists; every Secret is created by Strimzi or listed for ops
    configmaps = set(_by_kind(resources, "ConfigMap"))
    kafka_users = set(_by_kind(resources, "KafkaUser"))
    text = json.dumps(resources)
    for name in re.findall(r'"configMapRef": \{"name": "([^"]+)"', text) + re.findall(r'"configMap": \{"name": "([^"]+)"', text):
        assert name in configmaps, name
    secrets = set(re.findall(r'"secretKeyRef": \{"name": "([^"]+)"', text)) | set(re.findall(r'"secretName": "([^"]+)"', text))
    for ref in _by_kind(resources, "TriggerAuthentication")["yijian-kafka"]["spec"]["secretTargetRef"]:
        secrets.add(ref["name"])
    assert secrets <= OPS_SECRETS | STRIMZI_SECRETS | kafka_users, secrets - (OPS_SECRETS | STRIMZI_SECRETS | kafka_users)
    runbook = (REPO / "docs" / "runbook.md").read_text(encoding="utf-8")
    for s in OPS_SECRETS:
        assert s in runbook, f"the runbook must say how to create Secret {s}"


def test_kubernetes_sizes_follow_the_capacity_model():
    p = plan(GUIZHOU)
    resources = rendered(KUSTOMIZATIONS[1])
    assert render_topics.PARTITIONS == p.partitions
    assert _by_kind(resources, "KafkaNodePool")["broker"]["spec"]["replicas"] >= p.brokers
    chi = _by_kind(resources, "ClickHouseInstallation")["yijian"]
    (cluster,) = chi["spec"]["configuration"]["clusters"]
    assert cluster["name"] == "yijian"
    assert cluster["layout"]["shardsCount"] >= p.clickhouse_shards
    assert cluster["layout"]["replicasCount"] == p.clickhouse_replicas
    so = _by_kind(resources, "ScaledObject")
    assert so["yijian-worker"]["spec"]["minReplicaCount"] >= p.processor_replicas
    assert so["yijian-worker"]["spec"]["maxReplicaCount"] >= p.processor_max_replicas
    assert so["yijian-sink"]["spec"]["maxReplicaCount"] >= p.sink_max_replicas
    kafka = _by_kind(resources, "Kafka")["yijian"]
    assert kafka["spec"]["kafka"]["config"]["num.partitions"] == p.partitions
    assert kafka["spec"]["kafka"]["version"].startswith("3.9."), "the processors' aiokafka needs Kafka 3.9"
    assert all(listener.get("authentication", {}).get("type") == "scram-sha-512" and listener["tls"] for listener in kafka["spec"]["kafka"]["listeners"])


# --- compose ---------------------------------------------------------------------------------------
def test_compose_file_is_valid_against_the_compose_spec():
    schema = json.loads((COMPOSE_DIR / "compose-spec.json").read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(compose()), key=str)
    assert not errors, "; ".join(f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors[:5])
    bad = {"services": {"x": {"image": "a", "restartt": "always"}}}
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(bad)), "the schema rejects unknown keys"


def test_compose_topology_and_references():
    c = compose()
    services = c["services"]
    brokers = [s for s in services if s.startswith("kafka-") and s[-1].isdigit()]
    assert len(brokers) == 3 and all(services[b]["image"].startswith("apache/kafka:3.9") for b in brokers)
    keepers = [s for s in services if s.startswith("keeper-")]
    assert len(keepers) == 3 and all(services[k]["image"].startswith("clickhouse/clickhouse-keeper:") for k in keepers)
    ch = [s for s in services if s.startswith("ch-s")]
    assert sorted(ch) == ["ch-s1r1", "ch-s1r2", "ch-s2r1", "ch-s2r2"]
    for name in ("worker", "sink", "dashboard", "migrate", "prometheus", "grafana", "kafka-exporter", "kafka-setup"):
        assert name in services
    assert services["worker"]["deploy"]["replicas"] >= 2 and services["sink"]["deploy"]["replicas"] >= 2
    secrets_script = (COMPOSE_DIR / "gen-secrets.sh").read_text(encoding="utf-8")
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, (name, dep)
        for s in svc.get("secrets", []):
            assert (s if isinstance(s, str) else s["source"]) in c["secrets"], (name, s)
        for v in svc.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("."):
                assert (COMPOSE_DIR / src).exists() or src.startswith("./secrets"), (name, src)
            else:
                assert src in c["volumes"], (name, src)
        if svc.get("image") == IMAGE:
            assert svc["read_only"] is not None and "ALL" in svc["cap_drop"]
    # the secrets folder is never committed
    assert (COMPOSE_DIR / "secrets" / ".gitignore").read_text().splitlines()[1:] == ["*", "!.gitignore"]


def test_gen_secrets_creates_every_secret_compose_mounts(tmp_path):
    """Runs the real script (openssl) in a scratch copy: every secret file of compose.yaml appears,
    certificates verify against the CA, and a second run changes nothing."""
    work = tmp_path / "compose"
    work.mkdir()
    shutil.copy(COMPOSE_DIR / "gen-secrets.sh", work)
    run = lambda: subprocess.run(["sh", "gen-secrets.sh"], cwd=work, capture_output=True, text=True, timeout=60)
    first = run()
    assert first.returncode == 0, first.stderr
    for name, s in compose()["secrets"].items():
        path = work / s["file"]
        assert path.is_file() and path.stat().st_size > 0, name
    for xml in ("clickhouse_passwords.xml", "clickhouse_cluster_secret.xml"):
        ET.parse(work / "secrets" / xml)
    verify = subprocess.run(["openssl", "verify", "-CAfile", "secrets/ca.crt", "secrets/kafka-1.crt", "secrets/clickhouse_tls.crt"], cwd=work, capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    before = {p: p.read_bytes() for p in (work / "secrets").iterdir() if p.is_file()}
    assert run().returncode == 0
    assert before == {p: p.read_bytes() for p in (work / "secrets").iterdir() if p.is_file()}


def test_clickhouse_xml_configs_parse_and_agree_with_compose():
    files = sorted((COMPOSE_DIR / "clickhouse").rglob("*.xml"))
    assert len(files) >= 8
    roots = {f.name: ET.parse(f).getroot() for f in files}
    assert all(r.tag == "clickhouse" for r in roots.values())
    cluster = roots["cluster.xml"].find("remote_servers/yijian")
    shards = cluster.findall("shard")
    assert len(shards) == 2 and all(len(s.findall("replica")) == 2 for s in shards)
    hosts = {r.findtext("host") for s in shards for r in s.findall("replica")}
    assert hosts == {"ch-s1r1", "ch-s1r2", "ch-s2r1", "ch-s2r2"}
    assert all(s.findtext("internal_replication") == "true" for s in shards)
    macros = roots["macros.xml"].find("macros")
    assert macros.find("shard").get("from_env") == "CH_SHARD" and macros.find("replica").get("from_env") == "CH_REPLICA"
    for host in hosts:
        env = compose()["services"][host]["environment"]
        assert env["CH_REPLICA"] == host and env["CH_SHARD"] == "0" + host[4]
    keeper_nodes = {n.findtext("host") for n in roots["keeper.xml"].findall("zookeeper/node")}
    raft = {s.findtext("hostname") for s in roots["keeper_config.xml"].findall("keeper_server/raft_configuration/server")}
    assert keeper_nodes == raft == {"keeper-1", "keeper-2", "keeper-3"}
    users = roots["users.xml"].find("users")
    assert {u.tag for u in users} >= {"admin", "sink", "dashboard"}
    assert not [e for e in roots["users.xml"].iter() if e.tag.startswith("password")], "no passwords in git"
    assert users.find("sink/grants/query").text.startswith("GRANT INSERT, SELECT ON yijian.")
    assert roots["backups.xml"].findtext("backups/allowed_disk") == "backups"


def test_security_sql_has_roles_and_row_policies():
    sql = (K8S / "base" / "clickhouse" / "security.sql").read_text(encoding="utf-8")
    statements = [s.strip() for s in re.sub(r"--[^\n]*", "", sql).split(";") if s.strip()]
    assert any(s.startswith("CREATE ROLE") for s in statements)
    assert any(s.startswith("CREATE ROW POLICY") and "USING city_code" in s for s in statements)
    assert all("ON CLUSTER yijian" in s for s in statements)


# --- monitoring ------------------------------------------------------------------------------------
def _anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")


def test_alert_rules_are_well_formed_and_explained_in_the_runbook():
    rules = yaml.safe_load((COMPOSE_DIR / "prometheus" / "alerts.yml").read_text(encoding="utf-8"))
    runbook = (REPO / "docs" / "runbook.md").read_text(encoding="utf-8")
    anchors = {_anchor(h) for h in re.findall(r"^#+ (.+)$", runbook, flags=re.M)}
    names = []
    assert set(rules) == {"groups"}
    for group in rules["groups"]:
        assert set(group) == {"name", "rules"} and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
            names.append(rule["alert"])
            expr = rule["expr"]
            assert isinstance(expr, str) and expr.strip()
            assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}") and expr.count("[") == expr.count("]")
            if "for" in rule:
                assert re.fullmatch(r"\d+[smh]", rule["for"])
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}
            assert rule["annotations"]["summary"]
            link = rule["annotations"]["runbook"]
            assert link.startswith("docs/runbook.md#") and link.split("#", 1)[1] in anchors, f"{rule['alert']}: no runbook section {link}"
    assert len(names) == len(set(names)) >= 15
    prom = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    assert prom["rule_files"] == ["/etc/prometheus/alerts.yml"]
    jobs = {j["job_name"] for j in prom["scrape_configs"]}
    for rule in (r for g in rules["groups"] for r in g["rules"]):
        for job in re.findall(r'job="([^"]+)"', rule["expr"]):
            assert job in jobs, (rule["alert"], job)


def test_grafana_dashboards_have_the_panels_ops_need():
    provider = yaml.safe_load((COMPOSE_DIR / "grafana" / "provisioning" / "dashboards" / "yijian.yml").read_text())
    datasource = yaml.safe_load((COMPOSE_DIR / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    uid = datasource["datasources"][0]["uid"]
    boards = list((COMPOSE_DIR / "grafana" / "dashboards").glob("*.json"))
    assert boards
    titles = []
    for path in boards:
        board = json.loads(path.read_text(encoding="utf-8"))
        assert board["uid"] and board["title"]
        for panel in board["panels"]:
            titles.append(panel["title"].lower())
            assert panel["datasource"]["uid"] == uid
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])
    for needed in ("throughput", "consumer lag", "rejected by reason", "latency", "quality"):
        assert any(needed in t for t in titles), f"no panel for {needed}"


# --- image -----------------------------------------------------------------------------------------
def test_dockerfile_builds_one_non_root_platform_image():
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    froms = re.findall(r"^FROM (\S+)", text, flags=re.M)
    assert froms and all(f == "python:3.11-slim" for f in froms)
    assert re.search(r'pip install .*"\.\[platform\]"', text)
    user = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert "ENTRYPOINT" in text and (DEPLOY / "docker-entrypoint.sh").exists()
    for r in rendered(KUSTOMIZATIONS[0]):
        for c in _containers(r):
            if c["image"] == IMAGE:
                assert r["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(user[-1].split(":")[0])
