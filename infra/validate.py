#!/usr/bin/env python3
"""Checks behind infra/validate.sh (run it instead; it installs what this needs).

    validate.py same RENDERED_A RENDERED_B       two renderings hold the same resources
    validate.py crds RENDERED                    custom resources against small schemas
    validate.py dashboard DASHBOARD.json METRICS.md
    validate.py flags TRIBUTARY_BIN RENDERED...  every flag the manifests pass exists
"""

import json
import re
import shlex
import subprocess
import sys

import jsonschema
import yaml


def docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def key(r):
    m = r.get("metadata", {})
    return (r.get("apiVersion"), r.get("kind"), m.get("namespace", ""), m.get("name"))


def same(a, b):
    """The two renderings (render.py and a real kustomize) hold equal resources."""
    ra = {key(r): r for r in docs(a)}
    rb = {key(r): r for r in docs(b)}
    problems = [f"only in {a}: {k}" for k in ra.keys() - rb.keys()]
    problems += [f"only in {b}: {k}" for k in rb.keys() - ra.keys()]
    problems += [f"differs: {k}" for k in ra.keys() & rb.keys() if ra[k] != rb[k]]
    for p in problems:
        print(f"  {p}")
    return not problems


# The fields of the Prometheus Operator's ServiceMonitor (monitoring.coreos.com/v1) that the
# manifests use, with the types the CRD gives them; unknown fields are refused so a typo
# does not pass.
SERVICE_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "jobLabel": {"type": "string"},
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                        "matchExpressions": {"type": "array"},
                    },
                },
                "namespaceSelector": {"type": "object"},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "targetPort": {"type": ["string", "integer"]},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"},
                            "honorLabels": {"type": "boolean"},
                            "relabelings": {"type": "array"},
                            "metricRelabelings": {"type": "array"},
                        },
                    },
                },
            },
        },
    },
}
CRD_SCHEMAS = {("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR}


def is_custom(r):
    group = r.get("apiVersion", "").rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


def crds(path):
    ok = True
    for r in docs(path):
        if not is_custom(r):
            continue
        schema = CRD_SCHEMAS.get((r.get("apiVersion"), r.get("kind")))
        name = f"{r.get('kind')}/{r.get('metadata', {}).get('name')}"
        if schema is None:
            print(f"  {name}: no schema for {r.get('apiVersion')} (add one to infra/validate.py)")
            ok = False
            continue
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(r))
        for e in errors:
            print(f"  {name}: {'/'.join(map(str, e.path))}: {e.message}")
        ok &= not errors
        if not errors:
            print(f"  {name}: valid (against the fields infra/validate.py knows)")
    return ok


METRIC = re.compile(r"\b((?:tributary|process)_[a-z0-9_]+)")
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def dashboard(dashboard_path, metrics_md):
    with open(dashboard_path, encoding="utf-8") as f:
        dash = json.load(f)
    with open(metrics_md, encoding="utf-8") as f:
        documented = set(re.findall(r"`((?:tributary|process)_[a-z0-9_]+)`", f.read()))
    ok = True
    used = set()

    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(dash.get("panels", [])):
        if p.get("type") == "row":
            continue
        targets = p.get("targets") or []
        if not targets:
            print(f"  panel {p.get('title')!r} has no query")
            ok = False
        for t in targets:
            for name in METRIC.findall(t.get("expr", "")):
                base = name
                for suffix in HISTOGRAM_SERIES:
                    if name.endswith(suffix) and name[: -len(suffix)] in documented:
                        base = name[: -len(suffix)]
                used.add(base)
                if base not in documented:
                    print(f"  panel {p.get('title')!r}: {name} is not in {metrics_md}")
                    ok = False
    if ok:
        print(f"  {len(used)} metrics used by {dashboard_path}, all documented")
    return ok


FLAG = re.compile(r"^--[a-z][a-z0-9-]*")


def command_words(container):
    words = list(container.get("command") or []) + list(container.get("args") or [])
    if words[:2] == ["/bin/sh", "-c"]:
        # `sh -c SCRIPT`: the script's words (the manifests keep it to one exec line).
        words = shlex.split(" ".join(words[2:]).replace("$$", "$"))
    return words


def flags(binary, paths):
    helps = {}
    ok = True
    checked = 0
    for path in paths:
        for r in docs(path):
            spec = r.get("spec", {}).get("template", {}).get("spec", {})
            for c in spec.get("containers", []):
                words = command_words(c)
                if words and words[0] == "exec":
                    words = words[1:]
                if words and words[0].endswith("/tributary"):
                    words = words[1:]
                if not words:
                    continue
                sub = words[0]
                if sub not in helps:
                    out = subprocess.run(
                        [binary, sub, "--help"], capture_output=True, text=True, check=False
                    )
                    if out.returncode != 0:
                        print(f"  {r['kind']}/{r['metadata']['name']}: `tributary {sub}` is no subcommand")
                        ok = False
                        helps[sub] = set()
                        continue
                    helps[sub] = set(re.findall(r"(--[a-z][a-z0-9-]*)", out.stdout))
                for w in words[1:]:
                    m = FLAG.match(w)
                    if not m:
                        continue
                    checked += 1
                    if m.group(0) not in helps[sub]:
                        print(f"  {r['kind']}/{r['metadata']['name']}: tributary {sub} has no {m.group(0)}")
                        ok = False
    print(f"  {checked} flags checked against `{binary} SUBCOMMAND --help`")
    return ok and checked > 0


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "same" and len(args) == 2:
        return 0 if same(*args) else 1
    if cmd == "crds" and len(args) == 1:
        return 0 if crds(args[0]) else 1
    if cmd == "dashboard" and len(args) == 2:
        return 0 if dashboard(*args) else 1
    if cmd == "flags" and len(args) >= 2:
        return 0 if flags(args[0], args[1:]) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
