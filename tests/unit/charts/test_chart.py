"""The Helm chart `charts/shoal`, rendered by the real `helm` (the pinned build in the k8s cache).

Checks what a reviewer would: the CRD copy matches `crds/`, the operator pod passes the restricted
Pod Security profile, RBAC grants exactly the operator's needs without wildcards in both scopes,
the schema refuses bad values naming the field, optional objects render only when enabled, and
every value is documented.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
CHART = REPO_ROOT / "charts" / "shoal"
BINARIES_SCRIPT = REPO_ROOT / "scripts" / "k8s-binaries.sh"
INSTALL_DOC = REPO_ROOT / "docs" / "install.md"
RELEASE, NAMESPACE = "shoal", "shoal-system"

Manifest = dict[str, Any]

# What the operator may do on namespaced objects (group, resource, verb): exactly what it calls
# (tests/integration/shoal_operator/test_rbac.py checks these against the audit log).
NAMESPACED_PERMISSIONS = {
    *(("shoal.dev", "workerpools", v) for v in ("get", "list", "watch", "patch")),
    ("shoal.dev", "workerpools/status", "patch"),
    *(("apps", "deployments", v) for v in ("get", "list", "watch", "create", "patch")),
    *(
        ("policy", "poddisruptionbudgets", v)
        for v in ("list", "watch", "create", "patch", "delete")
    ),
    ("", "pods", "list"),
    ("", "pods", "patch"),
    ("", "events", "create"),
}
LEASE_PERMISSIONS = {("coordination.k8s.io", "leases", v) for v in ("create", "get", "update")}
CLUSTER_READ_PERMISSIONS = {
    *(("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("get", "list", "watch")),
    *(("", "namespaces", v) for v in ("get", "list", "watch")),
}
DASHBOARD_METRICS = (
    "queue_waiting_jobs",
    "worker_completed_jobs_total",
    "worker_failed_jobs_total",
    "worker_job_duration_seconds_bucket",
    "worker_active_jobs",
    "shoal_pool_desired_replicas",
)


@cache
def _bin_dir() -> Path:
    out = subprocess.run(
        ["bash", str(BINARIES_SCRIPT), "--print-dir"], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip())


@pytest.fixture(scope="module")
def helm() -> Path:
    path = _bin_dir() / "helm"
    if not path.is_file():
        pytest.fail(
            f"helm not found at {path}; build it (~2 min, cached) with: "
            f"bash scripts/k8s-binaries.sh --with-helm",
            pytrace=False,
        )
    return path


def _helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=60)


def _template(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The pinned cluster version: helm built from modules otherwise assumes Kubernetes 1.20.
    kube = _bin_dir().parent.name
    return _helm(
        helm, "template", RELEASE, str(CHART), "-n", NAMESPACE, "--kube-version", kube, *args
    )


def render(helm: Path, *sets: str, set_json: tuple[str, ...] = ()) -> list[Manifest]:
    """`helm template` with --set KEY=VALUE pairs; the documents it prints, parsed."""
    args = [a for s in sets for a in ("--set", s)] + [
        a for s in set_json for a in ("--set-json", s)
    ]
    result = _template(helm, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def refused(helm: Path, *args: str) -> str:
    """Render with bad values; return the error helm printed (asserting it failed)."""
    result = _template(helm, *args)
    assert result.returncode != 0, f"helm accepted {args}"
    return result.stderr


def of_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[Manifest], kind: str) -> Manifest:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def permissions(role: Manifest) -> set[tuple[str, str, str]]:
    return {
        (g, r, v)
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }


def operator_container(docs: list[Manifest]) -> Manifest:
    containers = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["operator"]
    return containers[0]


AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"


def aggregated(role: Manifest) -> bool:
    return any(k.startswith(AGGREGATE) for k in role["metadata"].get("labels", {}))


def operator_roles(docs: list[Manifest], kind: str) -> list[Manifest]:
    """The operator's own Roles or ClusterRoles (not the aggregated ones, not the Lease's)."""
    return [r for r in of_kind(docs, kind)
            if not aggregated(r) and not r["metadata"]["name"].endswith("-leader")]  # fmt: skip


def env_of(docs: list[Manifest]) -> dict[str, Manifest]:
    return {e["name"]: e for e in operator_container(docs)["env"]}


SCOPES = {
    "cluster": ("rbac.scope=cluster",),
    "namespace": ("rbac.scope=namespace", "rbac.namespaces={team-a,team-b}"),
}


@pytest.fixture(params=sorted(SCOPES), scope="module")
def scoped(request: pytest.FixtureRequest, helm: Path) -> tuple[str, list[Manifest]]:
    return request.param, render(helm, *SCOPES[request.param])


# --- the CRD ----------------------------------------------------------------------------------


def test_chart_crds_are_byte_identical_copies_of_the_repo_crds() -> None:
    repo = {p.name: p.read_bytes() for p in (REPO_ROOT / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert repo, "no CRD in crds/"
    assert sorted(chart) == sorted(repo), "run scripts/sync-chart-crds.sh"
    for name, content in repo.items():
        assert chart[name] == content, (
            f"charts/shoal/crds/{name} differs: run scripts/sync-chart-crds.sh"
        )


# --- lint -------------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", sorted(SCOPES))
def test_helm_lint_is_clean(helm: Path, scope: str) -> None:
    args = [a for s in SCOPES[scope] for a in ("--set", s)]
    result = _helm(helm, "lint", "--strict", str(CHART), *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout, result.stdout
    assert "[ERROR]" not in result.stdout, result.stdout


# --- the operator pod -------------------------------------------------------------------------


def test_operator_pod_meets_the_restricted_profile(scoped: tuple[str, list[Manifest]]) -> None:
    _, docs = scoped
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "hostNetwork" not in pod
    assert "hostPID" not in pod
    assert "hostIPC" not in pod
    container = operator_container(docs)
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 10001
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["readOnlyRootFilesystem"] is True
    # ...and the one writable place is an emptyDir at /tmp.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert all(
        set(v) <= {"name", "emptyDir", "configMap", "secret", "projected"} for v in volumes.values()
    )


def test_operator_runs_shoal_operator_with_probes_on_its_health_endpoint(helm: Path) -> None:
    container = operator_container(render(helm, "operator.livenessPort=8181", "metrics.port=9191"))
    assert container["args"][0] == "operator"
    assert "--liveness-port=8181" in container["args"]
    assert "--metrics-port=9191" in container["args"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8181, "metrics": 9191}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}, probe
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]


def test_image_tag_defaults_to_app_version(helm: Path) -> None:
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert operator_container(render(helm))["image"] == f"shoal:{app_version}"
    container = operator_container(
        render(
            helm,
            "image.repository=registry.example:5000/shoal",
            "image.tag=dev",
            "image.pullPolicy=Never",
        )
    )
    assert container["image"] == "registry.example:5000/shoal:dev"
    assert container["imagePullPolicy"] == "Never"


DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("tag", "image", "version"),
    [
        (f"@{DIGEST}", f"registry.example/shoal@{DIGEST}", None),  # digest only
        (f"1.4@{DIGEST}", f"registry.example/shoal:1.4@{DIGEST}", "1.4"),
    ],
)
def test_image_tag_with_a_digest_renders_a_pullable_reference(
    helm: Path, tag: str, image: str, version: str | None
) -> None:
    docs = render(helm, "image.repository=registry.example/shoal", f"image.tag={tag}")
    assert operator_container(docs)["image"] == image
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    for doc in docs:  # a label value holds no "@" or ":"
        labels = doc["metadata"].get("labels") or {}
        assert labels["app.kubernetes.io/version"] == (version or app_version), doc["kind"]


def test_redis_url_and_password_by_secret_reference(helm: Path) -> None:
    env = env_of(render(helm))
    assert "REDIS_URL" not in env
    assert "REDIS_PASSWORD" not in env
    url, secret = (
        "redis.url=redis://redis.shoal.svc:6379/0",
        "redis.passwordSecretRef.name=redis-auth",
    )
    env = env_of(render(helm, url, secret, "redis.passwordSecretRef.key=pw"))
    assert env["REDIS_URL"]["value"] == "redis://redis.shoal.svc:6379/0"
    assert env["REDIS_PASSWORD"] == {
        "name": "REDIS_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "redis-auth", "key": "pw"}},
    }


def test_redis_ca_by_secret_reference_mounted_for_the_operator(helm: Path) -> None:
    docs = render(helm, "redis.url=rediss://redis.shoal.svc:6380/0",
                  "redis.caSecretRef.name=redis-ca")  # fmt: skip
    assert env_of(docs)["REDIS_CA_FILE"]["value"] == "/etc/shoal/redis-ca/ca.crt"
    mounts = operator_container(docs)["volumeMounts"]
    assert {"name": "redis-ca", "mountPath": "/etc/shoal/redis-ca", "readOnly": True} in mounts
    volumes = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "redis-ca", "secret": {"secretName": "redis-ca",
            "items": [{"key": "ca.crt", "path": "ca.crt"}]}} in volumes  # fmt: skip
    assert "REDIS_CA_FILE" not in env_of(render(helm))


def test_standard_labels_on_every_object(scoped: tuple[str, list[Manifest]]) -> None:
    _, docs = scoped
    for doc in docs:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "shoal", doc["kind"]
        assert labels["app.kubernetes.io/instance"] == RELEASE, doc["kind"]
        assert labels["app.kubernetes.io/version"], doc["kind"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm", doc["kind"]


# --- RBAC -------------------------------------------------------------------------------------


def _rules(docs: list[Manifest]) -> Iterator[tuple[Manifest, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in ("Role", "ClusterRole"):
            for rule in doc["rules"]:
                yield doc, rule


def test_no_wildcard_in_any_rbac_rule(scoped: tuple[str, list[Manifest]]) -> None:
    _, docs = scoped
    rules = list(_rules(docs))
    assert rules
    for doc, rule in rules:
        for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
            assert not any("*" in item for item in rule.get(field, [])), (
                doc["metadata"]["name"],
                rule,
            )


def test_cluster_scope_grants_exactly_the_operators_needs(helm: Path) -> None:
    docs = render(helm, *SCOPES["cluster"])
    assert not operator_roles(docs, "Role")
    granted = set().union(*(permissions(r) for r in operator_roles(docs, "ClusterRole")))
    assert granted == NAMESPACED_PERMISSIONS | CLUSTER_READ_PERMISSIONS
    args = operator_container(docs)["args"]
    assert not any(a.startswith("--namespace") for a in args), "cluster scope watches everything"
    _assert_bindings_reach_the_service_account(docs)


def test_namespace_scope_grants_namespaced_rights_only_in_watched_namespaces(helm: Path) -> None:
    docs = render(helm, *SCOPES["namespace"])
    roles = operator_roles(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert permissions(role) == NAMESPACED_PERMISSIONS
    # The only cluster-wide grant: reading CRDs and namespaces (cluster-scoped; kopf needs them).
    (cluster_role,) = operator_roles(docs, "ClusterRole")
    assert permissions(cluster_role) == CLUSTER_READ_PERMISSIONS
    args = operator_container(docs)["args"]
    assert [a for a in args if a.startswith("--namespace")] == [
        "--namespace=team-a",
        "--namespace=team-b",
    ]
    _assert_bindings_reach_the_service_account(docs)


def test_namespace_scope_defaults_to_the_release_namespace(helm: Path) -> None:
    docs = render(helm, "rbac.scope=namespace")
    assert [r["metadata"]["namespace"] for r in operator_roles(docs, "Role")] == [NAMESPACE]
    assert f"--namespace={NAMESPACE}" in operator_container(docs)["args"]


def test_extra_rules_are_added(helm: Path) -> None:
    rule = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}
    docs = render(helm, set_json=(f"rbac.extraRules=[{json.dumps(rule)}]",))
    (role,) = [r for r in of_kind(docs, "ClusterRole") if ("", "pods", "list") in permissions(r)]
    assert ("", "secrets", "get") in permissions(role)


def _assert_bindings_reach_the_service_account(docs: list[Manifest]) -> None:
    sa = one(docs, "ServiceAccount")["metadata"]
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == sa["name"]
    roles = {(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in docs}
    bindings = of_kind(docs, "RoleBinding") + of_kind(docs, "ClusterRoleBinding")
    assert bindings
    for b in bindings:
        assert b["subjects"] == [
            {"kind": "ServiceAccount", "name": sa["name"], "namespace": sa["namespace"]}
        ]
        ns = b["metadata"].get("namespace") if b["roleRef"]["kind"] == "Role" else None
        assert (b["roleRef"]["kind"], b["roleRef"]["name"], ns) in roles, b["metadata"]["name"]
    # Every role is bound (an unbound role is dead weight or a mistake), but the aggregated ones
    # (folded into view/edit/admin by the API server).
    bound = {
        (b["roleRef"]["kind"], b["roleRef"]["name"], b["metadata"].get("namespace"))
        for b in bindings
    }
    for kind in ("Role", "ClusterRole"):
        for r in of_kind(docs, kind):
            if aggregated(r):
                continue
            assert (kind, r["metadata"]["name"], r["metadata"].get("namespace")) in bound


# --- the schema -------------------------------------------------------------------------------

BAD_VALUES = [
    (["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
    (["--set", "image.repository=Shoal:dev"], "/image/repository"),
    (["--set", "rbac.scope=everything"], "/rbac/scope"),
    (["--set", "rbac.scop=cluster"], "scop"),
    (["--set", "rbac.namespaces={Team_A}"], "/rbac/namespaces/0"),
    (["--set", "redis.url=http://redis:6379"], "/redis/url"),
    (["--set", "redis.url=redis://:hunter2@redis:6379/0"], "/redis/url"),
    (["--set", "redis.url=redis://redis:6379/0?password=hunter2"], "/redis/url"),
    (["--set", "redis.caSecretRef.name=Bad_Name"], "/redis/caSecretRef/name"),
    (["--set", "operator.tickSeconds=0"], "/operator/tickSeconds"),
    (["--set", "operator.logLevel=loud"], "/operator/logLevel"),
    (["--set", "metrics.port=70000"], "/metrics/port"),
    (["--set", "metrics.serviceMonitor.interval=often"], "/metrics/serviceMonitor/interval"),
    (["--set-json", 'rbac.extraRules=[{"apiGroups":["*"],"resources":["pods"],"verbs":["get"]}]'],
     "/rbac/extraRules/0/apiGroups/0"),
    (["--set-json", 'rbac.extraRules=[{"apiGroups":[""],"resources":["pods"],"verbs":["*"]}]'],
     "/rbac/extraRules/0/verbs/0"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "field"), BAD_VALUES, ids=[f for _, f in BAD_VALUES])
def test_schema_refuses_bad_values_naming_the_field(
    helm: Path, args: list[str], field: str
) -> None:
    error = refused(helm, *args)
    assert "values don't meet the specifications of the schema" in error
    assert field in error, error


def test_helm_lint_refuses_a_bad_value_naming_the_field(helm: Path) -> None:
    result = _helm(helm, "lint", str(CHART), "--set", "image.pullPolicy=Sometimes")
    assert result.returncode != 0
    assert "/image/pullPolicy" in result.stdout + result.stderr


def test_service_monitor_without_metrics_service_is_refused(helm: Path) -> None:
    error = refused(
        helm, "--set", "metrics.enabled=false", "--set", "metrics.serviceMonitor.enabled=true"
    )
    assert "metrics.serviceMonitor.enabled needs metrics.enabled" in error


# --- optional objects -------------------------------------------------------------------------

OPTIONAL_KINDS = ("ServiceMonitor", "PodMonitor", "NetworkPolicy", "ConfigMap", "PrometheusRule")


def test_optional_objects_are_off_by_default(helm: Path) -> None:
    kinds = {d["kind"] for d in render(helm)}
    assert kinds.isdisjoint(OPTIONAL_KINDS), kinds
    # CRDs live in crds/ (installed once, never deleted by helm uninstall), not in templates/.
    assert "CustomResourceDefinition" not in kinds
    assert {"Deployment", "ServiceAccount", "Service", "ClusterRole", "ClusterRoleBinding"} <= kinds


def test_service_monitor_scrapes_the_operator_metrics_service(helm: Path) -> None:
    docs = render(
        helm, "metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom"
    )
    monitor, service = one(docs, "ServiceMonitor"), one(docs, "Service")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    assert endpoint["path"] == "/metrics"
    assert [p["name"] for p in service["spec"]["ports"]] == ["metrics"]


@pytest.mark.parametrize("scope", sorted(SCOPES))
def test_pod_monitor_selects_worker_pods(helm: Path, scope: str) -> None:
    monitor = one(render(helm, *SCOPES[scope], "metrics.podMonitor.enabled=true"), "PodMonitor")
    selector = monitor["spec"]["selector"]
    assert selector["matchLabels"] == {"app.kubernetes.io/managed-by": "shoal"}
    assert selector["matchExpressions"] == [{"key": "shoal.dev/pool", "operator": "Exists"}]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "metrics"
    expected = {"matchNames": ["team-a", "team-b"]} if scope == "namespace" else {"any": True}
    assert monitor["spec"]["namespaceSelector"] == expected


def test_grafana_dashboard_configmap_holds_the_panels(helm: Path) -> None:
    config_map = one(render(helm, "grafanaDashboard.enabled=true"), "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = config_map["data"].values()
    dashboard = json.loads(text)
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for word in ("backlog", "throughput", "latency", "replicas", "failures"):
        assert word in titles
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in DASHBOARD_METRICS:
        assert re.search(rf"\b{metric}\b", exprs), metric
    assert "histogram_quantile(0.5," in exprs
    assert "histogram_quantile(0.95," in exprs


def test_network_policy_confines_the_operator(helm: Path) -> None:
    docs = render(
        helm,
        "networkPolicy.enabled=true",
        "networkPolicy.redis.ports={6380}",
        set_json=('networkPolicy.apiServer.to=[{"ipBlock":{"cidr":"10.96.0.1/32"}}]',),
    )
    policy = one(docs, "NetworkPolicy")["spec"]
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    egress_ports = [{p["port"] for p in rule["ports"]} for rule in policy["egress"]]
    assert egress_ports == [{53}, {443, 6443}, {6380}]
    assert policy["egress"][1]["to"] == [{"ipBlock": {"cidr": "10.96.0.1/32"}}]
    ingress_ports = {p["port"] for rule in policy["ingress"] for p in rule["ports"]}
    assert ingress_ports == {"metrics", "health"}


# --- high availability ------------------------------------------------------------------------


@pytest.mark.parametrize("scope", sorted(SCOPES))
def test_two_operator_replicas_share_a_lease_and_keep_one_through_drains(
    helm: Path, scope: str
) -> None:
    docs = render(helm, *SCOPES[scope])
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    args = operator_container(docs)["args"]
    assert "--lease-name=shoal-operator" in args
    assert "--lease-seconds=10" in args
    env = env_of(docs)
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    spread = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = spread["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    # The Lease: in the release namespace, get/update on its own name only.
    (leader,) = [r for r in of_kind(docs, "Role") if r["metadata"]["name"].endswith("-leader")]
    assert leader["metadata"]["namespace"] == NAMESPACE
    assert permissions(leader) == LEASE_PERMISSIONS
    for rule in leader["rules"]:
        if "get" in rule["verbs"]:
            assert rule["resourceNames"] == ["shoal-operator"]


def test_one_replica_has_no_pdb(helm: Path) -> None:
    docs = render(helm, "operator.replicas=1")
    assert one(docs, "Deployment")["spec"]["replicas"] == 1
    assert not of_kind(docs, "PodDisruptionBudget")


def test_workerpools_are_aggregated_into_view_and_edit(helm: Path) -> None:
    docs = render(helm)
    roles = {r["metadata"]["name"]: r for r in of_kind(docs, "ClusterRole") if aggregated(r)}
    assert set(roles) == {"shoal-view", "shoal-edit"}
    view, edit = roles["shoal-view"], roles["shoal-edit"]
    assert {f"{AGGREGATE}{r}" for r in ("view", "edit", "admin")} <= set(view["metadata"]["labels"])
    assert f"{AGGREGATE}view" not in edit["metadata"]["labels"]
    assert {v for _, _, v in permissions(view)} == {"get", "list", "watch"}
    assert ("shoal.dev", "workerpools", "create") in permissions(edit)
    assert ("shoal.dev", "workerpools/scale", "update") in permissions(edit)
    assert not [r for r in of_kind(render(helm, "rbac.aggregateToDefaultRoles=false"),
                                   "ClusterRole") if aggregated(r)]  # fmt: skip


# --- alerts and worker network policy ----------------------------------------------------------


def test_prometheus_rule_carries_the_documented_alerts(helm: Path) -> None:
    docs = render(helm, "prometheusRule.enabled=true", "prometheusRule.labels.release=prom")
    rule = one(docs, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "prom"
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {
        "ShoalJobsDeadLettered", "ShoalJobsStalledOut", "ShoalWorkerUnhealthy",
        "ShoalWorkerDegraded", "ShoalOperatorNoLeader", "ShoalOperatorTwoLeaders",
        "ShoalOperatorErrors",
    }  # fmt: skip
    documented = (REPO_ROOT / "docs" / "observability.md").read_text()
    for name, alert in alerts.items():
        assert f"`{name}`" in documented, name
        assert alert["labels"]["severity"] in ("critical", "warning")
        assert alert["annotations"]["summary"]
    assert "worker_dead_lettered_jobs_total" in alerts["ShoalJobsDeadLettered"]["expr"]
    assert 'outcome="failed"' in alerts["ShoalJobsStalledOut"]["expr"]
    assert "shoal_operator_leader" in alerts["ShoalOperatorNoLeader"]["expr"]
    assert alerts["ShoalWorkerUnhealthy"]["for"] == "5m"
    # Prometheus' own template syntax reaches Prometheus untouched.
    assert "{{ $labels.queue }}" in alerts["ShoalJobsDeadLettered"]["annotations"]["summary"]


@pytest.mark.parametrize("scope", sorted(SCOPES))
def test_worker_network_policy_confines_the_pools_pods(helm: Path, scope: str) -> None:
    docs = render(helm, *SCOPES[scope], "workerNetworkPolicy.enabled=true",
                  "workerNetworkPolicy.redis.ports={6380}")  # fmt: skip
    policies = [p for p in of_kind(docs, "NetworkPolicy") if p["metadata"]["name"].endswith(
        "-workers")]  # fmt: skip
    expected = ["team-a", "team-b"] if scope == "namespace" else [NAMESPACE]
    assert sorted(p["metadata"]["namespace"] for p in policies) == expected
    spec = policies[0]["spec"]
    assert spec["podSelector"]["matchLabels"] == {"app.kubernetes.io/managed-by": "shoal"}
    assert spec["podSelector"]["matchExpressions"] == [
        {"key": "shoal.dev/pool", "operator": "Exists"}
    ]
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    assert [{p["port"] for p in rule["ports"]} for rule in spec["egress"]] == [{53}, {6380}]
    assert [p["port"] for rule in spec["ingress"] for p in rule["ports"]] == ["metrics"]
    listed = render(helm, "workerNetworkPolicy.enabled=true",
                    "workerNetworkPolicy.namespaces={jobs}")  # fmt: skip
    assert [p["metadata"]["namespace"] for p in of_kind(listed, "NetworkPolicy")] == ["jobs"]


# --- documentation ----------------------------------------------------------------------------


def _value_paths(node: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(node, dict) and node:
        for key, child in node.items():
            yield from _value_paths(child, f"{prefix}{key}.")
    else:
        yield prefix.rstrip(".")


def test_every_value_has_a_comment() -> None:
    """A comment line just above each key, or a comment at the end of its line."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    for n, line in enumerate(lines):
        if re.match(r"^\s*[A-Za-z][\w-]*:", line):
            above = lines[n - 1].strip() if n else ""
            documented = above.startswith("#") or " # " in line
            assert documented, f"values.yaml line {n + 1} has no comment: {line.strip()}"


def test_every_value_is_in_the_install_docs_table() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = set(re.findall(r"^\| `([\w.]+)`", INSTALL_DOC.read_text(), flags=re.M))
    for path in _value_paths(values):
        parts = path.split(".")
        ancestors = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        assert ancestors & documented, f"{path} is not in the values table of docs/install.md"


def test_schema_covers_every_value() -> None:
    """additionalProperties is false everywhere, so an undeclared key would be refused."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def declared(path: str) -> bool:
        node = schema
        for part in path.split("."):
            props = node.get("properties")
            if props is None:  # a free-form object (resources, securityContext, ...)
                return node.get("type") == "object"
            if part not in props:
                return False
            node = props[part]
        return True

    for path in _value_paths(values):
        assert declared(path), f"{path} is not declared in values.schema.json"


# --- the web dashboard (dashboard.enabled) ------------------------------------------------------


def dashboard_objects(docs: list[Manifest]) -> list[Manifest]:
    return [d for d in docs if d["metadata"]["name"].endswith("-dashboard")]


def test_dashboard_is_off_by_default(helm: Path) -> None:
    assert dashboard_objects(render(helm)) == []


@pytest.mark.parametrize("scope", sorted(SCOPES))
def test_helm_lint_is_clean_with_the_dashboard(helm: Path, scope: str) -> None:
    sets = (*SCOPES[scope], "dashboard.enabled=true")
    result = _helm(helm, "lint", "--strict", str(CHART), *(a for s in sets for a in ("--set", s)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout, result.stdout


@pytest.mark.parametrize("scope", sorted(SCOPES))
def test_dashboard_serves_read_only_with_its_own_read_only_account(helm: Path, scope: str) -> None:
    docs = render(helm, *SCOPES[scope], "dashboard.enabled=true", "redis.url=redis://r:6379/0")
    objects = dashboard_objects(docs)
    deployment = one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][:3] == ["dashboard", "--host=0.0.0.0", "--port=8700"]
    assert "--kube" in container["args"]
    assert "--allow-writes" not in container["args"]
    assert "--show-payloads" not in container["args"]
    assert {e["name"] for e in container["env"]} == {"REDIS_URL"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    # Its own account, reading WorkerPools and nothing else; not the operator's.
    assert pod["serviceAccountName"] == one(objects, "ServiceAccount")["metadata"]["name"]
    (operator,) = [d for d in of_kind(docs, "Deployment") if d is not deployment]
    assert pod["serviceAccountName"] != operator["spec"]["template"]["spec"]["serviceAccountName"]
    roles = [d for d in objects if d["kind"] in ("Role", "ClusterRole")]
    assert roles
    for role in roles:
        assert permissions(role) == {
            ("shoal.dev", "workerpools", v) for v in ("get", "list", "watch")
        }
    if scope == "namespace":
        assert {r["metadata"]["namespace"] for r in roles} == {"team-a", "team-b"}
        assert {"--namespace=team-a", "--namespace=team-b"} <= set(container["args"])
    # The Service selects the dashboard pod only (not the operator's).
    service = one(objects, "Service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "dashboard"
    assert service["spec"]["type"] == "ClusterIP"


def test_dashboard_writes_take_the_token_from_a_secret(helm: Path) -> None:
    error = refused(helm, "--set", "dashboard.enabled=true", "--set", "dashboard.allowWrites=true")
    assert "dashboard.tokenSecretRef.name" in error
    docs = render(
        helm, "dashboard.enabled=true", "dashboard.allowWrites=true",
        "dashboard.tokenSecretRef.name=dash", "dashboard.showPayloads=true",
        "dashboard.pools=false", "dashboard.queues={mail,thumbs}",
    )  # fmt: skip
    objects = dashboard_objects(docs)
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["SHOAL_DASHBOARD_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": "dash", "key": "token"}
    }
    assert {"--allow-writes", "--show-payloads", "--queue=mail", "--queue=thumbs"} <= set(
        container["args"]
    )
    assert "--kube" not in container["args"]
    assert not [d for d in objects if d["kind"] in ("Role", "ClusterRole")]
    bad_queue = refused(helm, "--set", "dashboard.enabled=true", "--set", "dashboard.queues={Bad}")
    assert "/dashboard/queues" in bad_queue
