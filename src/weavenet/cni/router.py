"""The plugins' calls to the router's HTTP API (``cni.http``), as CNI errors.

Allocations are bounded: after ``timeout`` seconds we hang up (the router cancels the
request) and answer TRY_AGAIN_LATER with the router's IPAM status, which says what the
ring waits for (e.g. "awaiting consensus (quorum: 2, known: 1) - ...; peers not connected
yet: 10.0.0.2:6783 (connecting: ...)").
"""

from __future__ import annotations

import ipaddress
import json
import os
from typing import Any
from urllib.parse import quote

from weavenet.cni.errors import (
    IPAM_DISABLED,
    KERNEL_ERROR,
    ROUTER_ERROR,
    TRY_AGAIN_LATER,
    CniError,
)
from weavenet.cni.http import DEFAULT_HTTP_ADDR, HttpError, NotRunning, request
from weavenet.cni.trace import current

Cidr = ipaddress.IPv4Interface
EXPOSE_IDENT = "weave:expose"
CALL_TIMEOUT = 10.0
KERNEL_TIMEOUT = 30.0
CANCELLED = "cancelled"


class TimedOut(Exception):
    pass


def _route(path: str) -> str:
    """The route of `path`, without the container id and addresses (for the trace)."""
    parts = path.split("?")[0].split("/")
    return "/".join(parts[:3]) if parts[1] == "cni-kernel" else f"/{parts[1]}/..."


def _path(ident: str, cidr: Cidr | ipaddress.IPv4Network | None = None) -> str:
    path = f"/ip/{quote(ident, safe=':')}"
    if isinstance(cidr, ipaddress.IPv4Network):
        return f"{path}/{cidr.network_address}/{cidr.prefixlen}"
    return path if cidr is None else f"{path}/{cidr.ip}/{cidr.network.prefixlen}"


class Router:
    def __init__(self, addr: str | None = None) -> None:
        self.addr = addr or os.environ.get("WEAVE_HTTP_ADDR") or DEFAULT_HTTP_ADDR

    def call(
        self,
        method: str,
        path: str,
        timeout: float = CALL_TIMEOUT,
        form: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        with current().phase(f"{method} {_route(path)}") as extra:
            code, body = self._call(method, path, timeout, form)
            extra["code"] = code
        return code, body

    def _call(
        self, method: str, path: str, timeout: float, form: dict[str, str] | None
    ) -> tuple[int, str]:
        try:
            return request(self.addr, method, path, timeout, form)
        except NotRunning as exc:
            raise CniError(TRY_AGAIN_LATER, str(exc)) from None
        except HttpError as exc:
            if exc.timed_out:
                raise TimedOut(str(exc)) from None
            raise CniError(TRY_AGAIN_LATER, f"{exc}: is it overloaded? try again") from None

    def _ok(self, method: str, path: str, what: str, timeout: float = CALL_TIMEOUT) -> str:
        try:
            code, body = self.call(method, path, timeout)
        except TimedOut as exc:
            raise CniError(TRY_AGAIN_LATER, f"{what}: {exc}") from None
        if code == 404 and path.startswith("/ip"):
            raise CniError(IPAM_DISABLED, _NO_IPAM)
        if not 200 <= code < 300:
            raise CniError(ROUTER_ERROR, f"{what}: the router answered {code}: {body.strip()}")
        return body

    def ipam_status(self) -> str:
        from weavenet.cli.ipam_client import ipam_status  # reads GET /report

        return ipam_status()

    def _waiting(self, method: str, path: str, ident: str, timeout: float) -> str:
        """A request that may block on the ring: bounded by `timeout`."""
        try:
            code, body = self.call(method, path, timeout)
        except TimedOut:
            status = self.ipam_status()
            raise CniError(
                TRY_AGAIN_LATER,
                f"weave IPAM gave no address to {ident} within {timeout:g}s: {status}. "
                "The peers must connect and agree on the ring: see 'weave status ipam' and "
                "'weave status connections' (or 'weave prime'); the runtime will retry",
            ) from None
        if code == 404:
            raise CniError(IPAM_DISABLED, _NO_IPAM)
        if not 200 <= code < 300:
            raise CniError(ROUTER_ERROR, f"weave IPAM refused {ident}: {body.strip()}")
        if body.strip() == CANCELLED:
            raise CniError(
                TRY_AGAIN_LATER,
                f"the router cancelled the allocation for {ident} (is it stopping?): try again",
            )
        return body.strip()

    def allocate(self, ident: str, subnet: ipaddress.IPv4Network | None, timeout: float) -> Cidr:
        body = self._waiting("POST", _path(ident, subnet), ident, timeout)
        try:
            return Cidr(body)
        except ValueError:
            raise CniError(ROUTER_ERROR, f"the router allocated {body!r}, not an address") from None

    def claim(self, ident: str, cidr: Cidr, timeout: float) -> None:
        self._waiting("PUT", _path(ident, cidr), ident, timeout)

    def lookup(self, ident: str) -> list[Cidr]:
        body = self._ok("GET", _path(ident), f"look up the addresses of {ident}")
        return [Cidr(text) for text in body.split()]

    def release(self, ident: str) -> None:
        code, body = self.call_plain("DELETE", _path(ident))
        if code == 404 or 200 <= code < 300 or "no addresses" in body:
            return
        raise CniError(ROUTER_ERROR, f"weave IPAM did not free {ident}: {body.strip()}")

    def call_plain(self, method: str, path: str) -> tuple[int, str]:
        try:
            return self.call(method, path)
        except TimedOut as exc:
            raise CniError(TRY_AGAIN_LATER, str(exc)) from None

    def register(self, ident: str, netns: str, ifname: str) -> None:
        """Tell the router this container came through CNI (for the missed-DEL GC)."""
        query = f"?netns={quote(netns, safe='')}&ifname={quote(ifname, safe='')}"
        code, body = self.call_plain("PUT", f"/cni/{quote(ident, safe='')}{query}")
        if code != 404 and not 200 <= code < 300:  # 404: a router without the GC
            raise CniError(ROUTER_ERROR, f"the router did not record {ident}: {body.strip()}")

    def unregister(self, ident: str) -> None:
        self.call_plain("DELETE", f"/cni/{quote(ident, safe='')}")

    def kernel(self, operation: str, what: str, **req: Any) -> dict[str, Any]:
        """Have the router do netlink work for us (io.cni_kernel), in our namespaces."""
        form = {"json": json.dumps({**req, "pid": os.getpid()})}
        try:
            code, body = self.call("POST", f"/cni-kernel/{operation}", KERNEL_TIMEOUT, form)
        except TimedOut as exc:
            raise CniError(TRY_AGAIN_LATER, f"{what}: {exc}") from None
        if code == 404:
            raise CniError(
                ROUTER_ERROR,
                f"{what}: the router has no bridge to attach to "
                "(launched with --no-bridge?): relaunch it with 'weave launch'",
            )
        try:
            answer = json.loads(body)
        except ValueError:
            answer = {"error": body.strip()}
        if code != 200:
            kind = KERNEL_ERROR if code == 500 else ROUTER_ERROR
            raise CniError(kind, f"{what}: {answer.get('error', body.strip())}")
        if not isinstance(answer, dict):
            raise CniError(ROUTER_ERROR, f"{what}: the router answered {body!r:.100}")
        current().annotate(router=answer.pop("timing", None))
        return answer

    def expose(self, cidr: Cidr) -> None:
        self._ok("POST", f"/expose/{cidr.ip}/{cidr.network.prefixlen}", f"expose {cidr}")


_NO_IPAM = (
    "IP address allocation is disabled in the weave router (launched with --ipalloc-range ''):"
    " relaunch it with a range, or give the addresses in the config's ipam.addresses"
)
