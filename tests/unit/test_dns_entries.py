"""The WeaveDNS entry CRDT (Go nameserver/entry.go rules)."""

from __future__ import annotations

from weavenet.core.dns.entries import TOMBSTONE_TIMEOUT, Entries, Entry, merge_entry

A = 0xAABBCCDDEEFF
B = 0x020000000001
IP1, IP2 = 0x0A200001, 0x0A200002


def test_add_inserts_a_live_entry_at_version_zero() -> None:
    es = Entries()
    e = es.add("web.weave.local.", "c1", A, IP1)
    assert (e.version, e.tombstone) == (0, 0)
    assert es.lookup("web.weave.local.") == (IP1,)


def test_add_of_a_live_entry_changes_nothing() -> None:
    es = Entries()
    first = es.add("web.weave.local.", "c1", A, IP1)
    assert es.add("web.weave.local.", "c1", A, IP1) == first
    assert len(es) == 1


def test_add_brings_a_tombstone_back_one_version_up() -> None:
    es = Entries()
    es.add("web.weave.local.", "c1", A, IP1)
    [dead] = es.tombstone(A, lambda e: True, now=1000)
    assert (dead.version, dead.tombstone) == (1, 1000)
    assert es.lookup("web.weave.local.") == ()
    back = es.add("web.weave.local.", "c1", A, IP1)
    assert (back.version, back.tombstone) == (2, 0)
    assert es.lookup("web.weave.local.") == (IP1,)


def test_tombstone_touches_only_the_given_origin() -> None:
    es = Entries()
    es.merge([Entry("c2", B, IP2, "web.weave.local.")])
    es.add("web.weave.local.", "c1", A, IP1)
    done = es.tombstone(A, lambda e: True, now=5)
    assert [e.origin for e in done] == [A]
    assert es.lookup("web.weave.local.") == (IP2,)


def test_tombstoning_twice_does_not_bump_the_version_again() -> None:
    es = Entries()
    es.add("web.weave.local.", "c1", A, IP1)
    es.tombstone(A, lambda e: True, now=5)
    assert es.tombstone(A, lambda e: True, now=6) == []


def test_merge_higher_version_wins_and_is_reported_new() -> None:
    es = Entries()
    es.merge([Entry("c1", A, IP1, "web.weave.local.", 3, 0)])
    assert es.merge([Entry("c1", A, IP1, "web.weave.local.", 2, 99)]) == []
    newer = Entry("c1", A, IP1, "web.weave.local.", 4, 77)
    assert es.merge([newer]) == [newer]
    assert es.get(newer.key) == newer


def test_merge_equal_version_larger_tombstone_wins() -> None:
    live = Entry("c1", A, IP1, "web.weave.local.", 1, 0)
    dead = Entry("c1", A, IP1, "web.weave.local.", 1, 50)
    assert merge_entry(live, dead) == dead
    assert merge_entry(dead, live) == dead


def test_names_are_case_insensitive_but_stored_as_given() -> None:
    es = Entries()
    es.add("Web.Weave.Local.", "c1", A, IP1)
    assert es.lookup("WEB.weave.LOCAL.") == (IP1,)
    assert es.reverse(IP1) == "Web.Weave.Local."


def test_lookup_gives_distinct_addresses_in_storage_order() -> None:
    es = Entries()
    es.add("web.weave.local.", "c2", A, IP2)
    es.add("web.weave.local.", "c1", A, IP1)
    es.add("web.weave.local.", "c3", A, IP1)  # same address, another container
    assert es.lookup("web.weave.local.") == (IP1, IP2)  # by container: c1 (IP1), c2 (IP2), c3


def test_reverse_lookup_skips_tombstones() -> None:
    es = Entries()
    es.add("a.weave.local.", "c1", A, IP1)
    es.add("b.weave.local.", "c2", A, IP1)
    assert es.reverse(IP1) == "a.weave.local."
    es.tombstone(A, lambda e: e.container_id == "c1", now=1)
    assert es.reverse(IP1) == "b.weave.local."
    assert es.reverse(IP2) is None


def test_remove_origin_forgets_a_departed_peer_and_accepts_it_back() -> None:
    es = Entries()
    theirs = Entry("c2", B, IP2, "db.weave.local.", 3, 0)
    es.merge([theirs])
    es.add("web.weave.local.", "c1", A, IP1)
    assert es.remove_origin(B) == 1
    assert es.lookup("db.weave.local.") == ()
    assert es.merge([theirs]) == [theirs]
    assert es.lookup("db.weave.local.") == (IP2,)


def test_tombstones_expire_after_thirty_minutes() -> None:
    es = Entries()
    es.add("web.weave.local.", "c1", A, IP1)
    es.add("db.weave.local.", "c2", A, IP2)
    es.tombstone(A, lambda e: e.container_id == "c1", now=1000)
    assert es.oldest_tombstone() == 1000
    assert es.expire_tombstones(now=1000 + TOMBSTONE_TIMEOUT) == 0
    assert es.expire_tombstones(now=1001 + TOMBSTONE_TIMEOUT) == 1
    assert [e.container_id for e in es.sorted()] == ["c2"]
    assert es.oldest_tombstone() is None


def test_sorted_is_gos_case_insensitive_order() -> None:
    es = Entries()
    es.merge(
        [
            Entry("c", B, 1, "b.weave.local."),
            Entry("c", A, 1, "B.weave.local."),
            Entry("c", A, 1, "a.weave.local."),
        ]
    )
    assert [(e.hostname, e.origin) for e in es.sorted()] == [
        ("a.weave.local.", A),
        ("b.weave.local.", B),  # names compare lowercased; then the origin: B < A
        ("B.weave.local.", A),
    ]
