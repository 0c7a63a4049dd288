#!/usr/bin/env bash
# The patchpipe lab: Docker Engine, two OCI registries, a one-node Swarm, a debootstrapped Debian
# base image, the demo fleet of include/fleet.yaml deployed by digest, and a Prometheus scraping it
# (http://127.0.0.1:9090, patchpipe's default PATCHPIPE_PROMETHEUS_URL).
#
#   bash include/lab/lab.sh up|down|status|reset      (or: make lab-up | lab-down | lab-status | lab-reset)
#
# Every step of `up` is skipped when already done, so a second `up` takes seconds.
# Environment: PATCHPIPE_LAB_DIR (state: registry data, logs, pid files; default <repo>/.lab),
# PATCHPIPE_CACHE (default ~/.cache/patchpipe), DEBIAN_MIRROR, PATCHPIPE_BASE_IMAGE (pull this
# instead of running debootstrap), PATCHPIPE_LAB_AUTH_PASSWORD (auth registry; default patchpipe-lab).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB_DIR=${PATCHPIPE_LAB_DIR:-$REPO_ROOT/.lab}
CACHE=${PATCHPIPE_CACHE:-$HOME/.cache/patchpipe}
DEMO_DIR=$REPO_ROOT/include/demo
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_TARBALL=$CACHE/debian-bookworm-minbase.tar

REGISTRY=127.0.0.1:5000
AUTH_REGISTRY=127.0.0.1:5001
AUTH_USER=patchpipe
AUTH_PASSWORD=${PATCHPIPE_LAB_AUTH_PASSWORD:-patchpipe-lab}
ORIGINAL=-lab-original   # suffix of the immutable tags `reset` restores from
NETWORK=patchpipe-lab    # overlay network of the services and the proxy
PROXY=patchpipe-lab-proxy
PROMETHEUS_ADDR=127.0.0.1:9090                           # the metric analysis' default Prometheus
PROMETHEUS_CONFIG=$REPO_ROOT/include/lab/prometheus.yml   # one job per service below

# Names, tags and ports below must match include/fleet.yaml (tests/integration/test_lab.py checks).
BASE=base/debian:bookworm
IMAGES=(
  # repo:tag        build context under include/demo
  "demo/web:1.0     demo-web"
  "vendor/app:2.4   vendor-app"
)
SERVICES=(
  # swarm service         image           fleet name  env         published port
  "demo-web-staging       demo/web:1.0    demo-web    staging     18081"
  "demo-web-production    demo/web:1.0    demo-web    production  18080"
  "vendor-app-staging     vendor/app:2.4  vendor-app  staging     18091"
  "vendor-app-production  vendor/app:2.4  vendor-app  production  18090"
)
MANIFEST_TYPES="application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.list.v2+json,application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json"

# --- helpers -------------------------------------------------------------------------------------

log() { printf '%s\n' "$*"; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
can_apt() { [[ $EUID -eq 0 && -f /etc/debian_version ]] && have apt-get; }
docker_up() { docker info >/dev/null 2>&1; }
swarm_active() { [[ $(docker info -f '{{.Swarm.LocalNodeState}}' 2>/dev/null) == active ]]; }

# wait_until SECONDS COMMAND...: retry COMMAND until it succeeds; fail once the deadline passes.
wait_until() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

# http_code URL [CURL ARGS]: the HTTP status, or 000 when nothing answers.
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$@" || true; }
healthz_ok() { [[ $(http_code "http://127.0.0.1:$1/healthz") == 200 ]]; }
pid_alive() { [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; }
pid_gone() { ! pid_alive "$1"; }

# reg_digest REPO TAG: the manifest digest of REPO:TAG in the lab registry (fails if absent).
reg_digest() {
  local digest
  digest=$(curl -fsSI --max-time 10 -H "Accept: $MANIFEST_TYPES" "http://$REGISTRY/v2/$1/manifests/$2" 2>/dev/null \
    | tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" {print $2}') || return 1
  [[ -n $digest ]] && printf '%s\n' "$digest"
}

# reg_copy REPO FROM TO: point tag TO at the manifest of FROM, byte for byte (same digest).
reg_copy() {
  local body ctype
  body=$(mktemp)
  if ! ctype=$(curl -fsS -H "Accept: $MANIFEST_TYPES" -o "$body" -w '%{content_type}' "http://$REGISTRY/v2/$1/manifests/$2") \
    || ! curl -fsS -o /dev/null -X PUT -H "Content-Type: $ctype" --data-binary "@$body" "http://$REGISTRY/v2/$1/manifests/$3"; then
    rm -f "$body"
    die "could not copy $REGISTRY/$1:$2 to :$3 (is the registry up? run make lab-status)"
  fi
  rm -f "$body"
}

# json_strings KEY: the strings of the list KEY in a flat registry answer like {"tags":["a","b"]}.
json_strings() { sed -n "s/.*\"$1\":\[\([^]]*\)\].*/\1/p" | tr ',' '\n' | tr -d '" ' | sed '/^$/d'; }

# fleet_images: BASE and the repo:tag of every demo image.
fleet_images() {
  local line
  printf '%s\n' "$BASE"
  for line in "${IMAGES[@]}"; do printf '%s\n' "${line%% *}"; done
}

push() { docker push "$1" >>"$LAB_DIR/docker.log" 2>&1 || die "docker push $1 failed; see $LAB_DIR/docker.log"; }

# --- up: packages and Docker Engine --------------------------------------------------------------

ensure_packages() {
  local missing=()
  if ! have docker || { ! docker_up && ! have dockerd; }; then missing+=(docker.io); fi
  have docker-registry || missing+=(docker-registry)
  have htpasswd || missing+=(apache2-utils)
  have curl || missing+=(curl)
  have debootstrap || [[ -n ${PATCHPIPE_BASE_IMAGE:-} ]] || missing+=(debootstrap)
  have prometheus || missing+=(prometheus)
  if ((${#missing[@]} == 0)); then log "packages: already installed"; return; fi
  can_apt || die "missing ${missing[*]}: install them (as root on Debian: apt-get install ${missing[*]}) and rerun"
  log "packages: installing ${missing[*]} (log $LAB_DIR/apt.log) ..."
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; } >>"$LAB_DIR/apt.log" 2>&1 \
    || die "apt-get install ${missing[*]} failed; see $LAB_DIR/apt.log"
  # Debian's own docker-registry unit listens on :5000 with htpasswd auth; the lab runs its own.
  if [[ " ${missing[*]} " == *" docker-registry "* ]] && have systemctl && systemctl -q is-active docker-registry 2>/dev/null; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
    log "packages: stopped Debian's docker-registry service (the lab runs its own on $REGISTRY)"
  fi
  # Likewise Debian's prometheus unit would take :9090 with its own config.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && have systemctl && systemctl -q is-active prometheus 2>/dev/null; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
    log "packages: stopped Debian's prometheus service (the lab runs its own on $PROMETHEUS_ADDR)"
  fi
  log "packages: installed ${missing[*]}"
}

ensure_docker() {
  if docker_up; then log "docker: already running (engine $(docker version -f '{{.Server.Version}}'))"; return; fi
  can_apt || die "cannot reach the Docker Engine ($(docker info 2>&1 | grep -m1 -i error || true)): start it (e.g. sudo systemctl start docker) or run this as root on Debian, then rerun"
  if [[ -d /run/systemd/system ]]; then
    systemctl start docker || die "systemctl start docker failed; see journalctl -u docker"
  elif ! pid_alive "$(cat "$LAB_DIR/dockerd.pid" 2>/dev/null)"; then
    setsid nohup dockerd >>"$LAB_DIR/dockerd.log" 2>&1 </dev/null 9>&- &
    echo $! >"$LAB_DIR/dockerd.pid"
  fi
  wait_until 60 docker_up || die "the Docker Engine did not answer within 60 s; see $LAB_DIR/dockerd.log"
  log "docker: started (engine $(docker version -f '{{.Server.Version}}'), log $LAB_DIR/dockerd.log)"
}

# --- up: registries ------------------------------------------------------------------------------

# write_if_changed FILE: replace FILE with stdin when they differ; succeed only if it changed.
write_if_changed() {
  cat >"$1.new"
  if cmp -s "$1.new" "$1"; then rm -f "$1.new"; return 1; fi
  mv "$1.new" "$1"
}

# registry_config DIR PORT [AUTH YAML]: the config of one lab registry (storage under DIR/data).
registry_config() {
  cat <<EOF
# Written by include/lab/lab.sh; edits are overwritten.
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $1/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$2
  secret: patchpipe-lab-$2
  headers:
    X-Content-Type-Options: [nosniff]
${3:-}
EOF
}

registry_running() { [[ $(cat "/proc/$(cat "$1/registry.pid" 2>/dev/null)/comm" 2>/dev/null) == docker-registry ]]; }
registry_answers() { [[ $(http_code "http://127.0.0.1:$1/v2/") =~ ^(200|401)$ ]]; }

# ensure_registry LABEL DIR PORT CHANGED: run `docker-registry serve DIR/config.yml` in the background.
ensure_registry() {
  local label=$1 dir=$2 port=$3 changed=$4
  if registry_running "$dir"; then
    if [[ $changed == no ]]; then log "$label 127.0.0.1:$port: already running"; return; fi
    stop_registry "$label" "$dir" "$port" >/dev/null   # its config or password changed
  fi
  [[ $(http_code "http://127.0.0.1:$port/") == 000 ]] \
    || die "something else answers on 127.0.0.1:$port (no live lab registry in $dir/registry.pid): stop it (find it with: ss -ltnp 'sport = :$port') and rerun"
  setsid nohup docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 </dev/null 9>&- &
  echo $! >"$dir/registry.pid"
  wait_until 20 registry_answers "$port" || die "$label 127.0.0.1:$port did not answer within 20 s; see $dir/registry.log"
  log "$label 127.0.0.1:$port: started (data $dir/data)"
}

stop_registry() {
  local label=$1 dir=$2 port=$3 pid
  if ! registry_running "$dir"; then log "$label 127.0.0.1:$port: already stopped"; return; fi
  pid=$(cat "$dir/registry.pid")
  kill "$pid"
  wait_until 10 pid_gone "$pid" || die "$label (pid $pid) did not stop within 10 s"
  rm -f "$dir/registry.pid"
  log "$label 127.0.0.1:$port: stopped (data kept in $dir/data)"
}

ensure_registries() {
  local dir=$LAB_DIR/registry changed=no auth
  mkdir -p "$dir/data"
  registry_config "$dir" 5000 | write_if_changed "$dir/config.yml" && changed=yes
  ensure_registry registry "$dir" 5000 "$changed"

  dir=$LAB_DIR/registry-auth changed=no
  mkdir -p "$dir/data"
  if ! htpasswd -vb "$dir/htpasswd" "$AUTH_USER" "$AUTH_PASSWORD" >/dev/null 2>&1; then
    htpasswd -Bbn "$AUTH_USER" "$AUTH_PASSWORD" >"$dir/htpasswd" 2>/dev/null
    changed=yes
  fi
  auth=$(printf 'auth:\n  htpasswd:\n    realm: patchpipe-lab\n    path: %s/htpasswd' "$dir")
  registry_config "$dir" 5001 "$auth" | write_if_changed "$dir/config.yml" && changed=yes
  ensure_registry "auth registry" "$dir" 5001 "$changed"
}

# --- up: Swarm -----------------------------------------------------------------------------------

ensure_swarm() {
  if swarm_active; then
    [[ $(docker info -f '{{.Swarm.ControlAvailable}}') == true ]] \
      || die "this node is a Swarm worker, not a manager: run docker swarm leave and rerun"
    log "swarm: already active"
    return
  fi
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null || die "docker swarm init failed (see above)"
  log "swarm: initialised (single node, advertise address 127.0.0.1)"
}

# --- up: network and proxy ----------------------------------------------------------------------
# Swarm's routing mesh (ingress) needs IPVS, which many kernels lack (this one does). So services
# run with --endpoint-mode dnsrr on an overlay network and one proxy container, published on
# 127.0.0.1, forwards each port to the healthy tasks of its service (see include/lab/proxy/proxy.py).

ensure_network() {
  if docker network inspect "$NETWORK" >/dev/null 2>&1; then log "network $NETWORK: already present"; return; fi
  docker network create --driver overlay --attachable "$NETWORK" >/dev/null || die "cannot create the overlay network $NETWORK (see above)"
  log "network $NETWORK: created (overlay, attachable)"
}

# proxy_routes: "18080=demo-web-production:8080 ..." from SERVICES.
proxy_routes() {
  local line svc image name env port routes=()
  for line in "${SERVICES[@]}"; do
    read -r svc image name env port <<<"$line"
    routes+=("$port=$svc:8080")
  done
  printf '%s\n' "${routes[*]}"
}

ensure_proxy() {
  local dir=$REPO_ROOT/include/lab/proxy routes image base current route publish=()
  routes=$(proxy_routes)
  image=patchpipe-lab/proxy:$(cat "$dir/Dockerfile" "$dir/proxy.py" | sha256sum | cut -c1-12)
  if ! docker image inspect "$image" >/dev/null 2>&1; then
    base=$REGISTRY/${BASE%%:*}@$(reg_digest "${BASE%%:*}" "${BASE##*:}$ORIGINAL")
    DOCKER_BUILDKIT=0 docker build --build-arg "BASE_IMAGE=$base" -t "$image" "$dir" >"$LAB_DIR/build-proxy.log" 2>&1 \
      || die "building the lab proxy failed; see $LAB_DIR/build-proxy.log"
  fi
  current=$(docker inspect -f '{{.Config.Image}} {{.State.Running}} {{index .Config.Labels "patchpipe.lab.routes"}}' "$PROXY" 2>/dev/null || true)
  if [[ $current == "$image true $routes" ]]; then log "lab proxy: already running"; return; fi
  for route in $routes; do publish+=(--publish "127.0.0.1:${route%%=*}:${route%%=*}"); done
  # Attaching a container to the overlay network can time out while Swarm settles (right after
  # dockerd starts, or after `down` removed the services): try a few times.
  local attempt
  for attempt in 1 2 3 4 5; do
    docker rm -f "$PROXY" >/dev/null 2>&1 || true
    docker run --detach --name "$PROXY" --restart unless-stopped --network "$NETWORK" \
      --label "patchpipe.lab.routes=$routes" --env "LAB_ROUTES=$routes" "${publish[@]}" "$image" \
      >"$LAB_DIR/proxy-start.log" 2>&1 && break
    ((attempt < 5)) || die "cannot start the lab proxy: $(tail -1 "$LAB_DIR/proxy-start.log") (is one of the ports of '$routes' taken? see: ss -ltnp)"
    sleep 3
  done
  log "lab proxy: started ($routes)"
}

# --- up: Prometheus -----------------------------------------------------------------------------
# Debian's /usr/bin/prometheus as a background process with include/lab/prometheus.yml: data, pid
# file and log under $LAB_DIR/prometheus. A changed config is reloaded (SIGHUP), not restarted.

prometheus_running() { [[ $(cat "/proc/$(cat "$LAB_DIR/prometheus/prometheus.pid" 2>/dev/null)/comm" 2>/dev/null) == prometheus ]]; }
prometheus_ready() { [[ $(http_code "http://$PROMETHEUS_ADDR/-/ready") == 200 ]]; }

# prometheus_value QUERY: the sample value of a one-series instant query, e.g. 1 for up{...}.
prometheus_value() {
  curl -fsS -G --max-time 3 "http://$PROMETHEUS_ADDR/api/v1/query" --data-urlencode "query=$1" 2>/dev/null \
    | sed -n 's/.*"value":\[[^,]*,"\([^"]*\)"\].*/\1/p'
}
# scraped SERVICE: Prometheus has scraped SERVICE's /metrics successfully (up == 1).
scraped() { [[ $(prometheus_value "up{service=\"$1\"}") == 1 ]]; }

ensure_prometheus() {
  local dir=$LAB_DIR/prometheus bin sum pid line svc image name env port
  bin=$(command -v prometheus) \
    || die "prometheus is not installed: apt-get install prometheus (Debian's package; the lab runs its own instance on $PROMETHEUS_ADDR)"
  mkdir -p "$dir/data"
  promtool check config "$PROMETHEUS_CONFIG" >"$dir/check.log" 2>&1 \
    || die "$PROMETHEUS_CONFIG is not a valid Prometheus config; see $dir/check.log"
  sum=$(sha256sum "$PROMETHEUS_CONFIG" | cut -d' ' -f1)
  if prometheus_running; then
    pid=$(cat "$dir/prometheus.pid")
    if [[ $(cat "$dir/config.sha256" 2>/dev/null) == "$sum" ]]; then
      log "prometheus $PROMETHEUS_ADDR: already running"
    else
      kill -HUP "$pid"
      printf '%s\n' "$sum" >"$dir/config.sha256"
      log "prometheus $PROMETHEUS_ADDR: reloaded $PROMETHEUS_CONFIG"
    fi
  else
    [[ $(http_code "http://$PROMETHEUS_ADDR/") == 000 ]] \
      || die "something else answers on $PROMETHEUS_ADDR (no live lab Prometheus in $dir/prometheus.pid): stop it (Debian's unit: systemctl disable --now prometheus; else find it with: ss -ltnp 'sport = :${PROMETHEUS_ADDR##*:}') and rerun"
    setsid nohup "$bin" --config.file="$PROMETHEUS_CONFIG" --storage.tsdb.path="$dir/data" \
      --storage.tsdb.retention.time=7d --web.listen-address="$PROMETHEUS_ADDR" \
      >>"$dir/prometheus.log" 2>&1 </dev/null 9>&- &
    echo $! >"$dir/prometheus.pid"
    printf '%s\n' "$sum" >"$dir/config.sha256"
    wait_until 30 prometheus_ready || die "prometheus $PROMETHEUS_ADDR is not ready (/-/ready) after 30 s; see $dir/prometheus.log"
    log "prometheus $PROMETHEUS_ADDR: started ($bin, data $dir/data, log $dir/prometheus.log)"
  fi
  for line in "${SERVICES[@]}"; do
    read -r svc image name env port <<<"$line"
    wait_until 30 scraped "$svc" \
      || die "prometheus has not scraped $svc (http://127.0.0.1:$port/metrics) within 30 s; see http://$PROMETHEUS_ADDR/targets and $dir/prometheus.log"
  done
  log "prometheus: scrapes all ${#SERVICES[@]} services every 2 s"
}

stop_prometheus() {
  local dir=$LAB_DIR/prometheus pid
  if ! prometheus_running; then log "prometheus $PROMETHEUS_ADDR: already stopped"; return; fi
  pid=$(cat "$dir/prometheus.pid")
  kill "$pid"
  wait_until 30 pid_gone "$pid" || die "prometheus (pid $pid) did not stop within 30 s"
  rm -f "$dir/prometheus.pid"
  log "prometheus $PROMETHEUS_ADDR: stopped (data kept in $dir/data)"
}

# --- up: base image ------------------------------------------------------------------------------

# configure_rootfs DIR: apt sources and clean-ups as in the official debian image; no upgrade, on
# purpose: the fresh minbase is older than bookworm-security, so the lab has real patches to apply.
configure_rootfs() {
  local root=$1
  rm -f "$root/etc/apt/sources.list" "$root/etc/hostname" "$root/etc/resolv.conf"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  printf '#!/bin/sh\n# no services start inside image builds\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
}

build_base_tarball() {
  local root
  if [[ -s $BASE_TARBALL ]]; then log "base rootfs: cached ($BASE_TARBALL)"; return; fi
  mkdir -p "$CACHE"
  root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  log "base rootfs: debootstrap --variant=minbase bookworm from $MIRROR (about 30 s) ..."
  if ! debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$LAB_DIR/debootstrap.log" 2>&1; then
    umount "$root/proc" "$root/sys" 2>/dev/null || true
    rm -rf --one-file-system "$root"
    die "debootstrap failed; see $LAB_DIR/debootstrap.log (mirror $MIRROR; set DEBIAN_MIRROR to use another)"
  fi
  configure_rootfs "$root"
  tar --numeric-owner --exclude='./dev/*' -C "$root" -cf "$BASE_TARBALL.tmp" .
  mv "$BASE_TARBALL.tmp" "$BASE_TARBALL"
  rm -rf --one-file-system "$root"
  log "base rootfs: cached $BASE_TARBALL ($(du -m "$BASE_TARBALL" | cut -f1) MB)"
}

# already_pushed REPO:TAG: the lab-original tag exists (re-pointing TAG at it if TAG went missing).
already_pushed() {
  local repo=${1%%:*} tag=${1##*:}
  reg_digest "$repo" "$tag$ORIGINAL" >/dev/null || return 1
  reg_digest "$repo" "$tag" >/dev/null || reg_copy "$repo" "$tag$ORIGINAL" "$tag"
}

# push_with_original REF: push REF and the same image as REF-lab-original; print the digest.
push_with_original() {
  local name=${1#"$REGISTRY/"}
  docker tag "$1" "$1$ORIGINAL"
  push "$1"
  push "$1$ORIGINAL"
  reg_digest "${name%%:*}" "${name##*:}"
}

ensure_base_image() {
  local ref=$REGISTRY/$BASE source digest
  if already_pushed "$BASE"; then log "base image $ref: already in the registry"; return; fi
  if [[ -n ${PATCHPIPE_BASE_IMAGE:-} ]]; then
    docker pull -q "$PATCHPIPE_BASE_IMAGE" >/dev/null \
      || die "cannot pull PATCHPIPE_BASE_IMAGE=$PATCHPIPE_BASE_IMAGE; unset it to build the base with debootstrap"
    docker tag "$PATCHPIPE_BASE_IMAGE" "$ref"
    source="pulled $PATCHPIPE_BASE_IMAGE"
  else
    build_base_tarball
    docker import --change 'CMD ["bash"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --message "debootstrap --variant=minbase bookworm" "$BASE_TARBALL" "$ref" >/dev/null
    source="imported $BASE_TARBALL"
  fi
  digest=$(push_with_original "$ref")
  log "base image $ref: pushed $digest ($source; also as :bookworm$ORIGINAL)"
}

# --- up: demo fleet ------------------------------------------------------------------------------

ensure_demo_image() {
  local image=$1 context=$2 ref=$REGISTRY/$1 base digest
  if already_pushed "$image"; then log "image $ref: already in the registry"; return; fi
  base=$REGISTRY/${BASE%%:*}@$(reg_digest "${BASE%%:*}" "${BASE##*:}$ORIGINAL")
  log "image $ref: building from $DEMO_DIR/$context on $base ..."
  DOCKER_BUILDKIT=0 docker build --build-arg "BASE_IMAGE=$base" -t "$ref" "$DEMO_DIR/$context" \
    >"$LAB_DIR/build-$context.log" 2>&1 || die "building $ref failed; see $LAB_DIR/build-$context.log"
  digest=$(push_with_original "$ref")
  log "image $ref: pushed $digest (also as :${image##*:}$ORIGINAL)"
}

ensure_services() {
  local line svc image name env port digest
  for line in "${SERVICES[@]}"; do
    read -r svc image name env port <<<"$line"
    if docker service inspect "$svc" >/dev/null 2>&1; then
      # Older labs created the services without DEMO_ENVIRONMENT (what DEMO_FAULT_ENVIRONMENT compares to).
      if ! docker service inspect "$svc" --format '{{json .Spec.TaskTemplate.ContainerSpec.Env}}' | grep -q DEMO_ENVIRONMENT; then
        docker service update --detach --quiet --env-add "DEMO_ENVIRONMENT=$env" "$svc" >/dev/null
        log "service $svc: DEMO_ENVIRONMENT=$env added"
      else
        log "service $svc: already present"
      fi
      continue
    fi
    digest=$(reg_digest "${image%%:*}" "${image##*:}") || die "$REGISTRY/$image is not in the registry: run make lab-up"
    docker service create --detach --quiet --name "$svc" --replicas 1 --env "DEMO_ENVIRONMENT=$env" \
      --network "$NETWORK" --endpoint-mode dnsrr \
      --label "patchpipe.image=$name" --label "patchpipe.env=$env" \
      --update-order start-first --update-parallelism 1 --update-failure-action rollback --update-monitor 5s \
      --rollback-order start-first --rollback-parallelism 1 --rollback-monitor 5s \
      "$REGISTRY/${image%%:*}@$digest" >/dev/null || die "docker service create $svc failed (see above)"
    log "service $svc: created from $REGISTRY/${image%%:*}@$digest (published on 127.0.0.1:$port by the lab proxy)"
  done
}

wait_services() {
  local line svc image name env port
  for line in "${SERVICES[@]}"; do
    read -r svc image name env port <<<"$line"
    wait_until 120 healthz_ok "$port" \
      || die "service $svc does not answer http://127.0.0.1:$port/healthz after 120 s; look at: docker service ps --no-trunc $svc; docker service logs $svc"
  done
  log "services: all ${#SERVICES[@]} answer /healthz"
}

summary() {
  local line svc image name env port
  log "lab is up (${SECONDS} s):"
  log "  registry       http://$REGISTRY (no auth; data $LAB_DIR/registry/data)"
  log "  auth registry  http://$AUTH_REGISTRY (user $AUTH_USER, password \$PATCHPIPE_LAB_AUTH_PASSWORD, default patchpipe-lab)"
  log "  base image     $REGISTRY/$BASE"
  log "  services       on overlay network $NETWORK (dnsrr), published by container $PROXY:"
  for line in "${SERVICES[@]}"; do
    read -r svc image name env port <<<"$line"
    log "    $(printf '%-22s' "$svc") http://127.0.0.1:$port  ($REGISTRY/$image)"
  done
  log "  prometheus     http://$PROMETHEUS_ADDR (scrapes the services; PATCHPIPE_PROMETHEUS_URL, data $LAB_DIR/prometheus/data)"
}

cmd_up() {
  ensure_packages
  ensure_docker
  ensure_registries
  ensure_swarm
  ensure_network
  ensure_base_image
  local line image context
  for line in "${IMAGES[@]}"; do
    read -r image context <<<"$line"
    ensure_demo_image "$image" "$context"
  done
  ensure_proxy
  ensure_services
  wait_services
  ensure_prometheus
  summary
}

# --- down ----------------------------------------------------------------------------------------

cmd_down() {
  local line svc rest
  if docker_up && swarm_active; then
    for line in "${SERVICES[@]}"; do
      read -r svc rest <<<"$line"
      if docker service rm "$svc" >/dev/null 2>&1; then log "service $svc: removed"; else log "service $svc: already absent"; fi
    done
  else
    log "services: none (no Docker Engine or Swarm)"
  fi
  if docker rm -f "$PROXY" >/dev/null 2>&1; then log "lab proxy: removed"; else log "lab proxy: already absent"; fi
  stop_registry registry "$LAB_DIR/registry" 5000
  stop_registry "auth registry" "$LAB_DIR/registry-auth" 5001
  stop_prometheus
  log "docker and swarm: left running; caches kept in $CACHE"
}

# --- status --------------------------------------------------------------------------------------

cmd_status() {
  local failed=0 registry_up=no line svc image name env port spec digest orig replicas state
  report() { if [[ $2 == ok ]]; then log "$1: $3"; else log "$1: DOWN - $3"; failed=1; fi; }

  if docker_up; then report docker ok "running (engine $(docker version -f '{{.Server.Version}}'))"
  else report docker bad "no Docker Engine answers (run make lab-up)"; fi

  if [[ $(http_code "http://$REGISTRY/v2/") == 200 ]]; then report "registry $REGISTRY" ok "answering"; registry_up=yes
  else report "registry $REGISTRY" bad "GET /v2/ does not answer 200 (log $LAB_DIR/registry/registry.log)"; fi

  if [[ $(http_code "http://$AUTH_REGISTRY/v2/") == 401 && $(http_code -u "$AUTH_USER:$AUTH_PASSWORD" "http://$AUTH_REGISTRY/v2/") == 200 ]]
  then report "auth registry $AUTH_REGISTRY" ok "answering (401 anonymous, 200 as $AUTH_USER)"
  else report "auth registry $AUTH_REGISTRY" bad "does not answer 401 anonymous / 200 as $AUTH_USER (log $LAB_DIR/registry-auth/registry.log)"; fi

  if swarm_active; then report swarm ok active; else report swarm bad "not active"; fi

  if docker network inspect "$NETWORK" >/dev/null 2>&1; then report "network $NETWORK" ok present
  else report "network $NETWORK" bad absent; fi

  if [[ $(docker inspect -f '{{.State.Running}}' "$PROXY" 2>/dev/null) == true ]]
  then report "lab proxy" ok "running ($(docker inspect -f '{{index .Config.Labels "patchpipe.lab.routes"}}' "$PROXY"))"
  else report "lab proxy" bad "container $PROXY is not running"; fi

  local scraped_count=0 total=${#SERVICES[@]}
  if prometheus_ready; then
    for line in "${SERVICES[@]}"; do
      read -r svc image name env port <<<"$line"
      scraped "$svc" && scraped_count=$((scraped_count + 1))
    done
    if ((scraped_count == total)); then
      report "prometheus $PROMETHEUS_ADDR" ok "ready (pid $(cat "$LAB_DIR/prometheus/prometheus.pid" 2>/dev/null || echo '?')), $scraped_count/$total services scraped"
    else
      report "prometheus $PROMETHEUS_ADDR" bad "ready, but only $scraped_count/$total services scraped (see http://$PROMETHEUS_ADDR/targets)"
    fi
  else
    report "prometheus $PROMETHEUS_ADDR" bad "/-/ready does not answer 200 (log $LAB_DIR/prometheus/prometheus.log)"
  fi

  for image in $(fleet_images); do
    if [[ $registry_up == no ]]; then
      report "image $REGISTRY/$image" bad "unknown (the registry is down)"
    elif digest=$(reg_digest "${image%%:*}" "${image##*:}"); then
      orig=$(reg_digest "${image%%:*}" "${image##*:}$ORIGINAL" || true)
      [[ $digest == "$orig" ]] && state="lab original" || state="patched; original $orig"
      report "image $REGISTRY/$image" ok "$digest ($state)"
    else
      report "image $REGISTRY/$image" bad "not in the registry"
    fi
  done

  for line in "${SERVICES[@]}"; do
    read -r svc image name env port <<<"$line"
    if ! spec=$(docker service inspect -f '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "$svc" 2>/dev/null); then
      report "service $svc" bad "absent"; continue
    fi
    replicas=$(docker service ls --format '{{.Name}} {{.Replicas}}' | awk -v s="$svc" '$1 == s {print $2}')
    state=$(docker service inspect -f '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "$svc")
    if healthz_ok "$port"; then
      report "service $svc" ok "$spec $replicas${state:+ (update $state)}, answering http://127.0.0.1:$port/healthz"
    else
      report "service $svc" bad "$spec $replicas${state:+ (update $state)}, http://127.0.0.1:$port/healthz does not answer 200"
    fi
  done
  return "$failed"
}

# --- reset ---------------------------------------------------------------------------------------

restore_tag() {
  local repo=${1%%:*} tag=${1##*:} orig current
  orig=$(reg_digest "$repo" "$tag$ORIGINAL") || die "$REGISTRY/$repo:$tag$ORIGINAL is missing: run make lab-up first"
  current=$(reg_digest "$repo" "$tag" || true)
  if [[ $current == "$orig" ]]; then log "tag $REGISTRY/$1: already original"; return; fi
  reg_copy "$repo" "$tag$ORIGINAL" "$tag"
  log "tag $REGISTRY/$1: restored to $orig"
}

# delete_patch_tags: delete the manifests behind every *-patch.* tag (registry 2.8 has no tag-only delete).
delete_patch_tags() {
  local repo tag digest originals deleted=0
  originals=" $(for image in $(fleet_images); do reg_digest "${image%%:*}" "${image##*:}$ORIGINAL"; done | tr '\n' ' ')"
  for repo in $(curl -fsS "http://$REGISTRY/v2/_catalog?n=1000" | json_strings repositories); do
    for tag in $(curl -fsS "http://$REGISTRY/v2/$repo/tags/list" | json_strings tags); do
      [[ $tag == *-patch.* ]] || continue
      digest=$(reg_digest "$repo" "$tag") || continue
      if [[ $originals == *" $digest "* ]]; then
        log "tag $REGISTRY/$repo:$tag: kept (it points at a lab original, $digest)"
        continue
      fi
      curl -fsS -o /dev/null -X DELETE "http://$REGISTRY/v2/$repo/manifests/$digest" \
        || die "could not delete $REGISTRY/$repo@$digest (is delete enabled in $LAB_DIR/registry/config.yml?)"
      log "tag $REGISTRY/$repo:$tag: deleted ($digest)"
      deleted=$((deleted + 1))
    done
  done
  ((deleted > 0)) || log "patch tags: none to delete"
}

# reset_services: put every present service back on its original digest, without extra env vars.
reset_services() {
  local line svc image name env port want current envs var pids=() names=() i
  for line in "${SERVICES[@]}"; do
    read -r svc image name env port <<<"$line"
    docker service inspect "$svc" >/dev/null 2>&1 || continue   # created by ensure_services below
    want=$(reg_digest "${image%%:*}" "${image##*:}$ORIGINAL")
    current=$(docker service inspect -f '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "$svc")
    envs=$(docker service inspect -f '{{range .Spec.TaskTemplate.ContainerSpec.Env}}{{println .}}{{end}}' "$svc")
    if [[ ${current##*@} == "$want" && -z $envs ]]; then log "service $svc: already original"; continue; fi
    local args=(--image "$REGISTRY/${image%%:*}@$want")
    while IFS= read -r var; do
      if [[ -n $var ]]; then args+=(--env-rm "${var%%=*}"); fi
    done <<<"$envs"
    docker service update --quiet --detach=false "${args[@]}" "$svc" >>"$LAB_DIR/reset.log" 2>&1 &
    pids+=($!) names+=("$svc")
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || die "updating ${names[$i]} back to its original failed; see $LAB_DIR/reset.log and: docker service ps --no-trunc ${names[$i]}"
    log "service ${names[$i]}: back on the original digest"
  done
}

cmd_reset() {
  docker_up || die "no Docker Engine answers: run make lab-up"
  [[ $(http_code "http://$REGISTRY/v2/") == 200 ]] || die "the lab registry $REGISTRY does not answer: run make lab-up"
  local image
  for image in $(fleet_images); do restore_tag "$image"; done
  delete_patch_tags
  reset_services
  ensure_network
  ensure_proxy
  ensure_services
  wait_services
  log "lab reset (${SECONDS} s)"
}

# --- main ----------------------------------------------------------------------------------------

main() {
  local cmd=${1:-}
  case $cmd in
    up | down | reset)
      mkdir -p "$LAB_DIR"
      exec 9>"$LAB_DIR/lab.lock"
      flock -w 900 9 || die "another lab.sh holds $LAB_DIR/lab.lock"
      "cmd_$cmd"
      ;;
    status) cmd_status ;;
    *) printf 'usage: %s up|down|status|reset\n' "$0" >&2; exit 2 ;;
  esac
}

main "$@"
