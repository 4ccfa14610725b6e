"""The CNI plugins ``weave-net`` and ``weave-ipam`` (CNI spec 1.0.0; README, "CNI").

They run once per container operation, so this package imports only the standard library
at start-up; the data plane (pyroute2) is imported by the commands that touch the kernel.
"""
