"""container_spec: a successor's settings from `docker inspect` data, the old image's defaults left out.

The inspect data below is shaped like the Engine's (20.10) answers for the lab's demo-web image run as
`docker run -d --name web -p 127.0.0.1:18555:8080 -e FOO=bar --restart unless-stopped demo/web:1.0`.
"""

from __future__ import annotations

import copy

import pytest

from patchpipe.deploy.base import DeployError
from patchpipe.deploy.container_spec import own_config, pinned_port_bindings, spec_from_inspect

CONTAINER_ID = "786af278a6a831c2a847f097ec3dc2915b3104d40507d142536520bcc77bae00"
HEALTHCHECK = {
    "Test": ["CMD", "python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz')"],
    "Interval": 2_000_000_000, "Timeout": 2_000_000_000, "StartPeriod": 3_000_000_000, "Retries": 3,
}
IMAGE_CONFIG = {
    "ExposedPorts": {"8080/tcp": {}},
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PATCHPIPE_BUILD_ID=",
            "PYTHONUNBUFFERED=1"],
    "Cmd": ["python3", "/app/server.py"],
    "Healthcheck": HEALTHCHECK,
    "Labels": {"org.opencontainers.image.title": "demo-web"},
}
CONTAINER = {
    "Id": CONTAINER_ID,
    "Name": "/web",
    "Image": "sha256:0ead58c52c0a",
    "Config": {
        "Hostname": CONTAINER_ID[:12], "Domainname": "", "User": "", "ExposedPorts": {"8080/tcp": {}},
        "Tty": False, "OpenStdin": False, "StdinOnce": False,
        "Env": ["FOO=bar", *IMAGE_CONFIG["Env"]],
        "Cmd": ["python3", "/app/server.py"], "Healthcheck": HEALTHCHECK,
        "Image": "127.0.0.1:5000/demo/web:1.0", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
        "OnBuild": None, "Labels": {"org.opencontainers.image.title": "demo-web", "team": "web"},
    },
    "HostConfig": {
        "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
        "NetworkMode": "default",
        "PortBindings": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18555"}]},
        "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0}, "AutoRemove": False,
        "PublishAllPorts": False, "Links": None, "Memory": 0,
    },
    "Mounts": [],
    "NetworkSettings": {
        "Ports": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18555"}]},
        "Networks": {"bridge": {"IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": "80a6"}},
    },
}


def container(**changes) -> dict:
    """CONTAINER with nested changes, e.g. container(HostConfig={"AutoRemove": True})."""
    data = copy.deepcopy(CONTAINER)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    return data


def test_only_what_the_user_set_is_carried_over_never_the_old_images_defaults():
    own = own_config(CONTAINER, IMAGE_CONFIG)
    # The new image brings its own PATH, PATCHPIPE_BUILD_ID, CMD, HEALTHCHECK and exposed port.
    assert own == {"Env": ["FOO=bar"], "Labels": {"team": "web"}}


def test_a_user_override_of_an_image_default_is_kept():
    data = container(Config={"Env": ["PATCHPIPE_BUILD_ID=pinned", "PATH=/usr/bin"], "Cmd": ["python3", "-V"],
                             "User": "nobody", "WorkingDir": "/srv", "Hostname": "web01"})
    own = own_config(data, IMAGE_CONFIG)
    assert own["Env"] == ["PATCHPIPE_BUILD_ID=pinned", "PATH=/usr/bin"]
    assert own["Cmd"] == ["python3", "-V"] and "Entrypoint" not in own
    assert (own["User"], own["WorkingDir"], own["Hostname"]) == ("nobody", "/srv", "web01")


def test_an_entrypoint_override_carries_its_command_even_when_empty():
    own = own_config(container(Config={"Entrypoint": ["/bin/sh", "-c"], "Cmd": None}), IMAGE_CONFIG)
    assert own["Entrypoint"] == ["/bin/sh", "-c"] and own["Cmd"] is None


def test_only_the_overridden_fields_of_a_healthcheck_are_carried_over():
    # `--health-interval 5s` alone: Docker fills Test and the rest from the image.
    own = own_config(container(Config={"Healthcheck": {**HEALTHCHECK, "Interval": 5_000_000_000}}), IMAGE_CONFIG)
    assert own["Healthcheck"] == {"Interval": 5_000_000_000}


def test_the_trial_body_has_no_host_ports_and_the_serving_body_takes_them_over():
    spec = spec_from_inspect(CONTAINER, IMAGE_CONFIG)
    trial = spec.create_body("demo/web@sha256:new", publish=False, with_aliases=False)
    serving = spec.create_body("demo/web@sha256:new", publish=True, with_aliases=True)

    assert spec.name == "web" and spec.publishes_ports
    assert trial["Image"] == serving["Image"] == "demo/web@sha256:new"
    assert trial["Env"] == ["FOO=bar"] and "Cmd" not in trial
    assert trial["HostConfig"]["PortBindings"] == {} and "ContainerIDFile" not in trial["HostConfig"]
    assert trial["HostConfig"]["RestartPolicy"] == {"Name": "unless-stopped", "MaximumRetryCount": 0}
    assert serving["HostConfig"]["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18555"}]}
    assert serving["ExposedPorts"] == {"8080/tcp": {}}
    assert trial["NetworkingConfig"] == {"EndpointsConfig": {"bridge": {}}}  # no aliases on the default bridge


def test_random_host_ports_are_pinned_to_the_ones_held_now():
    data = container(
        HostConfig={"PortBindings": {"8080/tcp": [{"HostIp": "", "HostPort": ""}]}, "PublishAllPorts": True},
        NetworkSettings={"Ports": {"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "49153"},
                                                {"HostIp": "::", "HostPort": "49153"}],
                                   "9090/tcp": [{"HostIp": "0.0.0.0", "HostPort": "49154"}]},
                         "Networks": CONTAINER["NetworkSettings"]["Networks"]})
    assert pinned_port_bindings(data) == {"8080/tcp": [{"HostIp": "", "HostPort": "49153"}],
                                          "9090/tcp": [{"HostIp": "", "HostPort": "49154"}]}
    assert spec_from_inspect(data, IMAGE_CONFIG).host_config["PublishAllPorts"] is False


def test_a_stopped_container_keeps_its_configured_bindings():
    stopped = container(NetworkSettings={"Ports": {}, "Networks": {}})
    assert pinned_port_bindings(stopped) == CONTAINER["HostConfig"]["PortBindings"]
    assert not spec_from_inspect(container(HostConfig={"PortBindings": {}}), IMAGE_CONFIG).publishes_ports


def test_user_defined_networks_keep_their_aliases_and_the_first_is_the_network_mode():
    data = container(
        HostConfig={"NetworkMode": "front", "PortBindings": {}},
        NetworkSettings={"Ports": {}, "Networks": {
            "back": {"Aliases": ["786af278a6a8", "web", "api"], "Links": ["/db:/web/database"], "NetworkID": "b"},
            "front": {"Aliases": ["786af278a6a8", "www"], "DriverOpts": {"opt": "1"}, "NetworkID": "f"},
        }})
    spec = spec_from_inspect(data, IMAGE_CONFIG)
    assert [e.network for e in spec.endpoints] == ["front", "back"] and not spec.publishes_ports

    hidden = spec.create_body("img", publish=False, with_aliases=False)
    assert hidden["NetworkingConfig"] == {"EndpointsConfig": {"front": {"DriverOpts": {"opt": "1"}}}}
    shown = spec.create_body("img", publish=True, with_aliases=True, extra_aliases=("web",))
    assert shown["NetworkingConfig"]["EndpointsConfig"]["front"]["Aliases"] == ["www", "web"]
    # The container's own name and short id are Docker's, not aliases to copy.
    back = spec.extra_endpoints[0]
    assert back.aliases == ("api",) and back.settings(("web",)) == {"Aliases": ["api", "web"], "Links": ["db:database"]}


def test_anonymous_volumes_are_mounted_by_name_and_named_ones_left_as_they_are():
    data = container(
        HostConfig={"Binds": ["data:/var/lib/data:rw"]},
        Mounts=[{"Type": "volume", "Name": "data", "Destination": "/var/lib/data", "RW": True},
                {"Type": "volume", "Name": "3f1e9c", "Destination": "/cache", "RW": True},
                {"Type": "volume", "Name": "77aa01", "Destination": "/seed", "RW": False},
                {"Type": "bind", "Source": "/etc/app", "Destination": "/etc/app", "RW": False}])
    binds = spec_from_inspect(data, IMAGE_CONFIG).host_config["Binds"]
    assert binds == ["data:/var/lib/data:rw", "3f1e9c:/cache", "77aa01:/seed:ro"]


def test_legacy_links_are_written_back_in_the_create_form():
    spec = spec_from_inspect(container(HostConfig={"Links": ["/db:/web/database", "/cache:/web/cache"]}), IMAGE_CONFIG)
    assert spec.host_config["Links"] == ["db:database", "cache:cache"]


@pytest.mark.parametrize("changes, words", [
    ({"HostConfig": {"AutoRemove": True}}, "runs with --rm"),
    ({"HostConfig": {"NetworkMode": "host"}}, "uses --network host"),
    ({"HostConfig": {"NetworkMode": "container:db"}}, "uses --network container:db"),
    ({"NetworkSettings": {"Networks": {"front": {"IPAMConfig": {"IPv4Address": "10.0.0.5"}}}}},
     "static address on network 'front'"),
])
def test_containers_that_cannot_run_twice_side_by_side_are_refused_by_name(changes, words):
    with pytest.raises(DeployError, match=f"container 'web' .*{words}"):
        spec_from_inspect(container(**changes), IMAGE_CONFIG)
