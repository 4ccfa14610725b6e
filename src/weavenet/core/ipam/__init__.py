"""IP address management: the ring CRDT, our free space, Paxos and the allocator (Go ipam/)."""
