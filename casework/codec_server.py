"""The codec server: Temporal's remote codec protocol over HTTP, so the Temporal UI and CLI can show
encrypted payloads decoded, to holders of a codec token only.

    POST /codec/decode   {"payloads": [{"metadata": {...}, "data": "<base64>"}, ...]}  -> same shape
    POST /codec/encode   the reverse (encrypted under the current key)

Point the UI or CLI at http://HOST:PORT/codec (`temporal ... --codec-endpoint URL --codec-auth
"Bearer TOKEN"`). Every request needs `Authorization: Bearer <token>` with one of the configured
codec tokens, or the sign-in cookie that GET/POST /codec/login sets for a browser (the UI cannot send
a fixed header); anything else gets 401 and nothing is decoded. CORS admits the UI's origins only.
"""

from __future__ import annotations

import hashlib
import hmac
import html
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import parse_qs

import structlog
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads

from casework.codec import EncryptionCodec, PayloadDecryptionError, secret_lines, payload_keys
from casework.config import ConfigError, Settings

log = structlog.get_logger("casework.codec_server")

MAX_BODY = 16 * 1024 * 1024  # a page of history's payloads; a bigger body is refused before it is read
COOKIE = "casework_codec"
COOKIE_SECONDS = 8 * 3600


def codec_tokens(settings: Settings) -> list[bytes]:
    """The accepted bearer tokens; ConfigError if none (an open codec server would decrypt for anyone)."""
    if settings.codec_token and settings.codec_token_file:
        raise ConfigError("set one of codec_token (env CASEWORK_CODEC_TOKEN) and codec_token_file "
                          "(env CASEWORK_CODEC_TOKEN_FILE), not both")
    texts = (secret_lines(settings.codec_token_file, "codec_token_file") if settings.codec_token_file
             else [t.get_secret_value().strip() for t in settings.codec_token])
    tokens = [t.encode() for t in texts if t]
    if not tokens:
        raise ConfigError("the codec server needs codec_token (env CASEWORK_CODEC_TOKEN, comma-separated) or "
                          "codec_token_file: without one it would decrypt payloads for anyone who asks")
    if any(len(t) < 16 for t in tokens):
        raise ConfigError("codec tokens must be at least 16 characters (make one with `openssl rand -hex 24`)")
    return tokens


def cors_origins(settings: Settings) -> list[str]:
    """The web origins allowed to call the codec server; by default the embedded Temporal UI's."""
    return settings.codec_cors_origins or [f"http://127.0.0.1:{settings.embedded_ui_port}",
                                           f"http://localhost:{settings.embedded_ui_port}"]


def build_app(codec: EncryptionCodec, tokens: Sequence[bytes], origins: Sequence[str]) -> Starlette:
    # Digests of equal length, compared in constant time, every token every time: a response's timing
    # says nothing about how much of a guess was right, nor which token it was close to.
    digests = [hashlib.sha256(t).digest() for t in tokens]

    def token_ok(candidate: str) -> bool:
        probe = hashlib.sha256(candidate.encode()).digest()
        matched = False
        for digest in digests:
            matched |= hmac.compare_digest(probe, digest)
        return matched

    def authorized(request: Request) -> bool:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credential.strip():
            return token_ok(credential.strip())
        cookie = request.cookies.get(COOKIE, "")
        return bool(cookie) and token_ok(cookie)

    async def transcode(request: Request) -> Response:
        op = request.url.path.rsplit("/", 1)[-1]
        who = request.client.host if request.client else "?"
        if not authorized(request):
            log.warning("codec_refused", op=op, client=who, reason="no valid codec token")
            return JSONResponse({"error": "a valid codec token is required (Authorization: Bearer <token>)"},
                                status_code=401, headers={"WWW-Authenticate": 'Bearer realm="casework codec"'})
        body = await _body(request)
        if body is None:
            return JSONResponse({"error": f"request body over {MAX_BODY} bytes"}, status_code=413)
        payloads = Payloads()
        try:
            json_format.Parse(body, payloads)
        except (json_format.ParseError, UnicodeDecodeError) as err:
            return JSONResponse({"error": f"expected {{\"payloads\": [...]}} as protobuf JSON: {err}"},
                                status_code=400)
        try:
            out = await (codec.decode if op == "decode" else codec.encode)(list(payloads.payloads))
        except PayloadDecryptionError as err:
            log.warning("codec_failed", op=op, client=who, error=str(err))
            return JSONResponse({"error": str(err)}, status_code=422)
        log.info("codec_request", op=op, client=who, payloads=len(out),
                 namespace=request.headers.get("x-namespace"))
        return Response(json_format.MessageToJson(Payloads(payloads=out), indent=None),
                        media_type="application/json")

    async def login_form(request: Request) -> Response:
        return HTMLResponse(_page("Sign in to the casework codec server",
                                  '<form method="post"><label>Codec token <input type="password" name="token" '
                                  'autocomplete="off"></label> <button>Sign in</button></form>'))

    async def login(request: Request) -> Response:
        body = await _body(request) or b""
        token = (parse_qs(body.decode(errors="replace")).get("token") or [""])[0].strip()
        if not token or not token_ok(token):
            log.warning("codec_refused", op="login", client=request.client.host if request.client else "?")
            return HTMLResponse(_page("Not signed in", "That is not a codec token."), status_code=401)
        response = HTMLResponse(_page("Signed in", "The Temporal UI on this host can now show decoded "
                                      "payloads (its codec settings must include cross-origin credentials)."))
        response.set_cookie(COOKIE, token, max_age=COOKIE_SECONDS, path="/codec", httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        return response

    async def logout(request: Request) -> Response:
        response = HTMLResponse(_page("Signed out", ""))
        response.delete_cookie(COOKIE, path="/codec")
        return response

    routes = [Route("/codec/decode", transcode, methods=["POST"]),
              Route("/codec/encode", transcode, methods=["POST"]),
              Route("/codec/login", login_form, methods=["GET"]),
              Route("/codec/login", login, methods=["POST"]),
              Route("/codec/logout", logout, methods=["POST"])]
    cors = Middleware(CORSMiddleware, allow_origins=list(origins), allow_methods=["POST"],
                      allow_headers=["Authorization", "Content-Type", "X-Namespace"],
                      allow_credentials=True, max_age=600)
    return Starlette(routes=routes, middleware=[cors])


async def _body(request: Request) -> bytes | None:
    """The request body, or None when it is over MAX_BODY (counted as it arrives, not trusted from headers)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<h1>{html.escape(title)}</h1><p>{body}</p>")


def app_from_settings(settings: Settings) -> Starlette:
    keys = payload_keys(settings)
    if not keys:
        raise ConfigError("the codec server needs the payload keys (payload_key or payload_key_file) the "
                          "worker encrypts with")
    return build_app(EncryptionCodec(keys), codec_tokens(settings), cors_origins(settings))


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Run the codec server until interrupted; ConfigError (before listening) if it cannot be safe."""
    import uvicorn

    app = app_from_settings(settings)
    host, port = host or settings.codec_host, port or settings.codec_port
    cert, key = settings.codec_tls_cert_path, settings.codec_tls_key_path
    if bool(cert) != bool(key):
        raise ConfigError("codec_tls_cert_path and codec_tls_key_path go together: set both or neither")
    for setting, path in (("codec_tls_cert_path", cert), ("codec_tls_key_path", key)):
        if path and not Path(path).is_file():
            raise ConfigError(f"setting {setting}: file {path} does not exist")
    scheme = "https" if cert else "http"
    if not cert and host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("codec_server_plain_http", host=host,
                    reason="tokens and decoded payloads cross the network in clear; set codec_tls_cert_path")
    log.info("codec_server_started", url=f"{scheme}://{host}:{port}/codec", origins=cors_origins(settings))
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, server_header=False,
                ssl_certfile=cert or None, ssl_keyfile=key or None)
