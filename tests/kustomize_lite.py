"""A small kustomize renderer: the subset of kustomize semantics that ``k8s/`` uses.

Supported (anything else in a kustomization.yaml is an error, so the subset cannot drift silently):
``resources`` (files and directories), ``namespace``, ``configMapGenerator`` (``files``, ``literals``,
``behavior: create|replace|merge``), ``images``, and ``patches`` given by ``path`` or inline ``patch``,
with or without ``target`` (``kind``, ``name`` as an anchored regular expression, ``labelSelector``),
as strategic-merge patches (merge keys of the pod-spec lists we patch) or JSON 6902 operations.

Generated ConfigMaps get a content-hash name suffix and every reference in pod specs follows it, as in
kustomize; the suffix is computed here (sha256 of the name and data) and differs from kustomize's own,
so a cross-check against a real kustomize compares names without it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml

KNOWN_FIELDS = {"apiVersion", "kind", "resources", "namespace", "configMapGenerator", "images", "patches"}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}
# Strategic-merge keys of the lists we patch (from the Kubernetes API's patchMergeKey tags).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
}
NATIVE_GROUPS = {"v1", "apps/v1", "batch/v1", "policy/v1", "networking.k8s.io/v1", "autoscaling/v2"}
GENERATED = "kustomize-lite/generated"


class KustomizeError(ValueError):
    """The kustomization uses something this renderer does not support, or is invalid."""


def render(directory: Path) -> list[dict[str, Any]]:
    objects = _build(Path(directory))
    _apply_name_suffixes(objects)
    return objects


def _load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _build(directory: Path) -> list[dict[str, Any]]:
    kfile = directory / "kustomization.yaml"
    if not kfile.is_file():
        raise KustomizeError(f"{directory} has no kustomization.yaml")
    k = yaml.safe_load(kfile.read_text()) or {}
    unknown = set(k) - KNOWN_FIELDS
    if unknown:
        raise KustomizeError(f"{kfile}: unsupported fields {sorted(unknown)}")
    objects: list[dict[str, Any]] = []
    for res in k.get("resources", []):
        path = (directory / res).resolve()
        objects.extend(_build(path) if path.is_dir() else _load_yaml_docs(path))
    for gen in k.get("configMapGenerator", []):
        _generate_configmap(directory, gen, objects)
    for patch in k.get("patches", []):
        _apply_patch(directory, patch, objects)
    for image in k.get("images", []):
        for obj in objects:
            _set_images(obj, image)
    if "namespace" in k:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = k["namespace"]
    _check_unique(objects)
    return objects


def _check_unique(objects: list[dict[str, Any]]) -> None:
    seen: set[tuple[str, str, str]] = set()
    for obj in objects:
        key = (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if key in seen:
            raise KustomizeError(f"duplicate resource {key}")
        seen.add(key)


# -- generators -----------------------------------------------------------------------------------------
def _generate_configmap(directory: Path, gen: dict[str, Any], objects: list[dict[str, Any]]) -> None:
    unknown = set(gen) - {"name", "behavior", "files", "literals"}
    if unknown:
        raise KustomizeError(f"configMapGenerator: unsupported fields {sorted(unknown)}")
    data: dict[str, str] = {}
    for spec in gen.get("files", []):
        key, _, rel = spec.rpartition("=") if "=" in spec else ("", "", spec)
        path = directory / rel
        data[key or path.name] = path.read_text()
    for literal in gen.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = value
    behavior = gen.get("behavior", "create")
    existing = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == gen["name"]]
    if behavior == "create":
        if existing:
            raise KustomizeError(f"ConfigMap {gen['name']} already exists; use behavior replace or merge")
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": gen["name"], "annotations": {GENERATED: "true"}},
                "data": data,
            }
        )
    elif behavior in ("replace", "merge"):
        if len(existing) != 1:
            raise KustomizeError(f"behavior {behavior}: no ConfigMap {gen['name']} to {behavior}")
        existing[0]["data"] = data if behavior == "replace" else {**existing[0].get("data", {}), **data}
    else:
        raise KustomizeError(f"unknown generator behavior {behavior!r}")


def _suffix(cm: dict[str, Any]) -> str:
    blob = json.dumps(
        {"kind": "ConfigMap", "name": cm["metadata"]["name"], "data": cm.get("data", {})},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def _apply_name_suffixes(objects: list[dict[str, Any]]) -> None:
    renames: dict[str, str] = {}
    for obj in objects:
        annotations = obj["metadata"].get("annotations", {})
        if obj["kind"] == "ConfigMap" and annotations.pop(GENERATED, None):
            if not annotations:
                del obj["metadata"]["annotations"]
            old = obj["metadata"]["name"]
            renames[old] = obj["metadata"]["name"] = f"{old}-{_suffix(obj)}"
    for obj in objects:
        _rename_configmap_refs(obj, renames)


def _rename_configmap_refs(node: Any, renames: dict[str, str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            refs = ("configMap", "configMapRef", "configMapKeyRef")
            if key in refs and isinstance(value, dict) and value.get("name") in renames:
                value["name"] = renames[value["name"]]
            _rename_configmap_refs(value, renames)
    elif isinstance(node, list):
        for item in node:
            _rename_configmap_refs(item, renames)


# -- patches ----------------------------------------------------------------------------------------------
def _selected(obj: dict[str, Any], target: dict[str, Any]) -> bool:
    unknown = set(target) - {"kind", "name", "labelSelector"}
    if unknown:
        raise KustomizeError(f"patch target: unsupported fields {sorted(unknown)}")
    if "kind" in target and not re.fullmatch(target["kind"], obj["kind"]):
        return False
    if "name" in target and not re.fullmatch(target["name"], obj["metadata"]["name"]):
        return False
    if "labelSelector" in target:
        labels = obj["metadata"].get("labels", {})
        for term in target["labelSelector"].split(","):
            key, _, value = term.partition("=")
            if labels.get(key.strip()) != value.strip():
                return False
    return True


def _apply_patch(directory: Path, spec: dict[str, Any], objects: list[dict[str, Any]]) -> None:
    unknown = set(spec) - {"path", "patch", "target"}
    if unknown:
        raise KustomizeError(f"patches: unsupported fields {sorted(unknown)}")
    text = (directory / spec["path"]).read_text() if "path" in spec else spec["patch"]
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    target = spec.get("target")
    if len(docs) == 1 and isinstance(docs[0], list):
        if target is None:
            raise KustomizeError("a JSON 6902 patch needs a target")
        hits = [o for o in objects if _selected(o, target)]
        if not hits:
            raise KustomizeError(f"patch target {target} matches nothing")
        for obj in hits:
            for op in docs[0]:
                _json6902(obj, op)
        return
    for patch in docs:
        if target is not None:
            hits = [o for o in objects if _selected(o, target)]
        else:
            hits = [
                o for o in objects if o["kind"] == patch["kind"] and o["metadata"]["name"] == patch["metadata"]["name"]
            ]
        if not hits:
            raise KustomizeError(f"patch {patch.get('kind')}/{patch.get('metadata', {}).get('name')} matches nothing")
        for obj in hits:
            body = {k: v for k, v in patch.items() if k not in ("apiVersion", "kind", "metadata")}
            native = obj.get("apiVersion") in NATIVE_GROUPS
            merged = _strategic_merge(obj, body) if native else _merge_patch(obj, body)
            obj.clear()
            obj.update(merged)


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what kustomize applies to custom resources)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _strategic_merge(target: Any, patch: Any, field: str = "") -> Any:
    if isinstance(patch, dict) and isinstance(target, dict):
        out = dict(target)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = _strategic_merge(out.get(key), value, key)
        return out
    if isinstance(patch, list) and isinstance(target, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        out = [copy.deepcopy(item) for item in target]
        new = []
        for item in patch:
            match = next((i for i, t in enumerate(out) if t.get(key) == item.get(key)), None)
            if match is None:
                new.append(copy.deepcopy(item))  # kustomize puts items the target lacks first
            else:
                out[match] = _strategic_merge(out[match], item, "")
        return new + out
    return copy.deepcopy(patch)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"bad JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _json6902(obj: dict[str, Any], op: dict[str, Any]) -> None:
    parts = _pointer(op["path"])
    parent: Any = obj
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    kind = op["op"]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if kind == "add":
            parent.insert(index, copy.deepcopy(op["value"]))
        elif kind == "replace":
            parent[index] = copy.deepcopy(op["value"])
        elif kind == "remove":
            del parent[index]
        else:
            raise KustomizeError(f"unsupported JSON 6902 op {kind!r}")
        return
    if kind in ("replace", "remove") and last not in parent:
        raise KustomizeError(f"{kind} {op['path']}: no such field")
    if kind in ("add", "replace"):
        parent[last] = copy.deepcopy(op["value"])
    elif kind == "remove":
        del parent[last]
    else:
        raise KustomizeError(f"unsupported JSON 6902 op {kind!r}")


# -- images -----------------------------------------------------------------------------------------------
def _set_images(node: Any, image: dict[str, str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for container in value:
                    ref = container.get("image", "")
                    name = re.split(r"[@:](?=[^/]*$)", ref, maxsplit=1)[0]
                    if name == image["name"]:
                        new = image.get("newName", name)
                        if "digest" in image:
                            container["image"] = f"{new}@{image['digest']}"
                        else:
                            tag = image.get("newTag") or (ref[len(name) + 1 :] if len(ref) > len(name) else "")
                            container["image"] = f"{new}:{tag}" if tag else new
            else:
                _set_images(value, image)
    elif isinstance(node, list):
        for item in node:
            _set_images(item, image)
