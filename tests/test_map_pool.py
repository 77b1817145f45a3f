"""A map's private pools: one per worker, and a cookie store that does no work for answers setting none
(yet still keeps the cookies an answer does set)."""

from __future__ import annotations

import asyncio

import httpx
import pandas as pd
import pytest
from _kernel import FAKE_KEY

from or_magic import OpenRouter
from or_magic.map_api import build_job
from or_magic.map_pool import MapHTTPClient, SetCookieOnlyJar, private_clients
from or_magic.mapping import run_map


def _answer(request: httpx.Request) -> httpx.Response:
    headers = {"set-cookie": "route=b7; Path=/"} if request.url.path.endswith("/login") else {}
    return httpx.Response(200, headers=headers, json={"cookie": request.headers.get("cookie")})


def test_a_cookie_an_answer_sets_is_kept_and_sent_back():
    async def go() -> list[str | None]:
        async with MapHTTPClient(transport=httpx.MockTransport(_answer)) as http:
            seen = [(await http.get("http://api.test/v1/login")).json()["cookie"]]
            seen.append((await http.get("http://api.test/v1/chat")).json()["cookie"])
            assert isinstance(http.cookies, SetCookieOnlyJar) and http.cookies.get("route") == "b7"
            return seen

    assert asyncio.run(go()) == [None, "route=b7"]


def test_an_answer_without_cookies_is_not_wrapped_for_the_cookie_jar(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("urllib wrapping for a response that sets no cookie")

    monkeypatch.setattr(httpx.Cookies, "_CookieCompatResponse", refuse)

    async def go() -> int:
        async with MapHTTPClient(transport=httpx.MockTransport(_answer)) as http:
            response = await http.get("http://api.test/v1/chat")
            assert len(http.cookies) == 0
            http.cookies = {"a": "1"}  # the setter keeps the quiet store
            assert isinstance(http.cookies, SetCookieOnlyJar) and http.cookies["a"] == "1"
            return response.status_code

    assert asyncio.run(go()) == 200


def test_private_clients_copy_the_client_with_one_quiet_pool_each(sandbox):
    with OpenRouter(api_key=FAKE_KEY, server_url=sandbox.url) as client:
        async def go() -> tuple[list[OpenRouter], list[object]]:
            own = private_clients(client, 3)
            pools = [c._async_client for c in own]
            for clone in own:
                await clone.aclose()
            return own, pools

        own, pools = asyncio.run(go())
        assert len(own) == 3 and all(c is not client and c.server_url == client.server_url for c in own)
        assert len({id(p) for p in pools}) == 3 and all(isinstance(p, MapHTTPClient) for p in pools)
        assert client._async_client is None or not isinstance(client._async_client, MapHTTPClient)


@pytest.mark.parametrize("concurrency", [1, 8])
def test_a_map_through_the_private_pools_answers_every_row(sandbox, concurrency):
    sandbox.reset()
    rows = pd.DataFrame({"text": [f"row {i}" for i in range(20)]})
    with OpenRouter(api_key=FAKE_KEY, server_url=sandbox.url) as client:
        result = run_map(client, build_job(rows, "Echo $text", model="sandbox/echo", concurrency=concurrency,
                                           journal=False))
    assert result.stats.done == 20 and result.stats.failed == 0
    assert [o.text for o in result.outcomes] == [o.text for o in result.outcomes if o.status == "ok"]
    assert all("row" in (o.text or "") for o in result.outcomes)
