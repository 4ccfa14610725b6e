"""The proxy imports h11 with its first client connection, not when it is set up."""

from __future__ import annotations

from tests.unit.lazy_probe import run_probe

PROBE = """
import asyncio, os, tempfile
import weavenet.proxy.service
from weavenet.proxy.relay import Relay

DAEMON_REPLY = b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nApi-Version: 1.41\\r\\n\\r\\nOK"

async def daemon(reader, writer):  # answers one request, whatever it is
    await reader.readuntil(b"\\r\\n\\r\\n")
    writer.write(DAEMON_REPLY)
    await writer.drain()
    writer.close()

async def main(tmp):
    daemon_path, proxy_path = os.path.join(tmp, "daemon.sock"), os.path.join(tmp, "proxy.sock")
    fake = await asyncio.start_unix_server(daemon, daemon_path)
    relay = Relay(lambda: asyncio.open_unix_connection(daemon_path), lambda req: None)
    proxy = await asyncio.start_unix_server(relay.serve, proxy_path)
    out["after_setup"] = loaded("h11")
    reader, writer = await asyncio.open_unix_connection(proxy_path)
    writer.write(b"GET /_ping HTTP/1.1\\r\\nHost: docker\\r\\nConnection: close\\r\\n\\r\\n")
    await writer.drain()
    out["reply"] = (await asyncio.wait_for(reader.read(), 60)).decode()
    out["after_request"] = loaded("h11")
    out["exchanges"] = relay.exchanges
    writer.close()
    relay.close()
    for server in (proxy, fake):
        server.close()
        await server.wait_closed()

with tempfile.TemporaryDirectory() as tmp:
    asyncio.run(main(tmp))
"""


def test_h11_is_imported_by_the_first_proxied_request_which_is_answered() -> None:
    out = run_probe(PROBE)
    assert not out["after_setup"]
    assert out["after_request"]
    assert out["reply"].startswith("HTTP/1.1 200 OK\r\n")
    assert "api-version: 1.41" in out["reply"].lower()
    assert out["reply"].endswith("\r\n\r\nOK")
    assert out["exchanges"] == 1
