"""Validate Kubernetes YAML offline, for crates/cli/tests/kube.rs.

Each document is checked three ways:
1. kubernetes-validate (PyPI): the JSON schemas of the Kubernetes API,
   strict (an unknown field is an error), for the version given;
2. the kubernetes client's (PyPI) models: the document deserialized into
   V1Pod/V1Deployment/..., which enforces required fields and enums, then
   serialized back; anything that does not survive the round trip is a
   field the API would have dropped;
3. the API server's name rules (DNS-1123) for metadata, container,
   volume and port names, and volume references.
Prints one line per document; exits 1 on the first failure.
"""
import re
import sys

import kubernetes_validate
import yaml
from kubernetes.client import ApiClient

VERSION = sys.argv[2] if len(sys.argv) > 2 else "1.37.0"
MODELS = {
    ("v1", "Pod"): "V1Pod",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("v1", "Service"): "V1Service",
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Secret"): "V1Secret",
}
LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def fail(msg):
    print("INVALID " + msg)
    sys.exit(1)


def check_names(doc):
    kind = doc["kind"]
    name = doc["metadata"]["name"]
    rule = LABEL if kind in ("Service",) else SUBDOMAIN
    if not rule.match(name) or len(name) > 63:
        fail(f"{kind} name {name!r}")
    spec = doc.get("spec", {})
    if kind == "Deployment":
        spec = spec["template"]["spec"]
        sel = doc["spec"]["selector"]["matchLabels"]
        tl = doc["spec"]["template"]["metadata"]["labels"]
        for k, v in sel.items():
            if tl.get(k) != v:
                fail(f"Deployment {name}: selector {k}={v} does not match the template")
    if kind in ("Pod", "Deployment"):
        vols = {v["name"] for v in spec.get("volumes", [])}
        for v in vols:
            if not LABEL.match(v):
                fail(f"{kind} {name}: volume name {v!r}")
        for c in spec["containers"]:
            if not LABEL.match(c["name"]):
                fail(f"{kind} {name}: container name {c['name']!r}")
            paths = [m["mountPath"] for m in c.get("volumeMounts", [])]
            if len(paths) != len(set(paths)):
                fail(f"{kind} {name}: a mountPath twice in {paths}")
            envs = [e["name"] for e in c.get("env", [])]
            if len(envs) != len(set(envs)):
                fail(f"{kind} {name}: an env name twice in {envs}")
            for m in c.get("volumeMounts", []):
                if m["name"] not in vols:
                    fail(f"{kind} {name}: mount of undefined volume {m['name']!r}")
    if kind == "Service":
        for p in spec["ports"]:
            if not LABEL.match(p["name"]) or len(p["name"]) > 15:
                fail(f"Service {name}: port name {p['name']!r}")


def strip_none(x):
    if isinstance(x, dict):
        return {k: strip_none(v) for k, v in x.items() if v is not None}
    if isinstance(x, list):
        return [strip_none(v) for v in x]
    return x


def main():
    with open(sys.argv[1]) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    if not docs:
        fail("no documents")
    api = ApiClient()
    for doc in docs:
        kind = doc.get("kind")
        try:
            kubernetes_validate.validate(doc, VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            fail(f"{kind}: {e.message} at {list(e.path)}")
        model = MODELS.get((doc.get("apiVersion"), kind))
        if model is None:
            fail(f"unexpected kind {doc.get('apiVersion')}/{kind}")
        obj = api._ApiClient__deserialize(doc, model)
        back = strip_none(api.sanitize_for_serialization(obj))
        if back != doc:
            fail(f"{kind} {doc['metadata']['name']}: the {model} round trip changed it:\n{back}\n!=\n{doc}")
        check_names(doc)
        print(f"OK {kind} {doc['metadata']['name']}")


if __name__ == "__main__":
    main()
