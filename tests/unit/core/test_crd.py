"""The CRD rendered from the model: committed copy current, schema structural, rules present."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from worker_runtime.core import spec as spec_module
from worker_runtime.core.crd import field_reference, render_crd_yaml, workerpool_crd
from worker_runtime.core.spec import load_workerpool

REPO = Path(__file__).resolve().parents[3]
COMMITTED = REPO / "crds" / "workerpools.shoal.dev.yaml"


def schema() -> dict[str, Any]:
    version = workerpool_crd()["spec"]["versions"][0]
    result: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return result


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def test_committed_crd_is_the_generated_one() -> None:
    stale = "crds/workerpools.shoal.dev.yaml is stale: run `shoal crd > crds/workerpools...`"
    assert COMMITTED.read_text() == render_crd_yaml(), stale


def test_shoal_crd_prints_it() -> None:
    from shoal.commands.crd import command

    result = CliRunner().invoke(command, [])
    assert result.exit_code == 0
    assert result.output == render_crd_yaml()


def test_names_scope_subresources_and_columns() -> None:
    crd = workerpool_crd()
    assert crd["metadata"]["name"] == "workerpools.shoal.dev"
    spec = crd["spec"]
    assert (spec["group"], spec["scope"]) == ("shoal.dev", "Namespaced")
    names = spec["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == (
        "WorkerPool",
        "workerpools",
        ["wp"],
    )
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"]["status"] == {}
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Queues"] == ".spec.queues"
    assert columns["Desired"] == ".status.desiredReplicas"
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Workers"] == ".status.readyReplicas"
    assert columns["Backlog"] == ".status.backlog"
    assert columns["Age"] == ".metadata.creationTimestamp"


def test_schema_is_structural() -> None:
    """What the API server refuses in a v1 CRD schema never appears."""
    for path, node in walk(schema()):
        assert not {"$ref", "$defs", "title", "uniqueItems", "const"} & set(node), path
        assert node.get("additionalProperties") is not False, path
        assert not (node.get("properties") and node.get("additionalProperties")), path
        if node.get("x-kubernetes-int-or-string"):
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
        else:
            assert "anyOf" not in node, path
            assert node.get("type") in {
                "object",
                "array",
                "string",
                "integer",
                "number",
                "boolean",
            }, path
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            assert node.get(bound, True) is True, path
        assert "default" not in node or node.get("default") is not None, path


def test_every_spec_and_status_field_is_described() -> None:
    root = schema()["properties"]
    for top in ("spec", "status"):
        for path, node in walk(root[top], top):
            if "{" not in path and not path.endswith("[]"):
                assert node.get("description"), f"{path} has no description"


def test_bounds_enums_patterns_and_list_types() -> None:
    spec = schema()["properties"]["spec"]
    props = spec["properties"]
    assert spec["required"] == ["image", "queues"]
    queues = props["queues"]
    assert (queues["minItems"], queues["maxItems"], queues["x-kubernetes-list-type"]) == (
        1,
        32,
        "set",
    )
    assert queues["items"]["pattern"] == "^[a-z0-9][a-z0-9._-]{0,62}$"
    assert (props["concurrency"]["minimum"], props["concurrency"]["maximum"]) == (1, 10000)
    scaling = props["scaling"]["properties"]
    assert scaling["mode"]["enum"] == ["Auto", "Manual"]
    assert props["retry"]["properties"]["backoff"]["properties"]["type"]["enum"] == [
        "fixed",
        "exponential",
    ]
    per = props["rateLimit"]["properties"]["perSeconds"]
    assert (per["minimum"], per["exclusiveMinimum"]) == (0, True)
    assert props["env"]["x-kubernetes-list-map-keys"] == ["name"]
    assert props["nodeSelector"]["additionalProperties"] == {"type": "string"}
    conditions = schema()["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert schema()["properties"]["metadata"]["properties"]["name"]["maxLength"] == 63


def test_every_python_rule_is_a_cel_rule_on_its_object() -> None:
    cel_by_path = {
        path: {
            (v["rule"], v["message"], v["fieldPath"])
            for v in node.get("x-kubernetes-validations", [])
        }
        for path, node in walk(schema())
    }
    owners = {
        "RedisSpec": ".spec.redis",
        "BackoffSpec": ".spec.retry.backoff",
        "Scaling": ".spec.scaling",
        "EnvVar": ".spec.env[]",
        "EnvVarSource": ".spec.env[].valueFrom",
        "Toleration": ".spec.tolerations[]",
        "Resources": ".spec.resources",
        "WorkerPoolSpec": ".spec",
        "Volume": ".spec.volumes[]",
        "VolumeMount": ".spec.volumeMounts[]",
    }
    expected = 0
    for cls_name, path in owners.items():
        for rule in getattr(spec_module, cls_name).rules:
            assert (rule.cel, rule.message, f".{rule.field}") in cel_by_path[path], rule
            expected += 1
    found = sum(len(v) for v in cel_by_path.values())
    assert found == expected, "a CEL rule without a Python twin (or an unlisted model)"


def test_rule_fieldpaths_name_real_fields() -> None:
    for path, node in walk(schema()):
        for rule in node.get("x-kubernetes-validations", []):
            assert rule["fieldPath"].lstrip(".") in node["properties"], (path, rule)
            assert re.fullmatch(r"[^\n]{1,200}", rule["message"]), rule


def apply_crd_defaults(node: dict[str, Any], value: Any) -> Any:
    """What the API server does with defaults: fill absent properties, recursively."""
    if not isinstance(value, dict) or "properties" not in node:
        if isinstance(value, list) and "items" in node:
            return [apply_crd_defaults(node["items"], v) for v in value]
        return value
    out = dict(value)
    for name, sub in node["properties"].items():
        if name not in out and "default" in sub:
            out[name] = sub["default"]
        if name in out:
            out[name] = apply_crd_defaults(sub, out[name])
    return out


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_api_server_defaults_agree_with_the_model(path: Path) -> None:
    manifest = yaml.safe_load(path.read_text())
    defaulted = apply_crd_defaults(schema(), manifest)
    assert load_workerpool(defaulted) == load_workerpool(manifest)
    # and the model's own wire form carries exactly the CRD's defaults
    expected = load_workerpool(manifest).to_manifest()["spec"]
    for key in ("retry", "scaling", "concurrency", "maxJobsPerWorker", "timeoutSeconds"):
        assert defaulted["spec"][key] == expected[key]


def test_field_reference_table_in_docs_is_current() -> None:
    docs = (REPO / "docs" / "workerpool.md").read_text()
    missing = [row for row in field_reference() if row not in docs]
    assert not missing, "docs/workerpool.md field table is stale; regenerate it:\n" + "\n".join(
        missing[:5]
    )
