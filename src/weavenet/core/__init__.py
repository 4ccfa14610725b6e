"""The pure core: protocol and state logic with no I/O.

Nothing under ``weavenet.core`` may import asyncio, socket, subprocess, threading or
pyroute2, nor read the clock or the global random generator: time arrives as ``now``
and randomness as an ``rng`` parameter.
"""
