"""WeaveDNS, sans-IO (issue 7; weave-wire.md §10, weave-surface.md §5).

- entries:    the entry CRDT (identity, merge, tombstones, expiry, lookups)
- codec:      gob GossipData of the "nameserver" channel, byte-identical to Go
- nameserver: the channel's Gossiper and the registration API the edge calls
- resolver:   one query in, an answer / a Forward decision / nothing out
- fastpath:   the common A query answered from byte slices (same bytes as resolver)
- library_path: every other query, through dnspython (imported on first use)
- query:      Forward and the other shapes both paths and upstream share
- upstream:   forwarding with timeout and failover, SERVFAIL when all fail
- resolvconf: resolv.conf parsing and when to reread it
- status:     `weave status dns`, the report section and GET /name in Go's shapes

The asyncio shell is weavenet.io.dns_server.
"""
