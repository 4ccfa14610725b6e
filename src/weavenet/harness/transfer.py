"""A TCP transfer between two namespaces whose integrity is checked end to end."""

from __future__ import annotations

import subprocess
import sys

from weavenet.harness.netns import Netns

PORT = 5201

_SERVER = (
    "import hashlib,socket,sys;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,"
    "socket.SO_REUSEADDR,1);s.bind(('0.0.0.0',int(sys.argv[1])));s.listen(1)\n"
    "print('ready',flush=True)\n"
    "s.settimeout(float(sys.argv[2]));c,_=s.accept();c.settimeout(float(sys.argv[2]))\n"
    "h=hashlib.sha256();n=0\n"
    "while True:\n d=c.recv(1<<16)\n if not d: break\n h.update(d);n+=len(d)\n"
    "print(n,h.hexdigest())"
)
_CLIENT = (
    "import hashlib,os,socket,sys;n=int(sys.argv[3]);fill=bytes.fromhex(sys.argv[4])\n"
    "data=(fill*(n//len(fill)+1))[:n] if fill else os.urandom(n)\n"
    "print(hashlib.sha256(data).hexdigest(),flush=True)\n"
    "s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=float(sys.argv[5]))\n"
    "s.sendall(data);s.close()"
)


def tcp_transfer(
    src: Netns, dst: Netns, dst_ip: str, size: int, fill: bytes = b"", timeout: float = 180.0
) -> None:
    """Send `size` bytes (random, or `fill` repeated) from `src` to a listener in `dst`
    at `dst_ip`; AssertionError unless the listener got exactly the bytes sent (count and
    SHA-256)."""
    argv = dst.exec_argv([sys.executable, "-c", _SERVER, str(PORT), str(timeout)])
    listener = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == "ready", "listener did not start"
        client = [sys.executable, "-c", _CLIENT, dst_ip, str(PORT), str(size), fill.hex()]
        sent = src.run([*client, str(timeout)], timeout=timeout)
        out, _ = listener.communicate(timeout=timeout)
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    assert out.split() == [str(size), sent.stdout.split()[0]], (out, sent.stdout)
