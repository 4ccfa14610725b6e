"""The requests the proxy changes (Weave's *_interceptor.go), around the relay.

- create: a container of ours (rules.create_decision) gets the wait program as its
  entrypoint, its hostname and domain from its name, the router's DNS; a malformed
  WEAVE_CIDR is refused before Docker sees the request, so no container is left behind;
- start and restart: once Docker has started it, the container is wired (wiring.Wiring)
  before the client hears back; if that fails the container is killed and the client
  gets the reason (its command never ran: the wait program was still waiting);
- inspect (``--rewrite-inspect``): the weave address and MAC in NetworkSettings;
- delete: once Docker has removed it, its attachment is dropped at once.
"""

from __future__ import annotations

import json
import logging
from typing import Protocol
from urllib.parse import parse_qs

from weavenet.proxy import rules
from weavenet.proxy.relay import Interceptor, Reply, Request, Route, error_reply
from weavenet.proxy.rules import Endpoint, Json, RuleError, Skip
from weavenet.proxy.wiring import Wiring, WiringError, attached

log = logging.getLogger("weavenet.proxy")


class Docker(Protocol):
    """What the proxy asks the real daemon itself (service.ProxyDocker)."""

    async def inspect_container(self, ident: str) -> Json | None: ...

    async def inspect_image(self, name: str) -> Json | None: ...

    async def kill(self, ident: str) -> None: ...


def _json_body(reply: Reply) -> Json | None:
    try:
        data = reply.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _with_body(reply: Reply, body: Json) -> Reply:
    return Reply(reply.status, reply.headers, json.dumps(body).encode(), reply.reason)


class _Passive:
    async def on_request(self, req: Request, body: bytes) -> bytes | Reply:
        return body

    async def on_response(self, req: Request, reply: Reply) -> Reply:
        return reply


class CreateInterceptor(_Passive):
    def __init__(self, docker: Docker, wiring: Wiring) -> None:
        self.docker = docker
        self.wiring = wiring

    async def on_request(self, req: Request, body: bytes) -> bytes | Reply:
        try:
            data = json.loads(body or b"null")
        except ValueError:
            return body  # Docker says what is wrong with it
        try:
            return await self._rewrite(req, data) or body
        except RuleError as exc:
            log.info("proxy: refusing to create a container: %s", exc)
            return error_reply(exc.status, str(exc))

    async def _rewrite(self, req: Request, data: Json) -> bytes | Reply | None:
        settings = self.wiring.settings
        decision = rules.create_decision(data, settings.no_default_ipalloc)
        if isinstance(decision, Skip):
            log.info("Leaving container alone because %s", decision.reason)
            return None
        name = (parse_qs(req.query).get("name") or [""])[0]
        hostname = rules.container_hostname(name, data.get("Labels"), settings)
        image_config = None
        if rules.needs_image(data):
            image = str(data.get("Image") or "")
            found = await self.docker.inspect_image(image)
            if found is None:
                return error_reply(404, f"No such image: {image}")
            image_config = found.get("Config") or {}
        servers = await self.wiring.dns_servers(decision)
        body = rules.rewrite_create(data, hostname, image_config, servers, settings)
        return json.dumps(body).encode()


class StartInterceptor(_Passive):
    def __init__(self, docker: Docker, wiring: Wiring) -> None:
        self.docker = docker
        self.wiring = wiring

    async def on_response(self, req: Request, reply: Reply) -> Reply:
        if not 200 <= reply.status < 300:
            return reply  # Docker did not start it (304: it was running already)
        info = await self.docker.inspect_container(rules.container_in_path(req.path))
        if info is None:
            return reply
        ident = str(info.get("Id"))
        try:
            await self.wiring.attach(info)
        except WiringError as exc:
            if not await self._still_running(ident):  # its command ran and ended meanwhile
                log.info("proxy: container %s ended while being attached (%s)", ident[:12], exc)
                await self.wiring.abandon(ident)
                return reply
            log.error("proxy: cannot attach container %s: %s", ident, exc)
            await self.docker.kill(ident)
            return error_reply(500, f"weave: cannot attach the container: {exc}")
        return reply

    async def _still_running(self, ident: str) -> bool:
        info = await self.docker.inspect_container(ident)
        return info is not None and bool((info.get("State") or {}).get("Running"))


class InspectInterceptor(_Passive):
    def __init__(self, wiring: Wiring) -> None:
        self.wiring = wiring

    async def on_response(self, req: Request, reply: Reply) -> Reply:
        info = _json_body(reply) if reply.status == 200 else None
        if info is None:
            return reply
        record = attached(self.wiring.attacher, str(info.get("Id")))
        if record is None:
            return reply
        cidrs = [rules.Cidr(c) for c in record.get("cidrs", [])]
        return _with_body(reply, rules.rewrite_inspect(info, cidrs, record.get("mac")))


class DeleteInterceptor(_Passive):
    def __init__(self, docker: Docker, wiring: Wiring) -> None:
        self.docker = docker
        self.wiring = wiring
        self.ident: str | None = None

    async def on_request(self, req: Request, body: bytes) -> bytes | Reply:
        info = await self.docker.inspect_container(rules.container_in_path(req.path))
        self.ident = None if info is None else str(info.get("Id"))
        return body

    async def on_response(self, req: Request, reply: Reply) -> Reply:
        if 200 <= reply.status < 300 and self.ident:
            await self.wiring.forget(self.ident)
        return reply


def router(docker: Docker, wiring: Wiring) -> Route:
    """The relay's Route: a fresh interceptor per request that is ours."""

    def route(req: Request) -> Interceptor | None:
        endpoint = rules.classify(req.method, req.path)
        if endpoint is Endpoint.CREATE:
            return CreateInterceptor(docker, wiring)
        if endpoint is Endpoint.START:
            return StartInterceptor(docker, wiring)
        if endpoint is Endpoint.INSPECT and wiring.settings.rewrite_inspect:
            return InspectInterceptor(wiring)
        if endpoint is Endpoint.DELETE:
            return DeleteInterceptor(docker, wiring)
        return None

    return route
