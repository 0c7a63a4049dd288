"""A plain container's own settings, read from `docker inspect`, to create its successor from.

`docker inspect` shows a container's config *merged* with its image's: the image's ENV, CMD,
ENTRYPOINT, HEALTHCHECK, labels, exposed ports, volumes, user and working dir all appear as if the
user had typed them. Copying that verbatim onto a new image would pin the old image's defaults (for
example an ``ENV BUILD_ID=`` the new image changed, or its old CMD). So a field is carried over only
where it differs from the old image's config: what remains is what the user set on `docker run`,
and the new image supplies its own defaults for everything else (a user setting equal to the old
image's default is indistinguishable from it, and follows the new image).

Carried over as well: the host config (restart policy, binds and mounts, resources, capabilities,
log driver, ...), the user-defined networks with their aliases and links, a hostname the user chose,
and the old container's anonymous volumes (an image VOLUME or ``-v /path``), mounted by name as
docker compose does, so the data in them survives the switch.

Refused, with a message: ``--rm`` (the stopped container could not be kept for a rollback),
``--network host`` and ``--network container:...`` (two containers cannot listen on one network
namespace side by side), and static IP addresses (two containers cannot hold one address).

Pure functions of the inspect data: no Docker calls here.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from patchpipe.deploy.base import DeployError

# Engine-generated values in a container's inspect HostConfig that a create request must not repeat.
_HOST_CONFIG_DROP = ("ContainerIDFile",)
_DEFAULT_NETWORKS = ("default", "bridge")
# Config fields that fall back to the image's value when the user leaves them empty.
_IMAGE_DEFAULTED = ("User", "WorkingDir", "StopSignal", "Shell")


@dataclass(frozen=True)
class Endpoint:
    """How a container joins one network: the user's aliases and links, driver options."""

    network: str
    aliases: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    driver_opts: dict = field(default_factory=dict)

    @property
    def user_defined(self) -> bool:
        """Only user-defined networks have DNS, and so aliases and per-network links."""
        return self.network not in _DEFAULT_NETWORKS

    def settings(self, extra_aliases: tuple[str, ...] = (), with_aliases: bool = True) -> dict:
        """EndpointSettings for a create or connect request."""
        settings: dict = {}
        if self.user_defined:
            aliases = list(dict.fromkeys((*self.aliases, *extra_aliases))) if with_aliases else []
            if aliases:
                settings["Aliases"] = aliases
            if self.links:
                settings["Links"] = list(self.links)
        if self.driver_opts:
            settings["DriverOpts"] = dict(self.driver_opts)
        return settings


@dataclass(frozen=True)
class ContainerSpec:
    """What a successor of one container needs, minus the image."""

    name: str
    config: dict  # the user's own Config fields (no Image)
    host_config: dict  # HostConfig without port bindings
    port_bindings: dict  # "8080/tcp" -> [{"HostIp", "HostPort"}], pinned to the ports in use
    endpoints: tuple[Endpoint, ...]  # the NetworkMode network first

    @property
    def publishes_ports(self) -> bool:
        """A published host port can be bound by one container at a time: the switch has a gap."""
        return bool(self.port_bindings)

    def create_body(self, image: str, *, publish: bool, with_aliases: bool,
                    extra_aliases: tuple[str, ...] = ()) -> dict:
        """The body of POST /containers/create for ``image``.

        ``publish`` False leaves the host ports unbound (a trial run next to the live container);
        ``with_aliases`` False keeps the container out of its networks' aliases, so no traffic
        reaches it by name before it is healthy. Only the first network can be given at create
        (Engine API < 1.44): connect the others with :meth:`extra_endpoints` before starting.
        """
        body = copy.deepcopy(self.config)
        body["Image"] = image
        host_config = copy.deepcopy(self.host_config)
        if publish and self.port_bindings:
            host_config["PortBindings"] = copy.deepcopy(self.port_bindings)
            exposed = body.setdefault("ExposedPorts", {})
            for port in self.port_bindings:
                exposed.setdefault(port, {})
        body["HostConfig"] = host_config
        if self.endpoints:
            first = self.endpoints[0]
            body["NetworkingConfig"] = {
                "EndpointsConfig": {first.network: first.settings(extra_aliases, with_aliases)}
            }
        return body

    @property
    def extra_endpoints(self) -> tuple[Endpoint, ...]:
        return self.endpoints[1:]


def spec_from_inspect(container: dict, image_config: dict | None) -> ContainerSpec:
    """The successor spec of ``container`` (``docker inspect`` output) whose image config was
    ``image_config`` (the old image's ``Config`` from ``docker image inspect``)."""
    name = container["Name"].lstrip("/")
    host = container.get("HostConfig") or {}
    _refuse_unsupported(name, host, container)
    return ContainerSpec(
        name=name,
        config=own_config(container, image_config or {}),
        host_config=_host_config(name, container),
        port_bindings=pinned_port_bindings(container),
        endpoints=_endpoints(name, container),
    )


def own_config(container: dict, image: dict) -> dict:
    """The container's Config fields that its user set, i.e. that differ from the image's."""
    cfg = container.get("Config") or {}
    own: dict = {}
    env = [entry for entry in cfg.get("Env") or [] if entry not in set(image.get("Env") or [])]
    if env:
        own["Env"] = env
    # `docker run --entrypoint` drops the image's CMD; otherwise an empty CMD falls back to the image's.
    if (cfg.get("Entrypoint") or None) != (image.get("Entrypoint") or None):
        own["Entrypoint"] = cfg.get("Entrypoint") or [""]  # [""] resets an image ENTRYPOINT
        own["Cmd"] = cfg.get("Cmd")
    elif (cfg.get("Cmd") or None) != (image.get("Cmd") or None):
        own["Cmd"] = cfg.get("Cmd")
    labels = {k: v for k, v in (cfg.get("Labels") or {}).items() if (image.get("Labels") or {}).get(k) != v}
    if labels:
        own["Labels"] = labels
    for key in ("ExposedPorts", "Volumes"):
        extra = {k: v for k, v in (cfg.get(key) or {}).items() if k not in (image.get(key) or {})}
        if extra:
            own[key] = extra
    health = _own_healthcheck(cfg.get("Healthcheck"), image.get("Healthcheck"))
    if health:
        own["Healthcheck"] = health
    for key in _IMAGE_DEFAULTED:
        if cfg.get(key) and cfg.get(key) != image.get(key):
            own[key] = cfg[key]
    if cfg.get("Hostname") and not container.get("Id", "").startswith(cfg["Hostname"]):
        own["Hostname"] = cfg["Hostname"]  # Docker's default hostname is the container's short id
    for key in ("Domainname", "Tty", "OpenStdin", "StdinOnce", "StopTimeout"):
        if cfg.get(key):
            own[key] = cfg[key]
    return own


def _own_healthcheck(mine: dict | None, image: dict | None) -> dict | None:
    """The health-check fields set on `docker run`; Docker fills the others from the image."""
    if not mine:
        return None
    image = image or {}
    own = {k: v for k, v in mine.items() if v and image.get(k) != v}
    return own or None


def pinned_port_bindings(container: dict) -> dict:
    """The host ports the container publishes, pinned to those it holds now.

    ``-p 8080`` and ``-P`` publish on a random host port; the successor must take over the same
    port, or its clients lose it. A stopped container holds none, so its configured bindings stand.
    """
    host = container.get("HostConfig") or {}
    configured = copy.deepcopy(host.get("PortBindings") or {})
    live = (container.get("NetworkSettings") or {}).get("Ports") or {}
    bindings: dict = {}
    for port, wanted in configured.items():
        held = [b for b in live.get(port) or [] if b.get("HostPort")]
        if wanted and all(b.get("HostPort") for b in wanted):
            bindings[port] = wanted
        elif held:
            bindings[port] = _dedupe(held)
        else:
            bindings[port] = wanted or [{"HostIp": "", "HostPort": ""}]
    if host.get("PublishAllPorts"):
        for port, held in live.items():
            if held and port not in bindings:
                bindings[port] = _dedupe(held)
    return bindings


def _dedupe(bindings: list[dict]) -> list[dict]:
    # Docker lists an IPv4 and an IPv6 binding for 0.0.0.0 publishing; asking for both again fails.
    seen, out = set(), []
    for binding in bindings:
        ip = binding.get("HostIp", "")
        key = ("" if ip in ("0.0.0.0", "::") else ip, binding["HostPort"])
        if key not in seen:
            seen.add(key)
            out.append({"HostIp": key[0], "HostPort": key[1]})
    return out


def _host_config(name: str, container: dict) -> dict:
    host = copy.deepcopy(container.get("HostConfig") or {})
    for key in _HOST_CONFIG_DROP:
        host.pop(key, None)
    host["PortBindings"] = {}
    host["PublishAllPorts"] = False
    if host.get("Links"):
        host["Links"] = [_legacy_link(name, link) for link in host["Links"]]
    binds = list(host.get("Binds") or [])
    binds += _anonymous_volume_binds(container)
    host["Binds"] = binds or None
    return host


def _legacy_link(name: str, link: str) -> str:
    # inspect shows `--link db:dbalias` as "/db:/<name>/dbalias"; create wants "db:dbalias".
    target, _, alias = link.partition(":")
    return f"{target.lstrip('/')}:{alias.rsplit('/', 1)[-1]}" if alias else target.lstrip("/")


def _anonymous_volume_binds(container: dict) -> list[str]:
    """``volume-id:/path`` for every volume the user did not name (an image VOLUME or ``-v /path``)."""
    host = container.get("HostConfig") or {}
    named = {bind.split(":")[1] for bind in host.get("Binds") or [] if ":" in bind}
    named |= {mount.get("Target") for mount in host.get("Mounts") or []}
    binds = []
    for mount in container.get("Mounts") or []:
        if mount.get("Type") == "volume" and mount.get("Destination") not in named:
            mode = "" if mount.get("RW", True) else ":ro"
            binds.append(f"{mount['Name']}:{mount['Destination']}{mode}")
    return binds


def _endpoints(name: str, container: dict) -> tuple[Endpoint, ...]:
    host = container.get("HostConfig") or {}
    mode = host.get("NetworkMode") or "default"
    networks = (container.get("NetworkSettings") or {}).get("Networks") or {}
    if mode == "none" or not networks:
        return ()
    primary = "bridge" if mode == "default" else mode
    # `--network <id>` leaves the id in NetworkMode; the networks are listed by name.
    primary = next((net for net, s in networks.items() if (s or {}).get("NetworkID") == primary), primary)
    own_names = {name, container.get("Id", "")[:12]}
    endpoints = []
    for network, settings in networks.items():
        settings = settings or {}
        aliases = tuple(a for a in settings.get("Aliases") or [] if a not in own_names)
        links = tuple(_legacy_link(name, link) for link in settings.get("Links") or [])
        endpoints.append(Endpoint(network, aliases, links, dict(settings.get("DriverOpts") or {})))
    endpoints.sort(key=lambda e: e.network != primary)
    return tuple(endpoints)


def _refuse_unsupported(name: str, host: dict, container: dict) -> None:
    mode = host.get("NetworkMode") or ""
    if host.get("AutoRemove"):
        raise DeployError(
            f"container {name!r} runs with --rm: once stopped it would be gone, so it could not be kept "
            f"for a rollback; recreate it without --rm"
        )
    if mode == "host" or mode.startswith("container:"):
        raise DeployError(
            f"container {name!r} uses --network {mode}: its successor cannot start next to it on the same "
            f"network namespace; use a bridge or user-defined network with published ports or aliases"
        )
    for network, settings in ((container.get("NetworkSettings") or {}).get("Networks") or {}).items():
        ipam = (settings or {}).get("IPAMConfig") or {}
        if ipam.get("IPv4Address") or ipam.get("IPv6Address"):
            raise DeployError(
                f"container {name!r} has a static address on network {network!r}: its successor cannot hold "
                f"the same address while it runs; use a network alias instead of a fixed IP"
            )
