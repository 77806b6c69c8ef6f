#!/usr/bin/env bash
# Create the local kind cluster of Trending Now and deploy the platform on it.
#   hack/cluster-up.sh                    # KServe Standard mode, Helm chart through skaffold
#   KSERVE_MODE=Knative hack/cluster-up.sh   # also installs Knative Serving (Serverless mode)
#   DEPLOY=kustomize hack/cluster-up.sh   # manifests/overlays/kind instead of the chart
#   DEPLOY=none hack/cluster-up.sh        # only the cluster and its prerequisites
#   hack/cluster-up.sh --print-secrets    # the dev Secrets it creates: namespace name key...
# Needs: docker (an engine), kind, kubectl, helm, skaffold. Versions: hack/versions.env.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=hack/versions.env
source "$ROOT/hack/versions.env"
KSERVE_MODE="${KSERVE_MODE:-Standard}"
DEPLOY="${DEPLOY:-helm}"
NAMESPACE="${NAMESPACE:-trending}"
# KFP (standalone) runs every pipeline pod in its own namespace, not in the release's.
KFP_NAMESPACE="${KFP_NAMESPACE:-kubeflow}"
CONTEXT="kind-${KIND_CLUSTER_NAME}"

# The Secret contract (pipelines/cluster.py, the chart's existingSecret names with release
# "trending", docs/kubernetes.md "Secrets"): name, then keys. Random values, created once, before
# the chart or the overlay is applied; the chart renders no Secret.
DEV_SECRETS=(
  "trending-s3 AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY"
  "trending-redis REDIS_PASSWORD"
  "trending-retrain-trigger TRENDING_TRIGGER_TOKEN"
  "trending-drift-feedback TRENDING_FEEDBACK_TOKEN"
  "trending-drift-token TRENDING_DRIFT_TOKEN"
)
# The Secrets the compiled pipelines mount: copied, same values, into the KFP namespace.
PIPELINE_SECRETS=(trending-s3 trending-redis)
# The bundle-signing key pair (docs/adr/0011-safe-signed-bundles.md): the private half only where
# the pipeline pods run (the register step mounts it), the public half for the release's loaders.
SIGNING_SECRET="trending-bundle-signing TRENDING_BUNDLE_SIGNING_KEY"
PUBLIC_KEY_SECRET="trending-bundle-public-key TRENDING_BUNDLE_PUBLIC_KEY"

if [[ "${1:-}" == --print-secrets ]]; then
  for entry in "${DEV_SECRETS[@]}"; do
    read -r name keys <<<"$entry"
    echo "$NAMESPACE $name $keys"
    for shared in "${PIPELINE_SECRETS[@]}"; do
      [[ "$shared" != "$name" ]] || echo "$KFP_NAMESPACE $name $keys"
    done
  done
  echo "$KFP_NAMESPACE $SIGNING_SECRET"
  echo "$NAMESPACE $PUBLIC_KEY_SECRET"
  exit 0
fi

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'cluster-up: %s\n' "$*" >&2; exit 1; }
kc() { kubectl --context "$CONTEXT" "$@"; }

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || die "$tool is not installed (see docs/kubernetes.md, 'Local cluster')"
done
[[ "$DEPLOY" != helm ]] || command -v skaffold >/dev/null || die "skaffold is not installed (or use DEPLOY=kustomize)"
docker info >/dev/null 2>&1 || die "no Docker engine answers: start Docker first"
[[ "$KSERVE_MODE" == Standard || "$KSERVE_MODE" == Knative ]] || die "KSERVE_MODE must be Standard or Knative"
grep -q "$KIND_NODE_IMAGE" "$ROOT/kind-config.yaml" \
  || die "kind-config.yaml does not use KIND_NODE_IMAGE from hack/versions.env: keep them equal"

log "kind cluster ${KIND_CLUSTER_NAME} (${KIND_NODE_IMAGE%@*})"
if kind get clusters | grep -qx "$KIND_CLUSTER_NAME"; then
  echo "already exists: reusing it"
else
  kind create cluster --config "$ROOT/kind-config.yaml" --name "$KIND_CLUSTER_NAME" --wait 180s
fi

log "cert-manager ${CERT_MANAGER_VERSION}"
kc apply -f "https://github.com/cert-manager/cert-manager/releases/download/${CERT_MANAGER_VERSION}/cert-manager.yaml"
kc -n cert-manager wait deployment --all --for=condition=Available --timeout=300s

log "kube-prometheus-stack ${KUBE_PROMETHEUS_STACK_VERSION} (Prometheus Operator, Alertmanager, Grafana)"
helm --kube-context "$CONTEXT" upgrade --install kube-prometheus-stack \
  oci://ghcr.io/prometheus-community/charts/kube-prometheus-stack \
  --version "$KUBE_PROMETHEUS_STACK_VERSION" --namespace monitoring --create-namespace \
  --set grafana.sidecar.dashboards.enabled=true \
  --set grafana.sidecar.dashboards.searchNamespace=ALL \
  --set prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues=false \
  --set prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues=false \
  --set prometheus.prometheusSpec.ruleSelectorNilUsesHelmValues=false \
  --set alertmanager.alertmanagerSpec.alertmanagerConfigSelector.matchLabels.release=kube-prometheus-stack \
  --set alertmanager.alertmanagerSpec.alertmanagerConfigNamespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name="$NAMESPACE" \
  --wait --timeout 10m

if [[ "$KSERVE_MODE" == Knative ]]; then
  log "Knative Serving ${KNATIVE_SERVING_VERSION} + Kourier ${KNATIVE_NET_KOURIER_VERSION}"
  kc apply -f "https://github.com/knative/serving/releases/download/${KNATIVE_SERVING_VERSION}/serving-crds.yaml"
  kc apply -f "https://github.com/knative/serving/releases/download/${KNATIVE_SERVING_VERSION}/serving-core.yaml"
  kc apply -f "https://github.com/knative-extensions/net-kourier/releases/download/${KNATIVE_NET_KOURIER_VERSION}/kourier.yaml"
  kc patch configmap/config-network -n knative-serving --type merge \
    -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
  kc -n knative-serving wait deployment --all --for=condition=Available --timeout=300s
fi

log "KServe ${KSERVE_VERSION} (default mode ${KSERVE_MODE})"
kc apply --server-side --force-conflicts -f "https://github.com/kserve/kserve/releases/download/${KSERVE_VERSION}/kserve.yaml"
kc -n kserve wait deployment/kserve-controller-manager --for=condition=Available --timeout=300s
kc apply --server-side --force-conflicts -f "https://github.com/kserve/kserve/releases/download/${KSERVE_VERSION}/kserve-cluster-resources.yaml"
# The default deployment mode (the chart also sets it per InferenceService with an annotation).
kc -n kserve patch configmap/inferenceservice-config --type merge \
  -p "{\"data\":{\"deploy\":\"{\\\"defaultDeploymentMode\\\":\\\"${KSERVE_MODE}\\\"}\"}}"
kc -n kserve rollout restart deployment/kserve-controller-manager
kc -n kserve rollout status deployment/kserve-controller-manager --timeout=300s

log "Kubeflow Pipelines ${KFP_VERSION} (standalone)"
kc apply -k "github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=${KFP_VERSION}"
kc wait crd/applications.app.k8s.io --for=condition=established --timeout=120s
kc apply -k "github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=${KFP_VERSION}"
kc -n kubeflow wait deployment --all --for=condition=Available --timeout=900s

create_dev_secret() {  # name key... : a Secret with a fresh random value per key, unless it exists
  local name="$1"; shift
  kc -n "$NAMESPACE" get secret "$name" >/dev/null 2>&1 && return 0
  local args=()
  for key in "$@"; do args+=("--from-literal=${key}=$(openssl rand -hex 24)"); done
  kc -n "$NAMESPACE" create secret generic "$name" "${args[@]}"
}

copy_secret_to_kfp() {  # name : the same Secret (same values) where KFP runs the pipeline pods
  local name="$1"
  kc -n "$KFP_NAMESPACE" get secret "$name" >/dev/null 2>&1 && return 0
  kc -n "$NAMESPACE" get secret "$name" -o json \
    | python3 -c 'import json, sys; s = json.load(sys.stdin); print(json.dumps({"apiVersion": "v1", "kind": "Secret", "type": s.get("type", "Opaque"), "metadata": {"name": s["metadata"]["name"]}, "data": s["data"]}))' \
    | kc -n "$KFP_NAMESPACE" apply -f -
}

create_signing_key_pair() {  # ed25519 (openssl), as docs/kubernetes.md "Secrets" does by hand
  local signing public dir
  read -r signing _ <<<"$SIGNING_SECRET"
  read -r public _ <<<"$PUBLIC_KEY_SECRET"
  dir="$(mktemp -d)"
  if kc -n "$KFP_NAMESPACE" get secret "$signing" >/dev/null 2>&1; then
    kc -n "$NAMESPACE" get secret "$public" >/dev/null 2>&1 && { rm -rf "$dir"; return 0; }
    # The private half exists: derive its public half rather than making a pair that does not match.
    kc -n "$KFP_NAMESPACE" get secret "$signing" -o jsonpath='{.data.TRENDING_BUNDLE_SIGNING_KEY}' \
      | base64 -d >"$dir/bundle-signing.pem"
  else
    kc -n "$NAMESPACE" delete secret "$public" --ignore-not-found
    openssl genpkey -algorithm ed25519 -out "$dir/bundle-signing.pem"
    kc -n "$KFP_NAMESPACE" create secret generic "$signing" \
      --from-file=TRENDING_BUNDLE_SIGNING_KEY="$dir/bundle-signing.pem"
  fi
  openssl pkey -in "$dir/bundle-signing.pem" -pubout -out "$dir/bundle-signing.pub"
  kc -n "$NAMESPACE" create secret generic "$public" \
    --from-file=TRENDING_BUNDLE_PUBLIC_KEY="$dir/bundle-signing.pub"
  rm -rf "$dir"
}

create_dev_secrets() {
  log "dev Secrets in ${NAMESPACE} (random values) and ${KFP_NAMESPACE} (the pipeline pods)"
  kc get namespace "$NAMESPACE" >/dev/null 2>&1 || kc create namespace "$NAMESPACE"
  local entry name keys
  for entry in "${DEV_SECRETS[@]}"; do
    read -r name keys <<<"$entry"
    # shellcheck disable=SC2086 # keys is a space-separated list
    create_dev_secret "$name" $keys
  done
  for name in "${PIPELINE_SECRETS[@]}"; do copy_secret_to_kfp "$name"; done
  create_signing_key_pair
}

case "$DEPLOY" in
  helm)
    create_dev_secrets
    log "Trending Now: skaffold run -p kind (chart charts/trending, ci/kind-values.yaml)"
    (cd "$ROOT" && skaffold run --kube-context "$CONTEXT" --profile kind)
    ;;
  kustomize)
    log "Trending Now: images, dev Secrets, manifests/overlays/kind"
    docker build -f "$ROOT/docker/serving.Dockerfile" -t trending-serving:dev "$ROOT"
    docker build -f "$ROOT/docker/component.Dockerfile" -t trending-components:dev "$ROOT"
    kind load docker-image --name "$KIND_CLUSTER_NAME" trending-serving:dev trending-components:dev
    kc apply -f "$ROOT/manifests/overlays/kind/namespace.trending.yaml"
    create_dev_secrets
    kc apply -k "$ROOT/manifests/overlays/kind"
    ;;
  none) ;;
  *) die "DEPLOY must be helm, kustomize or none" ;;
esac

log "ready: kubectl config use-context ${CONTEXT}; then make e2e"
