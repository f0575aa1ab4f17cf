"""Structural validation: Knative objects against the Knative CRD JSON schemas
(additionalProperties false: a misspelt field fails), core kinds against the
Kubernetes OpenAPI schemas (kubernetes-validate, strict)."""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.manifests import project_facts as pf

# The oldest Kubernetes the pinned Knative 1.22 runs on: 1.34 (knative.dev/pkg
# version/version.go defaultMinimumVersion "v1.34.0", vendored by eventing
# knative-v1.22.0: the components' start-up check). kubernetes-validate
# ships the 1.34.0 schemas (test_the_schemas_of_that_version_are_shipped).
KUBERNETES_VERSION = "1.34.0"
ALL_BUILDS = ["base", *pf.OVERLAYS]


@cache
def _validator(path: Path) -> jsonschema.protocols.Validator:
    schema = json.loads(path.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    cls.check_schema(schema)
    return cls(schema)


def knative_errors(obj: dict, schema_dir: Path) -> list[str]:
    group, _, version = obj["apiVersion"].partition("/")
    path = schema_dir / group / f"{obj['kind'].lower()}_{version}.json"
    if not path.is_file():
        return [f"no schema for {obj['apiVersion']} {obj['kind']} ({path})"]
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in _validator(path).iter_errors(obj)]


def is_knative(obj: dict) -> bool:
    return obj["apiVersion"].split("/")[0].endswith(".knative.dev")


@pytest.mark.parametrize("build_name", ALL_BUILDS)
def test_knative_objects_match_crd_schemas(builds, schema_dir, build_name):
    problems = {}
    knative = [o for o in builds[build_name] if is_knative(o)]
    assert knative
    for obj in knative:
        errors = knative_errors(obj, schema_dir)
        if errors:
            problems[f"{obj['kind']}/{obj['metadata']['name']}"] = errors
    assert problems == {}


@pytest.mark.parametrize("build_name", ALL_BUILDS)
def test_core_objects_match_kubernetes_schemas(builds, build_name):
    core = [o for o in builds[build_name] if not is_knative(o)]
    assert core, "the build has core objects (ConfigMap, ...)"
    for obj in core:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_secret_template_is_a_valid_secret():
    path = pf.KNATIVE / "secrets" / "stores-secret.template.yaml"
    kubernetes_validate.validate(yaml.safe_load(path.read_text(encoding="utf-8")), KUBERNETES_VERSION, strict=True)


def test_schema_validation_catches_a_misspelt_field(builds, schema_dir):
    """The schemas really are strict (additionalProperties false)."""
    svc = json.loads(json.dumps(next(o for o in builds["base"] if o["kind"] == "Service")))
    svc["spec"]["template"]["spec"]["containerConcurency"] = 8
    assert any("containerConcurency" in e for e in knative_errors(svc, schema_dir))
    trigger = json.loads(json.dumps(next(o for o in builds["base"] if o["kind"] == "Trigger")))
    trigger["spec"]["delivery"]["backoffDelays"] = "PT1S"
    assert knative_errors(trigger, schema_dir)


def test_kubernetes_validation_catches_a_bad_field(builds):
    cm = json.loads(json.dumps(next(o for o in builds["base"] if o["kind"] == "ConfigMap")))
    cm["datas"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(cm, KUBERNETES_VERSION, strict=True)


def test_the_schemas_of_that_version_are_shipped():
    """Validation must use that version's schemas, not a neighbour's."""
    schema_dir = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    assert (schema_dir / f"v{KUBERNETES_VERSION}-local-strict").is_dir()
