"""A real browser consumes the feed: Debian's Chromium, headless, opens a page served from another
loopback port (so CORS is exercised, preflights included) whose ``EventSource`` uses a stream
ticket. The stream is cut between ``hello`` and the first change, between ``hello`` and a
backlog, in the middle of a backlog, and the server restarts; the page must see every change
exactly once and in order — with the browser's own reconnections (``Last-Event-ID``), never a
second ``EventSource``."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.support.browser import PageServer, chromium, chromium_or_skip, log_tail
from tests.support.faultproxy import FaultProxy
from tests.support.live_server import PASSWORD, LiveServer, add_users
from tests.support.waiting import wait_until

# What docs/architecture.md §4.5 tells a web page to do. Every event it sees (type, id, data)
# and every open/error is POSTed back to the test, numbered (the POSTs may overtake each other).
PAGE = """<!doctype html>
<meta charset="utf-8">
<title>Concord feed</title>
<script>
"use strict";
const params = new URLSearchParams(location.hash.slice(1));
const api = params.get("api");
let n = 0, token = null, lastId = "", sources = 0;

function report(obj) {
  obj.n = n++;
  obj.source = sources;
  fetch("/collect", {method: "POST", body: JSON.stringify(obj)}).catch(() => {});
}

async function signIn() {
  const r = await fetch(api + "/auth/token", {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({username: params.get("user"), password: params.get("password")}),
  });
  if (!r.ok) throw new Error("sign-in " + r.status);
  token = (await r.json()).access_token;
}

async function ticket() {
  let r = await fetch(api + "/auth/stream-ticket", {
    method: "POST", headers: {Authorization: "Bearer " + token}});
  if (r.status === 401) {  // the access token expired: sign in (a real page refreshes)
    await signIn();
    r = await fetch(api + "/auth/stream-ticket", {
      method: "POST", headers: {Authorization: "Bearer " + token}});
  }
  if (!r.ok) throw new Error("ticket " + r.status);
  return (await r.json()).ticket;
}

async function open() {
  let url = api + "/events?ticket=" + encodeURIComponent(await ticket());
  if (lastId) url += "&since=" + encodeURIComponent(lastId);
  sources++;
  const es = new EventSource(url);
  report({type: "open", since: lastId});
  for (const type of ["hello", "reset", "change", "reauth", "expired", "bye"]) {
    es.addEventListener(type, (e) => {
      lastId = e.lastEventId;
      report({type: type, id: e.lastEventId, data: e.data});
      if (type === "expired") { es.close(); open(); }  // a new ticket, resume from lastId
    });
  }
  es.onerror = () => {
    report({type: "error", state: es.readyState});
    if (es.readyState === EventSource.CLOSED) setTimeout(() => open().catch(fail), 500);
  };
}

function fail(e) { report({type: "fatal", error: String(e)}); }
signIn().then(open).catch(fail);
</script>
"""


def seen(page: PageServer, type_: str) -> list[dict[str, Any]]:
    return [r for r in page.reports() if r.get("type") == type_]


def change_seqs(page: PageServer) -> list[int]:
    return [json.loads(r["data"])["seq"] for r in seen(page, "change")]


async def test_a_browser_sees_every_change_once_through_cuts_and_a_restart(
    tmp_path: Path,
) -> None:
    binary = chromium_or_skip()
    data = tmp_path / "server"
    data.mkdir()
    add_users(data, ("alice",))
    with PageServer(PAGE) as page:
        server = LiveServer(data, heartbeat_s=5.0, cors_origins=(page.origin,))
        proxy = FaultProxy(("127.0.0.1", server.thread.port)).start()
        api = proxy.url + "/api/v1"
        async with httpx.AsyncClient(base_url=server.url + "/api/v1") as writer:
            token = ""

            async def sign_in() -> None:
                nonlocal token
                r = await writer.post(
                    "/auth/token", json={"username": "alice", "password": PASSWORD}
                )
                token = r.json()["access_token"]

            async def write(n: int) -> list[int]:
                seqs = []
                for i in range(n):
                    body = {"id": str(uuid.uuid4()), "title": f"c{i}"}
                    r = await writer.post(
                        "/conversations", json=body, headers={"Authorization": f"Bearer {token}"}
                    )
                    assert r.status_code == 201, r.text
                    seqs.append(r.json()["seq"])
                return seqs

            async def page_has(total: int, what: str) -> None:
                await wait_until(
                    lambda: len(change_seqs(page)) >= total,
                    what,
                    timeout=40,
                    detail=lambda: (page.reports()[-8:], log_tail(browser_log, 5)),
                )

            await sign_in()
            written = await write(2)  # before the page opens: not its business (fresh start)
            browser_log = tmp_path / "chromium.log"
            url = f"{page.origin}/#api={api}&user=alice&password={PASSWORD}"
            try:
                with chromium(binary, url, tmp_path / "profile", browser_log):
                    # 1. Fresh stream; cut between hello and the first change.
                    await wait_until(
                        lambda: seen(page, "hello"),
                        "the page's first hello",
                        timeout=40,
                        detail=lambda: (page.reports(), log_tail(browser_log)),
                    )
                    assert json.loads(seen(page, "hello")[0]["data"])["head"] == 2
                    proxy.set_mode("refuse")
                    proxy.cut()
                    expected = await write(3)
                    proxy.set_mode("pass")
                    await page_has(3, "the changes made while the page was cut off")

                    # 2. Cut between hello and a backlog (the resumed hello: the cursor's id).
                    proxy.set_mode("refuse")
                    proxy.cut()
                    expected += await write(4)
                    proxy.cut_after(b"event: hello\n")
                    proxy.set_mode("pass")
                    await page_has(7, "the backlog after a cut right after hello")
                    assert not proxy.cut_armed

                    # 3. Cut in the middle of a backlog.
                    proxy.set_mode("refuse")
                    proxy.cut()
                    backlog = await write(40)
                    expected += backlog
                    epoch = json.loads(seen(page, "hello")[0]["data"])["epoch"]
                    proxy.cut_after(b"id: %d:%d\n" % (epoch, backlog[14]))
                    proxy.set_mode("pass")
                    await page_has(47, "the rest of a backlog cut in the middle")
                    assert not proxy.cut_armed

                    # 4. The server restarts (bye, down, up on the same port); writes meanwhile.
                    server.stop()
                    await wait_until(lambda: seen(page, "bye"), "bye before the restart")
                    server.restart()
                    expected += await write(3)
                    await page_has(50, "the changes after the restart")

                    # 5. Live again.
                    expected += await write(2)
                    await page_has(52, "live changes")
            finally:
                proxy.stop()
                server.stop()

    reports = page.reports()
    assert not [r for r in reports if r["type"] in ("fatal", "unparsable")], reports
    assert change_seqs(page) == expected == list(range(3, 55)), change_seqs(page)
    ids = [r["id"] for r in seen(page, "change")]
    assert ids == [f"{epoch}:{s}" for s in expected]
    assert not seen(page, "reset"), "no cursor was ever lost"
    # Every cut was repaired by the browser's own reconnection with Last-Event-ID.
    opens = seen(page, "open")
    assert len(opens) == 1, opens
    hellos = [json.loads(r["data"]) for r in seen(page, "hello")]
    assert len(hellos) >= 6 and all(h["resumed"] for h in hellos[1:]), hellos
    assert [r["id"] for r in seen(page, "hello")][:1] == [f"{epoch}:2"]
    assert written == [1, 2]
