"""The Docker API proxy (``weaver --proxy``, Weave's ``proxy/``): a Docker API endpoint in
front of the real daemon that wires containers to weave as they start.

- ``rules``: pure decisions (which requests are ours, WEAVE_CIDR, hostnames, the create
  rewrite, /etc/hosts, the inspect rewrite);
- ``relay``: HTTP/1.1 relaying over asyncio streams, hijacked streams included; its
  engine ``http1`` (h11) is imported with the first client connection;
- ``intercept``: what create, start/restart, inspect and delete do around the relay;
- ``wiring``: allocating, attaching and naming a started container through the router's
  public interfaces (IPAM, the attachments, the DNS listeners);
- ``weavewait``: the wait program bind-mounted at /w (the container's command starts only
  once ``ethwe`` is up);
- ``service``: listening on the -H addresses and the start-up scan.
"""
