"""A small, pure-Python renderer for the Kustomize features deploy/k8s uses.

    python -m yijian.deploy.kustomize deploy/k8s/overlays/province      # print the rendered YAML

Use the real tool to deploy (`kubectl apply -k deploy/k8s/overlays/province`, or `kustomize build`).
This renderer exists so that the tests can render and validate the manifests where no kustomize
binary is installed; its output was compared with `kubectl kustomize` (kustomize v5.5) on the
manifests in this repository (same resources, same fields).

Supported kustomization.yaml fields (anything else is an error, so nothing is silently ignored):
resources (files and directories), configMapGenerator (files and literals, with
options.disableNameSuffixHash: true), namespace, labels (pairs; includeSelectors/includeTemplates false
only), commonAnnotations, images (name/newName/newTag/digest), patches (JSON 6902 operation lists
inline or from a file, with a target of group/version/kind/name), and the informational
apiVersion/kind.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "commonAnnotations", "images", "patches", "configMapGenerator"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "StorageClass", "PriorityClass"}


class KustomizeError(ValueError):
    pass


def load_yaml_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _kustomization_file(folder: Path) -> Path:
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        if (folder / name).is_file():
            return folder / name
    raise KustomizeError(f"no kustomization.yaml in {folder}")


def build(folder: str | Path) -> list[dict]:
    """Render a kustomization folder to a list of resources (dicts)."""
    folder = Path(folder).resolve()
    kfile = _kustomization_file(folder)
    k = yaml.safe_load(kfile.read_text(encoding="utf-8")) or {}
    unknown = set(k) - SUPPORTED
    if unknown:
        raise KustomizeError(f"{kfile}: fields not supported by this renderer: {sorted(unknown)}")

    resources: list[dict] = []
    for entry in k.get("resources", []):
        path = (folder / entry).resolve()
        if path.is_dir():
            resources.extend(build(path))
        elif path.is_file():
            resources.extend(load_yaml_docs(path))
        else:
            raise KustomizeError(f"{kfile}: resource {entry} not found")
    for gen in k.get("configMapGenerator", []):
        resources.append(_config_map(gen, folder, kfile))
    _check_unique(resources, kfile)

    for patch in k.get("patches", []):
        _apply_patch(resources, patch, folder, kfile)
    if "namespace" in k:
        for r in resources:
            if r.get("kind") not in CLUSTER_SCOPED:
                r.setdefault("metadata", {})["namespace"] = k["namespace"]
    for label in k.get("labels", []):
        if label.get("includeSelectors") or label.get("includeTemplates"):
            raise KustomizeError(f"{kfile}: labels with includeSelectors/includeTemplates are not supported")
        for r in resources:
            r.setdefault("metadata", {}).setdefault("labels", {}).update({str(a): str(b) for a, b in label["pairs"].items()})
    if "commonAnnotations" in k:
        for r in resources:
            r.setdefault("metadata", {}).setdefault("annotations", {}).update(k["commonAnnotations"])
    for image in k.get("images", []):
        for r in resources:
            _set_images(r, image)
    return resources


def _config_map(gen: dict, folder: Path, kfile: Path) -> dict:
    if not gen.get("options", {}).get("disableNameSuffixHash"):
        raise KustomizeError(f"{kfile}: configMapGenerator {gen.get('name')}: only options.disableNameSuffixHash: true is supported")
    if set(gen) - {"name", "files", "literals", "options"}:
        raise KustomizeError(f"{kfile}: configMapGenerator fields not supported: {sorted(set(gen) - {'name', 'files', 'literals', 'options'})}")
    data: dict[str, str] = {}
    for entry in gen.get("files", []):
        key, _, rel = entry.rpartition("=")
        path = (folder / rel).resolve()
        if folder not in path.parents:
            raise KustomizeError(f"{kfile}: {rel} is outside the kustomization folder (kustomize refuses it)")
        data[key or path.name] = path.read_text(encoding="utf-8")
    for entry in gen.get("literals", []):
        key, _, value = entry.partition("=")
        data[key] = value
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}, "data": data}


def _check_unique(resources: list[dict], where: Path) -> None:
    seen = set()
    for r in resources:
        key = resource_id(r)
        if key in seen:
            raise KustomizeError(f"{where}: duplicate resource {key}")
        seen.add(key)


def resource_id(r: dict) -> tuple[str, str, str, str]:
    md = r.get("metadata", {})
    return (r.get("apiVersion", ""), r.get("kind", ""), md.get("namespace", ""), md.get("name", ""))


# --- images ------------------------------------------------------------------------------------------
def _split_image(ref: str) -> tuple[str, str]:
    """('repo/name', ':tag' or '@sha256:...' or '')."""
    if "@" in ref:
        name, digest = ref.split("@", 1)
        return name, "@" + digest
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon:]
    return ref, ""


def _set_images(node: Any, image: dict) -> None:
    if isinstance(node, list):
        for n in node:
            _set_images(n, image)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key in ("containers", "initContainers") and isinstance(value, list):
            for c in value:
                if isinstance(c, dict) and isinstance(c.get("image"), str):
                    name, tag = _split_image(c["image"])
                    if name == image["name"]:
                        new_name = image.get("newName", name)
                        if "digest" in image:
                            tag = "@" + image["digest"]
                        elif "newTag" in image:
                            tag = ":" + str(image["newTag"])
                        c["image"] = new_name + tag
        _set_images(value, image)


# --- JSON 6902 patches ---------------------------------------------------------------------------------
def _matches(r: dict, target: dict) -> bool:
    group, _, version = r.get("apiVersion", "").rpartition("/")
    checks = {
        "kind": r.get("kind"),
        "name": r.get("metadata", {}).get("name"),
        "group": group,
        "version": version,
        "namespace": r.get("metadata", {}).get("namespace"),
    }
    for key, want in target.items():
        if key not in checks:
            raise KustomizeError(f"patch target field {key!r} is not supported")
        if checks[key] != want:
            return False
    return True


def _apply_patch(resources: list[dict], patch: dict, folder: Path, kfile: Path) -> None:
    if "path" in patch:
        ops = yaml.safe_load((folder / patch["path"]).read_text(encoding="utf-8"))
    else:
        ops = yaml.safe_load(patch["patch"])
    if not isinstance(ops, list):
        raise KustomizeError(f"{kfile}: only JSON 6902 patches (a list of operations) are supported")
    if "target" not in patch:
        raise KustomizeError(f"{kfile}: a JSON 6902 patch needs a target")
    hits = [r for r in resources if _matches(r, patch["target"])]
    if not hits:
        raise KustomizeError(f"{kfile}: patch target {patch['target']} matches no resource")
    for r in hits:
        for op in ops:
            json6902(r, op)


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise KustomizeError(f"bad JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for p in parts:
        if isinstance(doc, list):
            doc = doc[int(p)]
        elif isinstance(doc, dict):
            if p not in doc:
                raise KustomizeError(f"path element {p!r} not found")
            doc = doc[p]
        else:
            raise KustomizeError(f"cannot descend into {type(doc).__name__} at {p!r}")
    return doc


def json6902(doc: dict, op: dict) -> None:
    """Apply one RFC 6902 operation in place."""
    kind = op["op"]
    parts = _pointer(op["path"])
    if kind in ("copy", "move"):
        src = _pointer(op["from"])
        value = copy.deepcopy(_walk(doc, src))
        if kind == "move":
            json6902(doc, {"op": "remove", "path": op["from"]})
        json6902(doc, {"op": "add", "path": op["path"], "value": value})
        return
    if kind == "test":
        if _walk(doc, parts) != op["value"]:
            raise KustomizeError(f"test failed at {op['path']}")
        return
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if kind == "add":
        if isinstance(parent, list):
            parent.insert(len(parent) if last == "-" else int(last), copy.deepcopy(op["value"]))
        else:
            parent[last] = copy.deepcopy(op["value"])
    elif kind == "replace":
        if isinstance(parent, list):
            parent[int(last)] = copy.deepcopy(op["value"])
        else:
            if last not in parent:
                raise KustomizeError(f"replace: {op['path']} does not exist")
            parent[last] = copy.deepcopy(op["value"])
    elif kind == "remove":
        if isinstance(parent, list):
            del parent[int(last)]
        else:
            del parent[last]
    else:
        raise KustomizeError(f"unknown patch op {kind!r}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m yijian.deploy.kustomize FOLDER", file=sys.stderr)
        return 2
    print(yaml.safe_dump_all(build(argv[0]), sort_keys=False, allow_unicode=True), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
