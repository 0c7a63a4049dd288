#!/usr/bin/env python3
"""The lab's edge proxy: publishes Swarm services on fixed ports without the routing mesh.

Swarm's ingress routing mesh needs IPVS, which many kernels (VMs, sandboxes) lack. The lab's
services therefore run with `--endpoint-mode dnsrr` on the overlay network `patchpipe-lab`, and this
proxy (a container on that network, ports published to 127.0.0.1) forwards each connection to a
task of its service. Swarm adds a task to the service's DNS name only once it is healthy and drops
it before stopping it, so start-first updates and rollbacks switch traffic without downtime.

LAB_ROUTES="18080=demo-web-production:8080 18081=demo-web-staging:8080 ..." (listen port=service:port)
"""
import asyncio
import os
import random
import socket
import sys

CONNECT_TIMEOUT = 2.0
NO_BACKEND = (
    "HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
    "lab proxy: no healthy task of {service} (docker service ps {service})\n"
)


def parse_routes(text):
    routes = []
    for item in text.split():
        listen, _, target = item.partition("=")
        service, _, port = target.partition(":")
        if not (listen.isdigit() and service and port.isdigit()):
            sys.exit(f"lab proxy: bad route {item!r} in LAB_ROUTES; expected LISTEN=SERVICE:PORT")
        routes.append((int(listen), service, int(port)))
    if not routes:
        sys.exit("lab proxy: LAB_ROUTES is empty; expected e.g. 18080=demo-web-production:8080")
    return routes


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


async def open_backend(service, port):
    """Connect to one healthy task of the service (its DNS name lists only those), or None."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(service, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return None
    addresses = list({info[4][0] for info in infos})
    random.shuffle(addresses)
    for address in addresses:
        try:
            return await asyncio.wait_for(asyncio.open_connection(address, port), CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError):
            continue
    return None


def handler(service, port):
    async def handle(client_reader, client_writer):
        backend = await open_backend(service, port)
        if backend is None:
            client_writer.write(NO_BACKEND.format(service=service).encode())
            await client_writer.drain()
            client_writer.close()
            return
        backend_reader, backend_writer = backend
        await asyncio.gather(pipe(client_reader, backend_writer), pipe(backend_reader, client_writer))
        backend_writer.close()
        client_writer.close()
    return handle


async def main():
    routes = parse_routes(os.environ.get("LAB_ROUTES", ""))
    servers = [await asyncio.start_server(handler(service, port), "0.0.0.0", listen)
               for listen, service, port in routes]
    for listen, service, port in routes:
        print(f"lab proxy: :{listen} -> {service}:{port}", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
