"""Plain Docker containers on a single host (no Swarm): start the new one, wait until healthy, switch.

The target is the container named NAME. A deploy never touches it until its successor has proved
itself: the successor is created from NAME's own settings (container_spec.py: only the image
changes, and only what the user set on `docker run` is carried over, never the old image's
defaults) as NAME-next, started *without* host port bindings, outside its networks' aliases and
with restart policy ``no``, and must become ready: Docker's health check says ``healthy`` when the
image (or the container) has a HEALTHCHECK; without one it must keep running for
``stable_seconds``. A successor that exits, turns unhealthy or is not ready by the deadline fails
the deploy with Docker's words (exit code, last health-check output, last log lines) and is
removed; NAME keeps serving and is never stopped.

Then the switch. How traffic reaches NAME decides what it costs:

* **Published host ports** (``-p 8080:8080``): a short gap. A host port is bound by one container
  at a time, and port bindings are fixed at create, so the trial container cannot take them over.
  It is removed, NAME-next is created again with the ports (before the gap starts), NAME is
  stopped and NAME-next started. Connections are refused from the moment NAME's ports close until
  the new process listens: NAME's shutdown, a container start and the app's startup, 1.3 to 1.9 s
  for demo-web in the lab (tests/integration/test_docker_container_deployer.py prints it). NAME-next
  must then be ready again; if it is not, it is removed and NAME started again.
* **No published ports, on a user-defined network**, behind a reverse proxy that resolves the
  container's name or a network alias per connection (Traefik, nginx with a ``resolver``, the lab's
  proxy): no gap. The healthy NAME-next rejoins each user-defined network with NAME's aliases plus
  NAME itself as an alias, so Docker's DNS answers NAME with both containers; then NAME is stopped
  and leaves the answer. Renaming a running container does not update Docker's DNS, so the alias,
  not the rename, carries the name. Unlike Swarm, Docker drops a stopping container from DNS only
  once its process has exited, so two things remain (measured in the lab with one client looping
  through the proxy): a request already in flight on NAME when it stops is finished only if the app
  drains on SIGTERM (demo-web does not: 3 of 16 switches lost that one request), and one
  that races NAME's teardown (Docker removes the interface a moment before the DNS record) waits
  for the proxy's connect timeout before the proxy tries the other address. A container with
  neither published ports nor a user-defined network has no traffic to switch.

Either way NAME is then renamed NAME-previous, its restart policy set to ``no`` (so a daemon restart
does not revive it) and kept stopped, so a rollback is a start rather than a pull and create; the
next successful deploy replaces it. NAME-next gets NAME's restart policy and is renamed NAME.

Rollback starts NAME-previous again under the name NAME, waits until it is ready, gives it the
restart policy back and removes the failed container. With published ports the failed one is
stopped first (the same gap); otherwise it serves until NAME-previous is ready. A rollback that
fails puts the failed container back as NAME and starts it again.

Like Swarm's start-first order, the successor runs next to NAME for a while and shares its
anonymous volumes: not for containers that must never run twice (a database on its data volume, a
singleton worker).
"""

from __future__ import annotations

import logging
import time

import docker.errors

from patchpipe.deploy.base import DeployError, Rollout, digest_of
from patchpipe.deploy.container_spec import ContainerSpec, pinned_port_bindings, spec_from_inspect

log = logging.getLogger(__name__)

NEXT, PREVIOUS, FAILED = "-next", "-previous", "-failed"
_NO_RESTART = {"Name": "no", "MaximumRetryCount": 0}
_CHECK_LINES = 2  # of a health check's output quoted in an error


class _NotReady(DeployError):
    """A new container failed; its last log lines go last in the message, after what happens next."""

    def __init__(self, problem: str, logs: str = ""):
        super().__init__(problem + logs)
        self.problem, self.logs = problem, logs


def _then(exc: Exception, outcome: str, prefix: str = "") -> DeployError:
    """``exc`` as a DeployError that also says ``outcome`` (what the deployer left running)."""
    if isinstance(exc, _NotReady):
        return DeployError(f"{prefix}{exc.problem}; {outcome}{exc.logs}")
    return DeployError(f"{prefix}{_explain(exc)}; {outcome}")


class DockerContainerDeployer:
    """Deploys by digest to the plain container named ``target`` on the Engine behind ``api``
    (a low-level ``docker.APIClient``, e.g. DockerHook(...).api_client)."""

    def __init__(self, api, poll_seconds: float = 1.0, stable_seconds: float = 5.0, log_lines: int = 10):
        self.api = api
        self.poll_seconds = poll_seconds
        self.stable_seconds = stable_seconds  # how long a container without HEALTHCHECK must keep running
        self.log_lines = log_lines

    # --- the Deployer interface -------------------------------------------------------------------

    def current_image(self, target: str) -> str:
        return self._inspect(target)["Config"]["Image"]

    def deploy(self, target: str, image: str, deadline_seconds: float = 600) -> Rollout:
        deadline = time.monotonic() + deadline_seconds
        old = self._inspect(target)
        previous = old["Config"]["Image"]
        self._ensure_image(image)
        if self._runs(old, image):
            if not old["State"]["Running"]:
                raise DeployError(
                    f"container {target!r} already has {_short(image)} but is not running "
                    f"({_describe_state(old)}); start it or look at `docker logs {target}`"
                )
            log.info("%s already runs %s: nothing to do", target, _short(image))
            return Rollout(target, previous, previous, changed=False)
        spec = spec_from_inspect(old, self._image_config(old, target))
        self._remove_if_present(target + NEXT)
        log.info("%s: starting %s%s from %s next to the running container", target, target, NEXT, image)
        trial = self._create(spec, image, target + NEXT, publish=False, with_aliases=False)
        try:
            self._start(trial, target + NEXT, image)
            self._wait_ready(trial, f"the new container {target}{NEXT} ({_short(image)})", deadline)
        except DeployError as exc:
            self._remove(trial)
            raise _then(exc, f"{target} still runs {previous}") from None
        if spec.publishes_ports:
            new = self._switch_ports(spec, old, trial, image, deadline)
        else:
            new = self._switch_aliases(spec, old, trial)
        self._park(old["Id"], target)
        self.api.update_container(new, restart_policy=_restart_policy(old))
        self.api.rename(new, target)
        log.info("%s now runs %s; %s%s is kept stopped for a rollback", target, _short(image), target, PREVIOUS)
        return Rollout(target, previous, image, changed=True)

    def rollback(self, target: str, failed_image: str, deadline_seconds: float = 600) -> Rollout:
        """Take ``target`` off ``failed_image``: start the kept NAME-previous again as NAME.

        A no-op when ``target`` no longer runs ``failed_image``.
        """
        deadline = time.monotonic() + deadline_seconds
        current = self._inspect(target)
        if not self._runs(current, failed_image):
            image = current["Config"]["Image"]
            log.info("%s no longer runs %s (now %s): nothing to roll back", target, _short(failed_image), image)
            return Rollout(target, image, image, changed=False)
        kept = self._inspect_optional(target + PREVIOUS)
        if kept is None:
            raise DeployError(
                f"cannot roll back container {target!r}: no {target}{PREVIOUS} container was kept "
                f"(only a deploy by patchpipe keeps one, and a rollback uses it up)"
            )
        previous_image = kept["Config"]["Image"]
        log.warning("%s: rolling back from %s to %s (%s%s)", target, _short(failed_image), previous_image,
                    target, PREVIOUS)
        stop_first = bool(pinned_port_bindings(kept))  # its host ports are still held by the failed one
        failed_was_running = current["State"]["Running"]
        self._remove_if_present(target + FAILED)
        self.api.rename(current["Id"], target + FAILED)
        self.api.rename(kept["Id"], target)
        try:
            if stop_first:
                self.api.stop(current["Id"])
            self._start(kept["Id"], target, previous_image)
            self._wait_ready(kept["Id"], f"the kept container {target}{PREVIOUS} ({previous_image})", deadline)
        except (DeployError, docker.errors.APIError) as exc:
            self._unroll(target, kept["Id"], current["Id"], failed_was_running)
            raise _then(exc, f"{target} runs {failed_image} again", f"rollback of {target} failed: ") from None
        self.api.update_container(kept["Id"], restart_policy=_restart_policy(current))
        self.api.stop(current["Id"])  # a graceful stop first: removing a running container kills it
        self._remove(current["Id"])
        log.info("%s rolled back to %s", target, previous_image)
        return Rollout(target, current["Config"]["Image"], previous_image, changed=True)

    # --- the switch -------------------------------------------------------------------------------

    def _switch_ports(self, spec: ContainerSpec, old: dict, trial: str, image: str, deadline: float) -> str:
        """Hand the host ports over: stop NAME, start NAME-next with the ports (a short gap)."""
        name = spec.name
        self._remove(trial)
        new = self._create(spec, image, name + NEXT, publish=True, with_aliases=True, extra_aliases=(name,))
        was_running = old["State"]["Running"]
        started = time.monotonic()
        if was_running:
            self.api.stop(old["Id"])
        try:
            self._start(new, name + NEXT, image)
            log.info("%s: host ports handed over to %s%s in %.2fs (stop + start)", name, name, NEXT,
                     time.monotonic() - started)
            self._wait_ready(new, f"the new container {name}{NEXT} ({_short(image)}) on the published ports",
                             deadline)
        except DeployError as exc:
            self._remove(new)
            if was_running:
                self.api.start(old["Id"])
            raise _then(exc, f"{name} was started again on {old['Config']['Image']}") from None
        return new

    def _switch_aliases(self, spec: ContainerSpec, old: dict, trial: str) -> str:
        """Give the healthy trial container NAME's aliases and name, then stop NAME (no gap)."""
        name = spec.name
        for endpoint in spec.endpoints:
            if not endpoint.user_defined:
                continue
            settings = endpoint.settings(extra_aliases=(name,))
            try:
                self.api.disconnect_container_from_network(trial, endpoint.network)
                self.api.connect_container_to_network(
                    trial, endpoint.network, aliases=settings.get("Aliases"), links=settings.get("Links"),
                    driver_opt=settings.get("DriverOpts"))
            except docker.errors.APIError as exc:
                self._remove(trial)
                raise DeployError(f"cannot give {name}{NEXT} the aliases of {name} on network "
                                  f"{endpoint.network!r}: {_explain(exc)}; {name} still runs "
                                  f"{old['Config']['Image']}") from None
        if old["State"]["Running"]:
            self.api.stop(old["Id"])
        return trial

    def _park(self, container: str, name: str) -> None:
        """Keep the replaced container as NAME-previous, stopped for good until a rollback needs it."""
        self._remove_if_present(name + PREVIOUS)
        self.api.update_container(container, restart_policy=_NO_RESTART)
        self.api.rename(container, name + PREVIOUS)

    def _unroll(self, name: str, kept: str, failed: str, failed_was_running: bool) -> None:
        """Undo a rollback that did not work: NAME-previous parked again, the failed one back as NAME."""
        self.api.stop(kept)
        self.api.update_container(kept, restart_policy=_NO_RESTART)
        self.api.rename(kept, name + PREVIOUS)
        self.api.rename(failed, name)
        if failed_was_running:
            self.api.start(failed)

    # --- waiting ----------------------------------------------------------------------------------

    def _wait_ready(self, container: str, what: str, deadline: float) -> None:
        """Until Docker reports ``container`` healthy (or, without a HEALTHCHECK, running for
        ``stable_seconds`` without a restart); raise with Docker's words when it dies or turns
        unhealthy, or when ``deadline`` (time.monotonic()) passes."""
        info = self._inspect(container)
        has_check = _has_healthcheck(info)
        running_since = None
        while True:
            state = info["State"]
            if info.get("RestartCount") or state["Status"] in ("exited", "dead") or state.get("Restarting"):
                raise _NotReady(f"{what} {_describe_state(info)}", self._logs(container))
            health = (state.get("Health") or {}).get("Status")
            if has_check and health == "healthy":
                return
            if has_check and health == "unhealthy":
                raise _NotReady(f"{what} turned unhealthy: {_last_check(state)}", self._logs(container))
            if not has_check and state["Running"]:
                running_since = running_since or time.monotonic()
                if time.monotonic() - running_since >= self.stable_seconds:
                    return
            if time.monotonic() >= deadline:
                status = f"health {health}, {_last_check(state)}" if has_check else state["Status"]
                raise _NotReady(f"{what} was not ready by the deadline ({status})", self._logs(container))
            time.sleep(self.poll_seconds)
            info = self._inspect(container)

    def _logs(self, container: str) -> str:
        try:
            text = self.api.logs(container, tail=self.log_lines).decode(errors="replace").strip()
        except docker.errors.APIError:
            return ""
        return f"; last log lines:\n{text}" if text else "; it logged nothing"

    # --- Docker calls -----------------------------------------------------------------------------

    def _create(self, spec: ContainerSpec, image: str, name: str, *, publish: bool, with_aliases: bool,
                extra_aliases: tuple[str, ...] = ()) -> str:
        body = spec.create_body(image, publish=publish, with_aliases=with_aliases, extra_aliases=extra_aliases)
        # Until it has proved itself a crash must show as an exit (with its code), not as a restart loop;
        # the deploy gives it the target's restart policy once it serves.
        body["HostConfig"]["RestartPolicy"] = dict(_NO_RESTART)
        try:
            container = self.api.create_container_from_config(body, name=name)["Id"]
        except docker.errors.APIError as exc:
            raise DeployError(f"cannot create container {name} from {image}: {_explain(exc)}") from None
        try:
            for endpoint in spec.extra_endpoints:
                settings = endpoint.settings(extra_aliases, with_aliases)
                self.api.connect_container_to_network(
                    container, endpoint.network, aliases=settings.get("Aliases"), links=settings.get("Links"),
                    driver_opt=settings.get("DriverOpts"))
        except docker.errors.APIError as exc:
            self._remove(container)
            raise DeployError(f"cannot connect {name} to its networks: {_explain(exc)}") from None
        return container

    def _start(self, container: str, name: str, image: str) -> None:
        try:
            self.api.start(container)
        except docker.errors.APIError as exc:
            raise DeployError(f"container {name} ({_short(image)}) did not start: {_explain(exc)}") from None

    def _ensure_image(self, image: str) -> None:
        """Pull ``image`` unless the Engine has it already (a digest names one image for good)."""
        try:
            self.api.inspect_image(image)
            return
        except docker.errors.ImageNotFound:
            pass
        log.info("pulling %s", image)
        try:
            for event in self.api.pull(image, stream=True, decode=True):
                if "error" in event:
                    raise DeployError(f"cannot pull {image}: {event['error']}")
        except docker.errors.APIError as exc:
            raise DeployError(f"cannot pull {image}: {_explain(exc)}") from None

    def _runs(self, container: dict, image: str) -> bool:
        """Whether ``container`` was created from ``image``: the same digest, or the same image id."""
        current = digest_of(container["Config"]["Image"])
        if current and current == digest_of(image):
            return True
        try:
            return container["Image"] == self.api.inspect_image(image)["Id"]
        except docker.errors.ImageNotFound:
            return False

    def _image_config(self, container: dict, name: str) -> dict:
        try:
            return self.api.inspect_image(container["Image"])["Config"] or {}
        except docker.errors.ImageNotFound:
            raise DeployError(
                f"the image of container {name!r} ({container['Image']}) is no longer on this host: without it "
                f"the container's own settings cannot be told from the image's defaults; pull "
                f"{container['Config']['Image']} again"
            ) from None

    def _inspect(self, name: str) -> dict:
        info = self._inspect_optional(name)
        if info is None:
            hint = ""
            leftovers = [n for n in (name + NEXT, name + PREVIOUS) if self._inspect_optional(n)]
            if leftovers:
                hint = f" ({' and '.join(leftovers)} exist: an interrupted deploy? rename one back to {name})"
            raise DeployError(f"Docker container {name!r} does not exist{hint}")
        return info

    def _inspect_optional(self, name: str) -> dict | None:
        try:
            return self.api.inspect_container(name)
        except docker.errors.NotFound:
            return None

    def _remove_if_present(self, name: str) -> None:
        if self._inspect_optional(name) is not None:
            log.info("removing the leftover container %s", name)
            self._remove(name)

    def _remove(self, container: str) -> None:
        try:
            self.api.remove_container(container, force=True)
        except docker.errors.NotFound:
            pass


def _explain(exc) -> str:
    return getattr(exc, "explanation", None) or str(exc)


def _short(image: str) -> str:
    digest = digest_of(image)
    return digest[:19] if digest else image


def _restart_policy(info: dict) -> dict:
    return (info.get("HostConfig") or {}).get("RestartPolicy") or dict(_NO_RESTART)


def _has_healthcheck(info: dict) -> bool:
    test = ((info.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
    return bool(test) and test[0] != "NONE"


def _last_check(state: dict) -> str:
    checks = (state.get("Health") or {}).get("Log") or []
    if not checks:
        return "no health check has run yet"
    last = checks[-1]
    lines = [line for line in (last.get("Output") or "").splitlines() if line.strip()]
    output = " / ".join(lines[-_CHECK_LINES:]) if lines else "no output"  # a traceback ends in its message
    return f"health check exited {last.get('ExitCode')}: {'... ' if len(lines) > _CHECK_LINES else ''}{output}"


def _describe_state(info: dict) -> str:
    """What Docker says about a container that is not (or no longer) running as it should."""
    state = info["State"]
    if state["Status"] in ("exited", "dead"):
        text = f"exited with code {state.get('ExitCode')}"
    elif state.get("Restarting"):
        text = f"exited with code {state.get('ExitCode')} and Docker is restarting it (its restart policy)"
    elif info.get("RestartCount"):
        text = f"crashed and was restarted {info['RestartCount']} time(s) by Docker (its restart policy)"
    else:
        text = f"is {state['Status']}"
    if state.get("OOMKilled"):
        text += ", killed for lack of memory"
    if state.get("Error"):
        text += f" ({state['Error']})"
    return text

