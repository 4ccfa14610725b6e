"""The MAC cache's generation: it moves exactly when an owner changes, so fastdp can pin
a new MAC at once and skip planning when nothing changed."""

from __future__ import annotations

from weavenet.core.overlay.mac_cache import MAC_MAX_AGE, MacCache

M1, M2 = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"
A, B = 0xA, 0xB


def test_generation_moves_on_add_move_and_removal_only() -> None:
    cache = MacCache()
    start = cache.generation
    cache.learn(M1, A, 0.0)
    assert cache.generation == start + 1
    cache.learn(M1, A, MAC_MAX_AGE)  # a refresh: same owner
    cache.learn(M1, B, MAC_MAX_AGE)  # a conflict without force: nothing changes
    assert cache.generation == start + 1
    cache.learn(M1, B, MAC_MAX_AGE, force=True)
    assert cache.generation == start + 2
    cache.learn(M2, A, MAC_MAX_AGE)
    assert cache.forget_peer(A) == [M2]
    assert cache.generation == start + 4
    assert cache.forget_peer(A) == []
    assert cache.expire(MAC_MAX_AGE * 2) == []
    assert cache.generation == start + 4
    assert cache.expire(MAC_MAX_AGE * 3) == [M1]
    assert cache.generation == start + 5
