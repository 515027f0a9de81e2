"""The Kubernetes manifests: every overlay renders, every object validates offline, and the policies hold.

Rendering uses ``kustomize_lite`` (kustomize semantics for the subset ``k8s/`` uses); where a real
kustomize is at hand (``kubectl kustomize``), its output must be the same. Built-in kinds are checked
with ``kubernetes-validate --strict`` (schemas bundled in the PyPI package) against the oldest and the
newest Kubernetes we support; KEDA, Strimzi and Prometheus Operator objects against the JSON schemas
kept in ``k8s/schemas`` (strict as well). No object may go unchecked. Policy tests follow
reliability-cases.md S-1/S-2.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kustomize_lite import KustomizeError, render
from typer.testing import CliRunner

from headrace.cli import app
from headrace.config import load_config
from headrace.consume import group_id
from headrace.pipeline import topics_for

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "k8s"
ENVS = ("dev", "prod")
KUSTOMIZATIONS = [f"overlays/{e}" for e in ENVS] + [f"overlays/{e}/kafka" for e in ENVS]
K8S_VERSIONS = ("1.31.0", "1.37.0")  # oldest supported (PDB unhealthyPodEvictionPolicy GA) .. newest bundled
WORKLOADS = ("Deployment", "StatefulSet", "Job", "CronJob")
LONG_RUNNING = ("Deployment", "StatefulSet")
METRICS_PORT = 9400
#: Measured by tests/integration/test_ops_consume.py (loaded 2-core machine): SIGTERM to exit 4.6-6.6 s
#: for a 4-page batch in flight with 1.5 s injected delay, of which commit + close + leave 0.02-0.04 s;
#: shard writer seal + commit + close 0.11-0.17 s. A pod's grace must cover the p99 batch plus that, plus
#: 10 s (S-2); batch_size 256 at ~50 pages/s is ~5 s, so 15 s of drain is budgeted.
MEASURED_DRAIN_BUDGET_S = 15.0
SCHEMAS = {
    (s["properties"]["apiVersion"]["const"], s["properties"]["kind"]["const"]): s
    for s in (json.loads(p.read_text()) for p in sorted((K8S / "schemas").glob("*.json")))
}


@cache
def rendered(kustomization: str) -> tuple[dict[str, Any], ...]:
    return tuple(render(K8S / kustomization))


def objects(env: str, kind: str | None = None) -> list[dict[str, Any]]:
    return [o for o in rendered(f"overlays/{env}") if kind is None or o["kind"] == kind]


def topics(env: str) -> dict[str, dict[str, Any]]:
    return {o["spec"]["topicName"]: o for o in rendered(f"overlays/{env}/kafka")}


def pipeline_toml(env: str) -> str:
    (cm,) = [o for o in objects(env, "ConfigMap") if o["metadata"]["name"].startswith("headrace-config-")]
    return cm["data"]["pipeline.toml"]


def config(env: str, environ: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    path = Path(f"/tmp/headrace-{env}-pipeline.toml")
    path.write_text(pipeline_toml(env))
    return load_config(path, environ=environ or {})


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    tmpl = obj["spec"]["jobTemplate"]["spec"]["template"] if obj["kind"] == "CronJob" else obj["spec"]["template"]
    return tmpl["metadata"]["labels"]


def workloads(env: str, kinds: tuple[str, ...] = WORKLOADS) -> list[dict[str, Any]]:
    return [o for o in objects(env) if o["kind"] in kinds]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


# -- rendering and validation ---------------------------------------------------------------------------
@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_object_validates_offline_with_no_missing_schema(kustomization: str) -> None:
    objs = rendered(kustomization)
    assert objs
    for obj in objs:
        key = (obj["apiVersion"], obj["kind"])
        if key in SCHEMAS:
            jsonschema.Draft202012Validator(SCHEMAS[key]).validate(obj)
            continue
        for version in K8S_VERSIONS:
            # raises SchemaNotFoundError for an unknown kind: no object goes unchecked
            kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl (with its built-in kustomize) here")
@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_the_renderer_agrees_with_real_kustomize(kustomization: str) -> None:
    res = subprocess.run(
        ["kubectl", "kustomize", str(K8S / kustomization)], capture_output=True, text=True, check=False, timeout=120
    )
    assert res.returncode == 0, res.stderr

    def by_key(objs: Any) -> dict[tuple[str, str, str], Any]:
        text = json.dumps(list(objs), sort_keys=True)
        text = re.sub(r'"(headrace-[a-z]+)-[a-z0-9]{10}"', r'"\1-HASH"', text)  # generator hashes differ
        return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in json.loads(text)}

    real = by_key(d for d in yaml.safe_load_all(res.stdout) if d)
    mine = by_key(rendered(kustomization))
    assert sorted(mine) == sorted(real)
    for key, obj in mine.items():
        assert obj == real[key], key


def test_the_secret_example_matches_what_the_pods_and_keda_read() -> None:
    docs = list(yaml.safe_load_all((K8S / "overlays/prod/kafka-secret.example.yaml").read_text()))
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSIONS[0], strict=True)
    secrets = {d["metadata"]["name"]: d["stringData"] for d in docs}
    for obj in workloads("prod"):
        (c,) = pod_spec(obj)["containers"]
        assert {"secretRef": {"name": "headrace-kafka", "optional": False}} in c["envFrom"], obj["metadata"]["name"]
    for name, value in secrets["headrace-kafka"].items():
        config("prod", {name: value})  # each key is a valid HEADRACE_* override
    (auth,) = objects("prod", "TriggerAuthentication")
    for ref in auth["spec"]["secretTargetRef"]:
        assert ref["key"] in secrets[ref["name"]], ref


def test_the_validators_can_fail() -> None:
    (deploy,) = [o for o in objects("dev", "Deployment") if o["metadata"]["name"] == "headrace-process"]
    bad = json.loads(json.dumps(deploy))
    bad["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[0], strict=True)
    (so,) = [o for o in objects("dev", "ScaledObject") if o["metadata"]["name"] == "headrace-process"]
    bad_so = json.loads(json.dumps(so))
    bad_so["spec"]["triggers"][0]["metadata"]["allowIdleConsumer"] = "false"  # misspelt key
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMAS[("keda.sh/v1alpha1", "ScaledObject")]).validate(bad_so)
    with pytest.raises(KustomizeError):
        render(K8S / "schemas")  # not a kustomization


# -- configuration and commands ------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_pipeline_config_and_container_env_load(env: str) -> None:
    for obj in workloads(env):
        for c in pod_spec(obj)["containers"]:
            environ = {k: v for k, v in env_of(c).items() if k.startswith("HEADRACE_")}
            config(env, environ)  # unknown keys or bad values raise ConfigError


@pytest.mark.parametrize("env", ENVS)
def test_container_commands_exist(env: str) -> None:
    runner = CliRunner()
    for obj in workloads(env):
        (container,) = pod_spec(obj)["containers"]
        args = container["args"]
        words = [a for a in args if not a.startswith("-") and "/" not in a][:2]
        command = [words[0]] + ([words[1]] if words[0] in ("takedown", "topics", "shards") else [])
        res = runner.invoke(app, [*command, "--help"])
        assert res.exit_code == 0, f"{obj['metadata']['name']}: no command {shlex.join(command)}"
        for option in (a for a in args if a.startswith("--")):
            if option not in res.output:
                pytest.fail(f"{obj['metadata']['name']}: `headrace {shlex.join(command)}` has no {option}")


# -- S-2 policies ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_probes_on_every_long_running_container(env: str) -> None:
    for obj in workloads(env, LONG_RUNNING):
        (c,) = pod_spec(obj)["containers"]
        name = obj["metadata"]["name"]
        assert {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"} in c["ports"], name
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
            # An HTTP probe on the ops server: it answers from memory, never from Kafka (an exec probe
            # could call anything).
            assert c[probe]["httpGet"] == {"path": path, "port": "metrics"}, (name, probe)
        assert c["livenessProbe"]["failureThreshold"] * c["livenessProbe"]["periodSeconds"] <= 60, name
        assert env_of(c)["HEADRACE_INSTANCE_ID"] == "" and c["env"][0]["valueFrom"]["fieldRef"]["fieldPath"] == (
            "metadata.name"
        ), name
    cfg = config(env)
    assert cfg.ops.metrics_port == METRICS_PORT and cfg.ops.host == "0.0.0.0"
    # Liveness restarts a stuck loop well before Kafka's max.poll.interval expels it.
    assert cfg.ops.stall_after_s + 30 < cfg.kafka.max_poll_interval_ms / 1000


@pytest.mark.parametrize("env", ENVS)
def test_grace_period_covers_the_measured_drain_and_matches_the_process_deadline(env: str) -> None:
    for obj in workloads(env, LONG_RUNNING):
        spec = pod_spec(obj)
        grace = spec["terminationGracePeriodSeconds"]
        (c,) = spec["containers"]
        assert float(env_of(c)["HEADRACE_OPS__SHUTDOWN_GRACE_S"]) == grace, obj["metadata"]["name"]
        margin = config(env).ops.shutdown_margin_s
        assert grace - margin >= MEASURED_DRAIN_BUDGET_S + 10, obj["metadata"]["name"]


@pytest.mark.parametrize("env", ENVS)
def test_requests_limits_and_security_on_every_container(env: str) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    uid = int(re.findall(r"^USER (\d+)", dockerfile, re.M)[-1])
    for obj in workloads(env):
        name = obj["metadata"]["name"]
        spec = pod_spec(obj)
        assert spec["automountServiceAccountToken"] is False, name
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == uid, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for c in spec["containers"]:
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), (name, kind)
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert ":" in c["image"] and not c["image"].endswith(":latest"), name
            # the read-only root FS needs a writable /tmp (HOME, TMPDIR and caches point there)
            (tmp,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
            (vol,) = [v for v in spec["volumes"] if v["name"] == tmp["name"]]
            assert "emptyDir" in vol, name
    (ns,) = objects(env, "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def replicas_range(env: str, obj: dict[str, Any]) -> tuple[int, int]:
    for so in objects(env, "ScaledObject"):
        if so["spec"]["scaleTargetRef"]["name"] == obj["metadata"]["name"]:
            return so["spec"].get("minReplicaCount", 1), so["spec"]["maxReplicaCount"]
    n = obj["spec"].get("replicas", 1)
    return n, n


@pytest.mark.parametrize("env", ENVS)
def test_pdb_with_max_unavailable_one_for_multi_replica_workloads(env: str) -> None:
    pdbs = objects(env, "PodDisruptionBudget")
    checked = 0
    for obj in workloads(env, LONG_RUNNING):
        labels = pod_labels(obj)
        covering = [p for p in pdbs if p["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        if replicas_range(env, obj)[1] >= 2:
            checked += 1
            assert len(covering) == 1, obj["metadata"]["name"]
            assert covering[0]["spec"]["maxUnavailable"] == 1
            assert covering[0]["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert checked >= 2  # process and shards at least


@pytest.mark.parametrize("env", ENVS)
def test_stateful_groups_are_statefulsets_with_volumes(env: str) -> None:
    sts = {o["metadata"]["name"]: o for o in objects(env, "StatefulSet")}
    assert {"headrace-dedup", "headrace-shards", "headrace-ledger"} <= set(sts)
    pvcs = {o["metadata"]["name"] for o in objects(env, "PersistentVolumeClaim")}
    for name, obj in sts.items():
        claims = {t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates", [])}
        claims |= {
            v["persistentVolumeClaim"]["claimName"] for v in pod_spec(obj)["volumes"] if "persistentVolumeClaim" in v
        }
        assert claims, name
        for claim in claims - {t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates", [])}:
            assert claim in pvcs, (name, claim)
        (c,) = pod_spec(obj)["containers"]
        assert "--static-member" in c["args"], name  # stable pod names: restarts without rebalances
    (shared,) = [o for o in objects(env, "PersistentVolumeClaim") if o["metadata"]["name"] == "headrace-shards"]
    assert shared["spec"]["accessModes"] == ["ReadWriteMany"]  # writers, takedown and loaders share it
    for obj in objects(env, "Deployment"):
        assert "--static-member" not in pod_spec(obj)["containers"][0]["args"]  # pod names change


@pytest.mark.parametrize("env", ENVS)
def test_keda_never_scales_past_the_partitions(env: str) -> None:
    cfg = config(env)
    by_topic = topics(env)
    sos = objects(env, "ScaledObject")
    assert {s["spec"]["scaleTargetRef"]["name"] for s in sos} == {"headrace-process", "headrace-shards"}
    targets = {(o["kind"], o["metadata"]["name"]) for o in workloads(env, LONG_RUNNING)}
    for so in sos:
        spec = so["spec"]
        assert (spec["scaleTargetRef"]["kind"], spec["scaleTargetRef"]["name"]) in targets
        (trigger,) = spec["triggers"]
        meta = trigger["metadata"]
        component = spec["scaleTargetRef"]["name"].removeprefix("headrace-")
        assert meta["consumerGroup"] == group_id(cfg, component)
        assert meta["bootstrapServers"] == cfg.kafka.bootstrap
        assert meta["allowIdleConsumers"] == "false"
        partitions = by_topic[meta["topic"]]["spec"]["partitions"]
        assert spec["maxReplicaCount"] <= partitions, so["metadata"]["name"]
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        if cfg.kafka.security_protocol.startswith("SASL"):
            assert trigger["authenticationRef"]["name"] in {
                o["metadata"]["name"] for o in objects(env, "TriggerAuthentication")
            }
            assert meta["sasl"] == cfg.kafka.sasl_mechanism.lower().replace("-", "_").replace("sha_", "sha")
            assert meta["tls"] == "enable"


@pytest.mark.parametrize("env", ENVS)
def test_kafka_topics_match_the_pipeline(env: str) -> None:
    cfg = config(env)
    by_topic = topics(env)
    specs = topics_for(cfg).specs(cfg.bus.partitions, cfg.kafka.min_insync_replicas)
    assert set(by_topic) == {s.name for s in specs}
    for spec in specs:
        topic = by_topic[spec.name]["spec"]
        assert topic["partitions"] == spec.partitions, spec.name
        assert topic["replicas"] == cfg.kafka.replication_factor, spec.name
        assert {k: str(v) for k, v in topic["config"].items()} == spec.configs | {
            "min.insync.replicas": str(cfg.kafka.min_insync_replicas)
        }, spec.name
        assert by_topic[spec.name]["metadata"]["namespace"] == "kafka"
    assert by_topic["compliance.blocklist"]["spec"]["config"]["cleanup.policy"] == "compact"
    assert by_topic["replay.progress"]["spec"]["config"]["cleanup.policy"] == "compact"
    assert int(by_topic["pages.raw"]["spec"]["config"]["max.message.bytes"]) >= 8 * 1024 * 1024
    if env == "prod":
        assert cfg.kafka.min_insync_replicas == 2 and cfg.kafka.replication_factor == 3
        assert cfg.kafka.security_protocol == "SASL_SSL"


@pytest.mark.parametrize("env", ENVS)
def test_replay_job_splits_the_manifest_across_its_indexes(env: str) -> None:
    (job,) = objects(env, "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    args = pod_spec(job)["containers"][0]["args"]
    shard = args[args.index("--shard") + 1]
    assert shard == f"$(REPLAY_SHARD_INDEX)/{spec['completions']}"
    assert spec["parallelism"] == spec["completions"]
    envs = {e["name"]: e for e in pod_spec(job)["containers"][0]["env"]}
    assert "job-completion-index" in envs["REPLAY_SHARD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    (cron,) = objects(env, "CronJob")
    assert pod_spec(cron)["containers"][0]["args"] == ["takedown", "verify", "--shards", "/data/shards"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"


@pytest.mark.parametrize("env", ENVS)
def test_network_policies_and_monitoring(env: str) -> None:
    nps = {o["metadata"]["name"]: o for o in objects(env, "NetworkPolicy")}
    deny = nps["headrace-default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    web = nps["headrace-public-web"]["spec"]["egress"][0]["to"][0]["ipBlock"]
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(web["except"])
    (svc,) = objects(env, "Service")
    (sm,) = objects(env, "ServiceMonitor")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"][0]["port"] in {p["name"] for p in svc["spec"]["ports"]}
    served = [o for o in workloads(env, LONG_RUNNING) if svc["spec"]["selector"].items() <= pod_labels(o).items()]
    assert len(served) == len(workloads(env, LONG_RUNNING))  # every long-running pod is scraped
    (rules,) = objects(env, "PrometheusRule")
    exprs = " ".join(r["expr"] for g in rules["spec"]["groups"] for r in g["rules"])
    for metric in ("headrace_consumer_lag", "headrace_live", "headrace_drops_total", "headrace_shards_sealed_total"):
        assert metric in exprs
