#!/usr/bin/env bash
# Delete the local kind cluster created by hack/cluster-up.sh (everything in it goes with it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=hack/versions.env
source "$ROOT/hack/versions.env"

command -v kind >/dev/null || { echo "cluster-down: kind is not installed" >&2; exit 1; }
if kind get clusters | grep -qx "$KIND_CLUSTER_NAME"; then
  kind delete cluster --name "$KIND_CLUSTER_NAME"
else
  echo "cluster-down: no kind cluster named ${KIND_CLUSTER_NAME}; nothing to do"
fi
