"""Import a package's submodules without running the package's own ``__init__``.

Two packages every router imports do most of their import work in an ``__init__`` the
router does not need:

* pyroute2's imports every netlink family it has (IPDB, NDB, nl80211, IPVS, WireGuard,
  ...): about half of pyroute2's import time, for code the data plane never uses (it uses
  ``IPRoute`` and ``NetlinkError``);
* aiohttp's imports the client side (the client, its connector, which builds two TLS
  contexts at import, loading the CA bundle): ~0.1 CPU-s, while the router only serves
  (``aiohttp.web``) unless Docker is there (io/docker_api imports the client then).

``lean_package`` installs the package module without executing its ``__init__``; a PEP 562
``__getattr__`` runs the ``__init__`` the first time someone asks for a name only it
defines (``import aiohttp; aiohttp.ClientSession`` anywhere still works), and lets
submodules be imported as usual. ``__version__``, which submodules import from their
package, is read from the ``__init__``'s own first lines.
"""

from __future__ import annotations

import importlib.util
import re
import sys

_VERSION = re.compile(rb'^__version__ = "([^"]+)"', re.M)


def lean_package(name: str) -> None:
    """Make ``name`` a package whose ``__init__`` runs only when one of its names is used."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        raise ImportError(f"{name} is not an installed package")
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader
    version = _declared_version(spec.origin)
    if version is not None:
        module.__dict__["__version__"] = version

    def __getattr__(attr: str) -> object:
        if importlib.util.find_spec(f"{name}.{attr}") is not None:
            raise AttributeError(attr)  # a submodule: the import system loads it
        del module.__dict__["__getattr__"]
        loader.exec_module(module)  # the whole package, once
        return getattr(module, attr)

    module.__dict__["__getattr__"] = __getattr__
    sys.modules[name] = module


def _declared_version(init: str | None) -> str | None:
    """``__version__`` as the package's ``__init__`` declares it near its top, if it does."""
    if init is None:
        return None
    with open(init, "rb") as source:
        found = _VERSION.search(source.read(4096))
    return found.group(1).decode() if found else None
