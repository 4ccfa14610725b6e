"""Overlays: forwarding shared by all of them, the sleeve and the fast datapath."""
