"""Import a package's submodules without running the package's own ``__init__``.

pyroute2's ``__init__`` imports every netlink family it has (IPDB, NDB, nl80211, IPVS,
WireGuard, ...): about half of pyroute2's import time, most of it for code the data plane
never uses (it uses ``IPRoute`` and ``NetlinkError``), and it is paid by every router at
start. ``lean_package`` installs the package module without executing its ``__init__``;
a PEP 562 ``__getattr__`` runs the ``__init__`` the first time someone asks for a name only
it defines (``from pyroute2 import NDB`` anywhere still works), and lets submodules be
imported as usual.
"""

from __future__ import annotations

import importlib.util
import sys


def lean_package(name: str) -> None:
    """Make ``name`` a package whose ``__init__`` runs only when one of its names is used."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        raise ImportError(f"{name} is not an installed package")
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def __getattr__(attr: str) -> object:
        if importlib.util.find_spec(f"{name}.{attr}") is not None:
            raise AttributeError(attr)  # a submodule: the import system loads it
        del module.__dict__["__getattr__"]
        loader.exec_module(module)  # the whole package, once
        return getattr(module, attr)

    module.__dict__["__getattr__"] = __getattr__
    sys.modules[name] = module
