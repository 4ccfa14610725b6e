"""CNI error objects: ``{"cniVersion", "code", "msg", "details"}`` on stdout, exit 1.

Codes 1-99 are the spec's; 100 and up are ours. Every message says what to do next.
"""

from __future__ import annotations

import json
from typing import TextIO

INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENV = 4
IO_FAILURE = 5
DECODING_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
# ours
ROUTER_ERROR = 100  # the router refused a request (its reason is in msg)
IPAM_DISABLED = 101  # the router runs without IP address allocation
KERNEL_ERROR = 102  # creating the interface, its addresses or routes failed
CHECK_FAILED = 103  # CHECK found the attachment different from the result
DELEGATE_FAILED = 104  # the IPAM plugin we ran failed or answered nonsense


class CniError(Exception):
    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details

    def to_json(self, cni_version: str) -> dict[str, object]:
        body: dict[str, object] = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            body["details"] = self.details
        return body

    def write(self, out: TextIO, cni_version: str) -> None:
        out.write(json.dumps(self.to_json(cni_version)) + "\n")
        out.flush()
