"""Benchmark: local search (docs/architecture.md §5.11).

1. Query latency over 100,000 cached messages of realistic text (500 conversations, a Zipf
   vocabulary with names, numbers and accented words): every keystroke of 300 queries typed one
   character at a time ("d", "de", "dep", … "deploy f", "deploy fr", …), each a full
   ``Client.search`` (titles + 50 newest messages + match ranges). Target: p99 <= 30 ms.
2. Index cost per applied change: the same 100,000 ``message.created`` changes applied in
   batches of 500 with the search triggers and without them (dropped), µs per change side by
   side; plus a full rebuild of the index and the file sizes.

    python tests/bench/search.py [messages]
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

from core import protocol as p  # noqa: E402
from core.events import ClientEvents  # noqa: E402
from core.read_model import ReadModel  # noqa: E402
from core.search import Search  # noqa: E402
from core.store import LocalStore  # noqa: E402

EPOCH = 1
CONVERSATIONS = 500
BATCH = 500
QUERIES = 300
TARGET_P99_MS = 30.0

STEMS = (
    "deploy release build test review merge branch commit ticket sprint meeting lunch coffee "
    "design api server client cache search index query latency bug fix patch roadmap budget "
    "invoice customer support launch marketing draft slide deck report metric dashboard alert "
    "incident outage database migration schema backup restore token login password account "
    "friday monday tomorrow today tonight weekend morning afternoon deadline schedule calendar "
    "café résumé naïve crème brûlée déjà façade über straße jalapeño piñata"
).split()
NAMES = "alice bob carol dave erin frank grace heidi ivan judy mallory oscar peggy trent".split()
FILLER = (
    "the a to and of is in it for on that this with we i you be can will are just let me "
    "know please thanks ok sure maybe think need should could would have has was were"
).split()


def vocabulary(rng: random.Random) -> list[str]:
    """~3,000 words: the stems, their inflections and made-up project names."""
    words = list(STEMS) + list(NAMES) + list(FILLER)
    for stem in STEMS:
        words += [stem + "s", stem + "ed", stem + "ing", "re" + stem]
    syllables = "ka lo mi ne pu ra si to ve zu an el or ix".split()
    while len(words) < 3000:
        words.append("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return words


def sentence(rng: random.Random, words: list[str], weights: list[float]) -> str:
    n = rng.randint(4, 28)
    picked = rng.choices(words, weights=weights, k=n)
    if rng.random() < 0.2:
        picked.insert(rng.randrange(len(picked)), str(rng.randint(1, 9999)))
    return " ".join(picked).capitalize() + rng.choice([".", "!", "?", "", " 🙂"])


def conversation(cid: str, title: str) -> p.Conversation:
    return p.Conversation(
        id=cid,
        title=title,
        pinned=False,
        version=1,
        creator="alice",
        members=["alice", "bob"],
        created_at=1,
        updated_at=1,
        message_count=0,
        read_seq=0,
        unread=0,
    )


def changes(n: int, rng: random.Random) -> tuple[list[p.Conversation], list[p.Change]]:
    words = vocabulary(rng)
    weights = [1 / (i + 1) ** 1.05 for i in range(len(words))]
    rng.shuffle(weights)  # which words are common is random, the shape is Zipf
    convs = [
        conversation(f"c{i:04d}", f"{rng.choice(STEMS).capitalize()} {rng.choice(NAMES)} {i}")
        for i in range(CONVERSATIONS)
    ]
    seqs = dict.fromkeys((c.id for c in convs), 0)
    out = []
    start = 1_700_000_000_000
    for i in range(n):
        cid = convs[min(int(rng.paretovariate(1.2)) - 1, CONVERSATIONS - 1)].id
        if rng.random() < 0.5:
            cid = rng.choice(convs).id
        seqs[cid] += 1
        m = p.Message(
            id=f"m{i}",
            conversation_id=cid,
            seq=seqs[cid],
            author=rng.choice(NAMES),
            body=sentence(rng, words, weights),
            created_at=start + i * 1000,
        )
        data = msgspec.Raw(p.encode(p.MessageCreated(m, 0)))
        out.append(p.Change(i + 1, "message.created", m.id, 1, data, m.created_at))
    return convs, out


def fill(path: Path, convs: list[p.Conversation], batch: list[p.Change], triggers: bool) -> float:
    """Apply every change in batches; returns µs per change."""
    store = LocalStore(path, max_messages=10_000_000)
    store.apply_snapshot(p.Snapshot(epoch=EPOCH, head=0, conversations=convs))
    if not triggers:
        for name in ("messages_search_insert", "messages_search_update", "messages_search_delete"):
            store.db.execute(f"DROP TRIGGER {name}")
    t0 = time.perf_counter()
    for i in range(0, len(batch), BATCH):
        store.apply_changes(EPOCH, batch[i : i + BATCH])
    elapsed = time.perf_counter() - t0
    store.close()
    return elapsed / len(batch) * 1e6


def keystrokes(rng: random.Random, texts: list[str]) -> list[str]:
    """Every prefix of QUERIES queries: one or two words taken from real messages."""
    out = []
    for _ in range(QUERIES):
        words = p.search_terms(rng.choice(texts))
        if not words:
            continue
        at = rng.randrange(len(words))
        query = " ".join(words[at : at + rng.choice((1, 1, 2))]).lower()
        out += [query[:k] for k in range(1, len(query) + 1) if query[k - 1] != " "]
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rng = random.Random(8)
    print(f"generating {n:,} messages in {CONVERSATIONS} conversations…")
    convs, batch = changes(n, rng)
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "plain.db"
        indexed = Path(tmp) / "indexed.db"
        base_us = fill(plain, convs, batch, triggers=False)
        with_us = fill(indexed, convs, batch, triggers=True)
        print("\nindex cost per applied change (batches of 500 message.created):")
        print(f"  without the search triggers: {base_us:7.1f} µs/change")
        print(f"  with the search triggers:    {with_us:7.1f} µs/change")
        print(f"  index cost:                  {with_us - base_us:7.1f} µs/change")
        for f in (plain, indexed):
            sqlite3.connect(f).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
        size_plain, size_indexed = plain.stat().st_size, indexed.stat().st_size
        mib = 2**20
        print(
            f"  cache file: {size_plain / mib:.1f} MiB without, {size_indexed / mib:.1f} MiB with"
        )

        store = LocalStore(indexed)
        t0 = time.perf_counter()
        store.rebuild_search_index()
        print(f"  full rebuild of the index: {time.perf_counter() - t0:.2f} s")
        t0 = time.perf_counter()
        ok = store.search_index_ok()
        took = (time.perf_counter() - t0) * 1000
        print(f"  index check at a full sync: {took:.0f} ms ({'consistent' if ok else 'BROKEN'})")

        model = ReadModel(store, "alice", ClientEvents())
        search = Search(store, model, None)  # type: ignore[arg-type]  # local search only
        texts = [m.body for m in store.messages_before(convs[0].id, None, 10_000)]
        texts += [
            msgspec.json.decode(c.data, type=p.MessageCreated).message.body
            for c in rng.sample(batch, 2000)
        ]
        typed = keystrokes(rng, texts)
        for q in typed[:50]:  # warm the page cache, as a running app has it
            search.search(q)
        times, hits = [], []
        for q in typed:
            t0 = time.perf_counter()
            found = search.search(q)
            times.append((time.perf_counter() - t0) * 1000)
            hits.append(len(found.messages))
        times.sort()
        p50 = statistics.median(times)
        p99 = times[int(len(times) * 0.99) - 1]
        print(f"\nquery latency over {store.message_count():,} cached messages, per keystroke")
        print(f"  {len(typed):,} keystroke queries ({QUERIES} typed queries), 50 newest hits asked")
        print(f"  p50 {p50:.2f} ms   p99 {p99:.2f} ms   max {times[-1]:.2f} ms")
        print(
            f"  target p99 <= {TARGET_P99_MS:.0f} ms: {'met' if p99 <= TARGET_P99_MS else 'MISSED'}"
        )
        print(f"  queries with 50 hits (a full page): {sum(h == 50 for h in hits) / len(hits):.0%}")
        store.close()


if __name__ == "__main__":
    main()
