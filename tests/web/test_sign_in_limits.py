"""Failed sign-ins are throttled over real HTTP, per client address and per claimed principal: the HTTP
API answers 429 problem+json with Retry-After, the console's sign-in page 429 with Retry-After. The
client addresses are real: each client binds its own loopback source address (127.0.0.x)."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from casework.config import reporting_env
from casework.web import running
from casework.web.console import console_app
from projections.runner import open_view
from tests.web.conftest import AUDIENCE, ISSUER, KEYS, problem, settings_in
from tests.web.console_env import KEYS as CONSOLE_KEYS
from tests.web.console_env import free_port, mounted, registry_and_settings, serve


def client_from(address: str, url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=30, transport=httpx.AsyncHTTPTransport(local_address=address))


def token(sub: str, role: str, key) -> str:
    now = int(time.time())
    return jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600, "sub": sub, "casework_role": role},
                      key, algorithm="RS256")


@pytest.fixture(scope="module")
async def api(temporal_env, tmp_path_factory):
    """The HTTP API alone (no worker: authentication and the listing need none), 3 failures an address
    and 2 a principal per minute."""
    directory = tmp_path_factory.mktemp("sign-in-limits")
    settings = settings_in(directory, f"limits-{uuid.uuid4()}", sign_in_failures_per_address="3/minute",
                           sign_in_failures_per_principal="2/minute")
    async with running(settings, temporal_env.client, view=open_view(reporting_env(settings))) as url:
        yield url, directory


async def test_an_address_with_its_failures_used_up_gets_429_until_the_window_moves(api):
    url, _ = api
    async with client_from("127.0.0.11", url) as guesser:
        for n in range(3):
            wrong = await guesser.get("/cases", headers={"X-API-Key": f"guess-{n}"})
            assert problem(wrong)["code"] == "unauthenticated" and wrong.status_code == 401
        throttled = await guesser.get("/cases", headers={"X-API-Key": KEYS["alice"]})  # even the right key now
        body = problem(throttled)
        assert throttled.status_code == 429 and body["code"] == "too_many_failed_sign_ins"
        assert "address" in body["detail"]
        assert 1 <= int(throttled.headers["Retry-After"]) <= 60
        # A request with no credential at all is no attempt: it is told to bring one, not throttled.
        assert problem(await guesser.get("/cases"))["code"] == "unauthenticated"
    async with client_from("127.0.0.12", url) as neighbour:  # another address is not held back
        assert (await neighbour.get("/cases", headers={"X-API-Key": KEYS["alice"]})).status_code == 200


async def test_a_principal_guessed_at_from_many_addresses_gets_429(api):
    url, directory = api
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # not the identity provider's key
    for address in ("127.0.0.21", "127.0.0.22"):
        async with client_from(address, url) as http:
            refused = await http.get("/cases", headers={"Authorization": f"Bearer {token('sam', 'supervisor', forger)}"})
            assert refused.status_code == 401, refused.text
    async with client_from("127.0.0.23", url) as http:  # a fresh address, the same person: held back
        throttled = await http.get("/cases", headers={"Authorization": f"Bearer {token('sam', 'supervisor', forger)}"})
        assert throttled.status_code == 429 and "principal" in problem(throttled)["detail"]
        assert 1 <= int(throttled.headers["Retry-After"]) <= 60
        # Another person from that address is not (one failure of the address's three is not used).
        other = await http.get("/cases", headers={"Authorization": f"Bearer {token('alice', 'agent', forger)}"})
        assert other.status_code == 401


async def test_the_consoles_sign_in_form_is_throttled_per_address(tmp_path):
    registry, settings = registry_and_settings(tmp_path)
    settings = settings.model_copy(update={"sign_in_failures_per_address": "2/minute"})
    port = free_port()
    server, task = await serve(mounted(console_app(settings, registry=registry)), port)
    url = f"http://127.0.0.1:{port}"

    async def attempt(http: httpx.AsyncClient, key: str) -> httpx.Response:
        page = await http.get("/console/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        return await http.post("/console/signin", data={"csrf": csrf, "next": "", "credential": key})

    try:
        async with client_from("127.0.0.31", url) as guesser:
            for n in range(2):
                assert (await attempt(guesser, f"guess-{n}")).status_code == 401
            throttled = await attempt(guesser, CONSOLE_KEYS["sup-sam"])
            assert throttled.status_code == 429 and 1 <= int(throttled.headers["Retry-After"]) <= 60
            assert 'id="signin-wait"' in throttled.text and "Too many failed sign-ins" in throttled.text
            assert (await guesser.get("/console/board")).status_code == 303  # not signed in
        async with client_from("127.0.0.32", url) as person:
            signed_in = await attempt(person, CONSOLE_KEYS["sup-sam"])
            assert signed_in.status_code == 303 and signed_in.headers["location"] == "/console/board"
    finally:
        server.should_exit = True
        await task
