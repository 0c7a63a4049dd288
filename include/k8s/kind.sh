#!/usr/bin/env bash
# The demo fleet on a Kubernetes cluster (kind), for `make e2e-k8s`. See include/k8s/README.md.
#
#   kind.sh check   kubectl and docker are installed and a cluster answers; otherwise say what to do
#   kind.sh up      check, then the local registry localhost:5002 wired into the kind nodes, then reset
#   kind.sh reset   the lab's original images copied into localhost:5002 (tags 1.0, 2.4, bookworm and
#                   their -lab-original twins) and the manifests applied with each image pinned to its
#                   digest; waits for every rollout. Run before each e2e run: it undoes a previous one.
#
# Environment: PATCHPIPE_KIND_CLUSTER (default patchpipe, the name in kind-cluster.yaml),
# PATCHPIPE_KIND_REGISTRY_IMAGE (default registry:2, the image kind's local-registry recipe uses).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLUSTER=${PATCHPIPE_KIND_CLUSTER:-patchpipe}
REGISTRY=localhost:5002            # what images are called, on the host and in the cluster
REGISTRY_URL=http://127.0.0.1:5002 # the same registry, for curl
REGISTRY_NAME=kind-registry        # its container, on the `kind` network
REGISTRY_IMAGE=${PATCHPIPE_KIND_REGISTRY_IMAGE:-registry:2}
LAB_REGISTRY=127.0.0.1:5000
ORIGINAL=-lab-original
IMAGES=("base/debian bookworm" "demo/web 1.0" "vendor/app 2.4")   # repository and production tag
NAMESPACES=(patchpipe-staging patchpipe-production)
DEPLOYMENTS=(demo-web vendor-app)

log() { echo "k8s: $*"; }
die() { echo "k8s: error: $*" >&2; exit 1; }

check() {
  command -v kubectl >/dev/null || die "kubectl is not installed (https://kubernetes.io/docs/tasks/tools/)"
  command -v docker >/dev/null || die "docker is needed to fill the cluster's registry; run make lab-up first"
  kubectl cluster-info --request-timeout=5s >/dev/null 2>&1 || die "no reachable Kubernetes cluster \
(kubectl cluster-info failed for context '$(kubectl config current-context 2>/dev/null || echo none)'). \
Create one with: kind create cluster --config include/k8s/kind-cluster.yaml"
  log "cluster: $(kubectl config current-context) answers"
}

# The kind local-registry recipe (https://kind.sigs.k8s.io/docs/user/local-registry/): a registry
# container on the `kind` network, and on every node a containerd hosts.toml for localhost:5002.
ensure_registry() {
  if [[ $(docker inspect -f '{{.State.Running}}' "$REGISTRY_NAME" 2>/dev/null) != true ]]; then
    docker rm -f "$REGISTRY_NAME" >/dev/null 2>&1 || true
    docker run -d --restart=always -p "127.0.0.1:5002:5000" --network bridge --name "$REGISTRY_NAME" \
      "$REGISTRY_IMAGE" >/dev/null || die "could not start $REGISTRY_IMAGE as $REGISTRY_NAME"
    log "registry: started $REGISTRY_NAME ($REGISTRY_IMAGE) on $REGISTRY"
  fi
  if docker network inspect kind >/dev/null 2>&1; then
    docker network connect kind "$REGISTRY_NAME" 2>/dev/null || true
  fi
  if ! command -v kind >/dev/null || [[ -z $(kind get nodes --name "$CLUSTER" 2>/dev/null) ]]; then
    log "registry: no kind cluster named $CLUSTER; the current cluster's nodes must pull $REGISTRY themselves"
    return
  fi
  local node dir=/etc/containerd/certs.d/$REGISTRY
  for node in $(kind get nodes --name "$CLUSTER"); do
    docker exec "$node" mkdir -p "$dir"
    printf '[host."http://%s:5000"]\n' "$REGISTRY_NAME" | docker exec -i "$node" cp /dev/stdin "$dir/hosts.toml"
  done
  log "registry: kind nodes of $CLUSTER pull $REGISTRY from $REGISTRY_NAME"
}

digest() { # REPOSITORY TAG: the manifest digest of REPOSITORY:TAG in the cluster's registry
  local found
  found=$(curl -fsSI "$REGISTRY_URL/v2/$1/manifests/$2" \
    -H 'Accept: application/vnd.oci.image.index.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    | tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" {print $2}') || true
  [[ $found == sha256:* ]] || die "$REGISTRY/$1:$2 has no manifest in the registry ($REGISTRY_URL)"
  echo "$found"
}

copy_originals() {
  local line repo tag source
  for line in "${IMAGES[@]}"; do
    read -r repo tag <<<"$line"
    source=$LAB_REGISTRY/$repo:$tag$ORIGINAL
    docker pull -q "$source" >/dev/null || die "$source is not in the lab registry: run make lab-up"
    for target in "$REGISTRY/$repo:$tag" "$REGISTRY/$repo:$tag$ORIGINAL"; do
      docker tag "$source" "$target"
      docker push "$target" >/dev/null || die "docker push $target failed (is $REGISTRY_NAME running?)"
    done
    log "image $REGISTRY/$repo:$tag: the lab original, $(digest "$repo" "$tag")"
  done
}

apply() {
  local web app file ns name
  web=$REGISTRY/demo/web@$(digest demo/web 1.0)
  app=$REGISTRY/vendor/app@$(digest vendor/app 2.4)
  kubectl apply -f "$HERE/manifests/namespaces.yaml" >/dev/null
  for file in "$HERE/manifests/demo-web.yaml" "$HERE/manifests/vendor-app.yaml"; do
    sed -e "s#$REGISTRY/demo/web:1.0#$web#" -e "s#$REGISTRY/vendor/app:2.4#$app#" "$file" | kubectl apply -f - >/dev/null
  done
  for ns in "${NAMESPACES[@]}"; do
    # patchpipe's rollback record belongs to the images it deployed, which reset just replaced.
    kubectl -n "$ns" annotate deployment "${DEPLOYMENTS[@]}" patchpipe.io/previous-images- >/dev/null 2>&1 || true
    for name in "${DEPLOYMENTS[@]}"; do
      kubectl -n "$ns" rollout status "deployment/$name" --timeout=180s >/dev/null \
        || die "deployment $ns/$name did not roll out within 180 s; see: kubectl -n $ns describe deployment $name"
    done
  done
  log "deployments: demo-web ($web) and vendor-app ($app) ready in ${NAMESPACES[*]}"
}

case ${1:-} in
  check) check ;;
  up) check; ensure_registry; copy_originals; apply ;;
  reset) copy_originals; apply ;;
  *) echo "usage: $0 check|up|reset" >&2; exit 2 ;;
esac
