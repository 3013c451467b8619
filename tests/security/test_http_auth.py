"""HTTP credentials: API keys and JWTs (verified against a JWKS served over a real socket)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from casework.http_auth import HttpAuthenticator, JwtVerifier, Unauthenticated
from domain.lifecycle import CommandRefused
from domain.model import Actor, Role
from domain.principals import Registry

ISSUER, AUDIENCE = "https://idp.example.test/", "casework"
SERVICE_KEY, ALICE_KEY = "svc-key-7f3a9c1e", "alice-key-52b8d0"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


REGISTRY = Registry.model_validate({
    "services": {"crm": {"acts_as": ["system", "customer", "agent"], "secret": "s", "api_key_sha256": sha(SERVICE_KEY)}},
    "staff": {"alice": {"roles": ["agent"], "api_key_sha256": sha(ALICE_KEY)}, "sam": {"roles": ["supervisor"]}},
})


@pytest.fixture(scope="module")
def idp():
    """The identity provider: a key pair and its JWKS on a real HTTP server."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
    body = json.dumps({"keys": [jwk]}).encode()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield key, f"http://127.0.0.1:{server.server_port}/jwks.json"
    server.shutdown()


def token(key, **claims) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, "sub": "sam",
            "casework_role": "supervisor", **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm="RS256",
                      headers={"kid": "k1"})


@pytest.fixture(scope="module")
def auth(idp):
    return HttpAuthenticator(REGISTRY, JwtVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=idp[1]))


def test_a_staff_token_acts_as_that_person_only(idp, auth):
    who = auth.authenticate(f"Bearer {token(idp[0])}")
    assert auth.actor_for(who, None) == Actor(id="sam", role=Role.supervisor)
    assert auth.actor_for(who, Actor(id="sam", role=Role.supervisor)) == Actor(id="sam", role=Role.supervisor)
    with pytest.raises(CommandRefused) as err:
        auth.actor_for(who, Actor(id="alice", role=Role.agent))  # the payload lies about who sent it
    assert err.value.code == "actor_mismatch"


def test_a_customer_token_acts_as_that_customer(idp, auth):
    who = auth.authenticate(f"Bearer {token(idp[0], sub='cust-42', casework_role='customer')}")
    assert auth.actor_for(who, None) == Actor(id="cust-42", role=Role.customer)
    with pytest.raises(CommandRefused):
        auth.actor_for(who, Actor(id="cust-43", role=Role.customer))


@pytest.mark.parametrize("bad", ["expired", "issuer", "audience", "other_key", "alg_none", "hs256_confusion",
                                 "unlisted_staff", "system_role", "tampered", "missing_sub"])
def test_bad_tokens_are_refused(idp, auth, bad):
    key, now = idp[0], int(time.time())
    if bad == "expired":
        t = token(key, iat=now - 4000, exp=now - 3600)
    elif bad == "issuer":
        t = token(key, iss="https://evil.example/")
    elif bad == "audience":
        t = token(key, aud="someone-else")
    elif bad == "other_key":
        t = token(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    elif bad == "alg_none":
        t = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, "sub": "sam",
                        "casework_role": "supervisor"}, None, algorithm="none", headers={"kid": "k1"})
    elif bad == "hs256_confusion":  # the public key used as an HMAC secret
        pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        header = {"alg": "HS256", "kid": "k1", "typ": "JWT"}
        import base64
        import hmac as _hmac
        enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
        payload = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, "sub": "sam", "casework_role": "supervisor"}
        signing = f"{enc(json.dumps(header).encode())}.{enc(json.dumps(payload).encode())}"
        t = f"{signing}.{enc(_hmac.new(pem, signing.encode(), hashlib.sha256).digest())}"
    elif bad == "unlisted_staff":
        t = token(key, sub="mallory")
    elif bad == "system_role":
        t = token(key, sub="crm", casework_role="system")
    elif bad == "tampered":
        head, body, sig = token(key).split(".")
        claims = json.loads(jwt.utils.base64url_decode(body))
        claims["sub"] = "alice"
        t = ".".join((head, jwt.utils.base64url_encode(json.dumps(claims).encode()).decode(), sig))
    else:
        t = token(key, sub=None)
    with pytest.raises(Unauthenticated):
        auth.authenticate(f"Bearer {t}")


def test_api_keys_name_their_principal_and_nothing_else(auth):
    service = auth.authenticate(api_key=SERVICE_KEY)
    assert auth.actor_for(service, Actor(id="cust-9", role=Role.customer)) == Actor(id="cust-9", role=Role.customer)
    with pytest.raises(CommandRefused) as err:
        auth.actor_for(service, Actor(id="sam", role=Role.supervisor))
    assert err.value.code == "role_not_granted"
    with pytest.raises(CommandRefused) as err:
        auth.actor_for(service, Actor(id="nobody", role=Role.agent))
    assert err.value.code == "not_staff"
    with pytest.raises(CommandRefused) as err:
        auth.actor_for(service, None)
    assert err.value.code == "actor_required"
    alice = auth.authenticate(api_key=ALICE_KEY)
    assert auth.actor_for(alice, None) == Actor(id="alice", role=Role.agent)
    with pytest.raises(CommandRefused):
        auth.actor_for(alice, Actor(id="sam", role=Role.supervisor))
    for wrong in ("svc-key-7f3a9c1f", "", None):
        with pytest.raises(Unauthenticated):
            auth.authenticate(api_key=wrong)
