"""A small, strict kustomize for the features deploy/k8s uses, so the manifests render without a binary.

Supported: `resources` (files and directories), `components` (kind Component), `namespace`, `images`
(newName / newTag / digest) and `patches` with an inline JSON 6902 patch and a kind/name target.
Anything else in a kustomization raises, so a new feature in deploy/k8s cannot be silently ignored:
extend this module (and the cross-check against `kubectl kustomize` in test_kubernetes.py keeps it
honest where kubectl or kustomize is installed).
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED = {"apiVersion", "kind", "namespace", "resources", "components", "images", "patches"}
# Kinds the namespace transformer leaves alone (cluster-scoped).
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "IngressClass",
    "PriorityClass",
    "ClusterIssuer",
    "ClusterTriggerAuthentication",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}


class KustomizeError(ValueError):
    pass


def _kustomization_file(directory: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    raise KustomizeError(f"{directory}: no kustomization file")


def load_documents(path: Path) -> list[dict]:
    with path.open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def render(directory: Path | str) -> list[dict]:
    """The resources `kubectl kustomize DIRECTORY` would print, in file order."""
    return _build(Path(directory).resolve(), expect_kind="Kustomization")


def _build(directory: Path, expect_kind: str, resources: list[dict] | None = None) -> list[dict]:
    path = _kustomization_file(directory)
    spec = yaml.safe_load(path.read_text()) or {}
    kind = spec.get("kind", "Kustomization")
    if kind != expect_kind:
        raise KustomizeError(f"{path}: kind {kind}, expected {expect_kind}")
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise KustomizeError(f"{path}: unsupported fields {sorted(unknown)} (extend tests/support/kustomize.py)")

    # A component transforms the resources accumulated so far; a kustomization starts afresh.
    result = list(resources) if resources is not None else []
    for entry in spec.get("resources", []):
        target = (directory / entry).resolve()
        if target.is_dir():
            result += _build(target, expect_kind="Kustomization")
        elif target.is_file():
            result += [copy.deepcopy(doc) for doc in load_documents(target)]
        else:
            raise KustomizeError(f"{path}: resource {entry} does not exist")
    for entry in spec.get("components", []):
        result = _build((directory / entry).resolve(), expect_kind="Component", resources=result)

    for patch in spec.get("patches", []):
        _apply_patch(path, result, patch)
    if "namespace" in spec:
        for doc in result:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc.setdefault("metadata", {})["namespace"] = spec["namespace"]
    for image in spec.get("images", []):
        _set_image(result, image)
    _check_unique(path, result)
    return result


def _check_unique(path: Path, resources: list[dict]) -> None:
    seen = set()
    for doc in resources:
        key = identity(doc)
        if key in seen:
            raise KustomizeError(f"{path}: {key} defined twice")
        seen.add(key)


def identity(doc: dict) -> tuple[str, str, str]:
    meta = doc.get("metadata", {})
    return doc["kind"], meta.get("namespace", ""), meta["name"]


def _apply_patch(path: Path, resources: list[dict], patch: dict) -> None:
    if set(patch) - {"target", "patch"} or "target" not in patch:
        raise KustomizeError(f"{path}: only inline JSON 6902 patches with a target are supported")
    target = patch["target"]
    if set(target) - {"kind", "name"}:
        raise KustomizeError(f"{path}: patch targets select by kind and name only")
    operations = yaml.safe_load(patch["patch"])
    if not isinstance(operations, list):
        raise KustomizeError(f"{path}: patch is not a JSON 6902 list")
    matched = [
        doc
        for doc in resources
        if doc["kind"] == target.get("kind", doc["kind"]) and doc["metadata"]["name"] == target.get("name", "")
    ]
    if not matched:
        raise KustomizeError(f"{path}: patch target {target} matches nothing")
    for doc in matched:
        for operation in operations:
            _json_patch(doc, operation)


def _json_patch(doc: dict, operation: dict) -> None:
    op, pointer = operation["op"], operation["path"]
    parts = [part.replace("~1", "/").replace("~0", "~") for part in pointer.lstrip("/").split("/")]
    parent = doc
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    if op == "replace":
        if isinstance(parent, list):
            parent[int(last)] = operation["value"]
        else:
            if last not in parent:
                raise KustomizeError(f"replace of missing {pointer}")
            parent[last] = operation["value"]
    elif op == "add":
        if isinstance(parent, list):
            parent.insert(len(parent) if last == "-" else int(last), operation["value"])
        else:
            parent[last] = operation["value"]
    elif op == "remove":
        del parent[int(last) if isinstance(parent, list) else last]
    else:
        raise KustomizeError(f"unsupported JSON patch op {op!r}")


def _containers(doc: dict) -> list[dict]:
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec", {}) if "template" in spec else {}
    return pod.get("containers", []) + pod.get("initContainers", [])


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """(name, tag, digest) of an image reference."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, digest or None


def _set_image(resources: list[dict], rule: dict) -> None:
    if set(rule) - {"name", "newName", "newTag", "digest"}:
        raise KustomizeError(f"unsupported images entry {rule}")
    for doc in resources:
        for container in _containers(doc):
            name, tag, digest = split_image(container["image"])
            if name != rule["name"]:
                continue
            name = rule.get("newName", name)
            if "digest" in rule:
                container["image"] = f"{name}@{rule['digest']}"
            else:
                tag = rule.get("newTag", tag)
                container["image"] = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
