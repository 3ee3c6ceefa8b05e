"""Validates the Kubernetes manifests in a YAML file offline, as an API server would.

Usage: validate.py MANIFESTS.yaml
Deployments, Services, HorizontalPodAutoscalers and PodDisruptionBudgets are checked by
kubernetes-validate in strict mode (unknown fields fail) against each version in
KUBERNETES_VERSIONS. InferenceServices, ClusterServingRuntimes and ServingRuntimes are checked
against KServe's CRD schemas next to this file, with unknown fields refused as the API server's
strict field validation refuses them. Any other kind fails. Prints the objects as a JSON list on
stdout; exits 1 with the first problem.
"""
import json
import pathlib
import re
import sys

import jsonschema
import kubernetes_validate
import yaml

# The newest schemas kubernetes-validate 1.37.0 ships, and an older minor version that managed
# clusters still run.
KUBERNETES_VERSIONS = ["1.33.0", "1.37.0"]
# The kinds kubernetes-validate knows, and KServe's kinds with the schema file of each.
KUBERNETES_KINDS = (
    "apps/v1 Deployment",
    "v1 Service",
    "autoscaling/v2 HorizontalPodAutoscaler",
    "policy/v1 PodDisruptionBudget",
)
KSERVE_SCHEMAS = {
    "serving.kserve.io/v1beta1 InferenceService": "kserve-0.20.0-inferenceservice.schema.json",
    "serving.kserve.io/v1alpha1 ClusterServingRuntime": "kserve-0.20.0-clusterservingruntime.schema.json",
    "serving.kserve.io/v1alpha1 ServingRuntime": "kserve-0.20.0-servingruntime.schema.json",
}
# Service and InferenceService names (Kubernetes' and KServe's rule).
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def strict(schema):
    """The CRD schema with additionalProperties false wherever it lists properties and does not
    keep unknown fields: what the API server's strict field validation enforces."""
    out = dict(schema)
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            out[key] = strict(schema[key])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in schema:
            out[key] = [strict(s) for s in schema[key]]
    if "properties" in schema:
        out["properties"] = {name: strict(s) for name, s in schema["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            out.setdefault("additionalProperties", False)
    return out


def check_kserve(doc, validator):
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        raise ValueError(f"{'.'.join(map(str, e.absolute_path))}: {e.message}")
    # The CRDs leave metadata to the API server; these are the fields the manifests set.
    name = doc["metadata"]["name"]
    if not (DNS_1035_LABEL.match(name) and len(name) <= 63):
        raise ValueError(f"metadata.name: {name!r} is not a DNS-1035 label")
    for key, value in doc["metadata"].get("labels", {}).items():
        if not isinstance(value, str):
            raise ValueError(f"metadata.labels.{key}: {value!r} is not a string")


def main(path):
    docs = [d for d in yaml.safe_load_all(pathlib.Path(path).read_text()) if d is not None]
    if not docs:
        sys.exit(f"{path}: no manifests")
    here = pathlib.Path(__file__).parent
    validators = {
        kind: jsonschema.Draft202012Validator(strict(json.loads((here / file).read_text())))
        for kind, file in KSERVE_SCHEMAS.items()
    }
    for doc in docs:
        kind = f"{doc.get('apiVersion')} {doc.get('kind')}"
        try:
            if kind in KUBERNETES_KINDS:
                for version in KUBERNETES_VERSIONS:
                    kubernetes_validate.validate(doc, version, strict=True)
            elif kind in validators:
                check_kserve(doc, validators[kind])
            else:
                raise ValueError("no schema for this kind here")
        except Exception as e:  # kubernetes-validate's errors carry the path separately
            where = ".".join(map(str, getattr(e, "path", [])))
            message = getattr(e, "message", None) or str(e)
            sys.exit(f"{kind} invalid: {where + ': ' if where else ''}{message}")
    print(json.dumps(docs))


if __name__ == "__main__":
    main(sys.argv[1])
