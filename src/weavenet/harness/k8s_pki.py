"""Credentials for the test cluster: a CA, the API server's serving certificate, the
service-account key pair (openssl), a static token file and kubeconfigs."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import msgspec

from weavenet.harness.util import run_cmd

SERVICE_IP = "10.96.0.1"


class Pki(msgspec.Struct):
    """Everything lives under `dir`; `tokens` maps user name to bearer token."""

    dir: Path
    api_ip: str
    tokens: dict[str, str] = msgspec.field(default_factory=dict)

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def token_file(self) -> Path:
        return self.dir / "tokens.csv"

    def create(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._openssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=weavenet-test-ca",
        )
        self._serving_cert()
        self._openssl("genrsa", "-out", "sa.key", "2048")
        self._openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")
        self.add_token("admin", "system:masters")

    def _openssl(self, *args: str) -> None:
        """openssl ARGS, where an argument naming a file of ours (``*.key`` ...) is under dir."""
        files = (".key", ".crt", ".csr", ".pub", ".srl")
        argv = [str(self.dir / a) if a.endswith(files) and "/" not in a else a for a in args]
        run_cmd(["openssl", *argv])

    def _serving_cert(self) -> None:
        sans = [
            f"IP:{self.api_ip}",
            "IP:127.0.0.1",
            f"IP:{SERVICE_IP}",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:localhost",
        ]
        ext = self.dir / "san.ext"
        ext.write_text(f"subjectAltName={','.join(sans)}\nextendedKeyUsage=serverAuth\n")
        self._openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "apiserver.key",
            "-out",
            "apiserver.csr",
            "-subj",
            "/CN=kube-apiserver",
        )
        self._openssl(
            "x509",
            "-req",
            "-in",
            "apiserver.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "apiserver.crt",
            "-extfile",
            str(ext),
        )

    def add_token(self, user: str, *groups: str) -> str:
        """Register a bearer token for `user` (call before the API server starts)."""
        token = secrets.token_hex(16)
        self.tokens[user] = token
        group_field = f',"{",".join(groups)}"' if groups else ""
        with self.token_file.open("a") as fh:
            fh.write(f"{token},{user},{user}{group_field}\n")
        return token

    def kubeconfig(self, path: Path, server: str, token: str) -> Path:
        """A kubeconfig for `server` authenticating with `token` (JSON is valid YAML)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "t", "cluster": {"server": server, "certificate-authority": str(self.ca)}}
            ],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": "c", "context": {"cluster": "t", "user": "u"}}],
            "current-context": "c",
        }
        path.write_text(json.dumps(config, indent=1))
        return path
