#!/usr/bin/env python3
"""Render a kustomization directory to multi-document YAML on stdout, without kustomize.

    python3 infra/render.py infra/k8s/overlays/production | kubectl apply -f -

A fresh Debian machine has no kustomize (Debian bookworm's kubernetes-client is 1.20, whose
embedded kustomize predates this syntax, and PyPI has none), so infra/validate.sh renders
with this script, and compares it with a real `kustomize build` whenever one is on the PATH.
It implements exactly the subset the manifests in infra/k8s use, and refuses anything else
rather than render it wrongly:

- `resources`: YAML files (one or more documents) and directories holding a kustomization;
- `namespace`: set on every namespaced resource;
- `images`: `name` -> `newName` / `newTag` in containers and init containers;
- `patches`: `path` to a strategic-merge patch, matched by kind and name (maps merge, lists of
  containers, env, volumes, volume mounts, ports and spread constraints merge by their key,
  other lists are replaced, `null` deletes a field);
- `configMapGenerator`: `name` with `files` and `literals`, and `generatorOptions` with
  `disableNameSuffixHash: true` and `labels`.

Needs PyYAML (installed with yamllint by infra/validate.sh).
"""

import copy
import sys
from pathlib import Path

import yaml

SUPPORTED = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "images",
    "patches",
    "configMapGenerator",
    "generatorOptions",
}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
}
# Strategic-merge keys of the lists the manifests patch (from the Kubernetes API types).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "topologySpreadConstraints": "topologyKey",
}


class RenderError(Exception):
    pass


def load_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def kustomization_file(directory):
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        p = directory / name
        if p.is_file():
            return p
    raise RenderError(f"{directory}: no kustomization.yaml")


def render(directory):
    directory = Path(directory)
    kfile = kustomization_file(directory)
    k = load_docs(kfile)[0]
    unknown = set(k) - SUPPORTED
    if unknown:
        raise RenderError(
            f"{kfile}: {', '.join(sorted(unknown))} not implemented by infra/render.py; "
            "keep the kustomization to its subset or extend it"
        )
    resources = []
    for entry in k.get("resources", []):
        p = directory / entry
        if p.is_dir():
            resources.extend(render(p))
        elif p.is_file():
            resources.extend(load_docs(p))
        else:
            raise RenderError(f"{kfile}: resource {entry} does not exist")
    resources.extend(generate_config_maps(directory, k, kfile))
    for patch in k.get("patches", []):
        apply_patch(directory, patch, resources, kfile)
    for image in k.get("images", []):
        set_image(resources, image)
    if "namespace" in k:
        for r in resources:
            if r.get("kind") not in CLUSTER_SCOPED:
                r.setdefault("metadata", {})["namespace"] = k["namespace"]
    return resources


def generate_config_maps(directory, k, kfile):
    options = k.get("generatorOptions", {})
    extra = set(options) - {"disableNameSuffixHash", "labels"}
    if extra:
        raise RenderError(f"{kfile}: generatorOptions {sorted(extra)} not implemented")
    out = []
    for gen in k.get("configMapGenerator", []):
        if set(gen) - {"name", "files", "literals"}:
            raise RenderError(f"{kfile}: configMapGenerator {gen.get('name')}: only name, files, literals")
        if not options.get("disableNameSuffixHash"):
            raise RenderError(
                f"{kfile}: generated names need generatorOptions.disableNameSuffixHash: true "
                "(render.py does not compute kustomize's hash suffix)"
            )
        data = {}
        for item in gen.get("files", []):
            key, _, path = item.rpartition("=") if "=" in item else ("", "", item)
            key = key or Path(path).name
            data[key] = (directory / path).read_text(encoding="utf-8")
        for item in gen.get("literals", []):
            key, _, value = item.partition("=")
            data[key] = value
        meta = {"name": gen["name"]}
        if options.get("labels"):
            meta["labels"] = dict(options["labels"])
        out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data})
    return out


def apply_patch(directory, patch, resources, kfile):
    if set(patch) != {"path"}:
        raise RenderError(f"{kfile}: only `patches: - path: FILE` (strategic merge) is implemented")
    for doc in load_docs(directory / patch["path"]):
        kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
        targets = [
            r
            for r in resources
            if r.get("kind") == kind and r.get("metadata", {}).get("name") == name
        ]
        if len(targets) != 1:
            raise RenderError(f"{patch['path']}: {kind}/{name} matches {len(targets)} resources, not 1")
        merged = merge(targets[0], doc, None)
        targets[0].clear()
        targets[0].update(merged)


def merge(base, patch, field):
    if isinstance(patch, dict):
        for k in patch:
            if str(k).startswith("$"):
                raise RenderError(f"patch directive {k} not implemented")
        if not isinstance(base, dict):
            return copy.deepcopy(patch)
        out = dict(base)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = merge(out[k], v, k)
            else:
                out[k] = copy.deepcopy(v)
        return out
    if isinstance(patch, list) and isinstance(base, list):
        key = MERGE_KEYS.get(field)
        if field == "ports" and all(isinstance(p, dict) for p in base + patch):
            key = "containerPort" if any("containerPort" in p for p in base + patch) else "port"
        if key is None:
            return copy.deepcopy(patch)
        out = [copy.deepcopy(b) for b in base]
        for item in patch:
            at = next((i for i, b in enumerate(out) if b.get(key) == item.get(key)), None)
            if at is None:
                out.append(copy.deepcopy(item))
            else:
                out[at] = merge(out[at], item, None)
        return out
    return copy.deepcopy(patch)


def pod_specs(resource):
    spec = resource.get("spec", {})
    for holder in (spec.get("template"), spec.get("jobTemplate", {}).get("spec", {}).get("template")):
        if isinstance(holder, dict) and isinstance(holder.get("spec"), dict):
            yield holder["spec"]


def set_image(resources, image):
    if set(image) - {"name", "newName", "newTag"}:
        raise RenderError(f"images: {image}: only name, newName, newTag are implemented")
    for r in resources:
        for spec in pod_specs(r):
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                ref = c.get("image", "")
                name, tag = ref, None
                if ":" in ref.rsplit("/", 1)[-1]:
                    name, tag = ref.rsplit(":", 1)
                if name != image["name"]:
                    continue
                name = image.get("newName", name)
                tag = image.get("newTag", tag)
                c["image"] = f"{name}:{tag}" if tag else name


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print(f"usage: {argv[0]} KUSTOMIZATION_DIR", file=sys.stderr)
        return 2
    try:
        resources = render(argv[1])
    except (RenderError, OSError, yaml.YAMLError) as e:
        print(f"render.py: {e}", file=sys.stderr)
        return 1
    # Namespaces first, as kustomize does; otherwise in kustomization order.
    resources.sort(key=lambda r: r.get("kind") != "Namespace")
    yaml.safe_dump_all(resources, sys.stdout, sort_keys=False, default_flow_style=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
