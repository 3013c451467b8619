"""A real TLS front for the dev server, which serves plaintext only (`temporal server start-dev` has
no TLS options): it terminates TLS with a test CA's server certificate, optionally requires a client
certificate from a given CA (mTLS), and forwards the raw HTTP/2 bytes to the dev server.

It also reads the request headers of the gRPC calls passing through it (HPACK-decoded, never
changed), so a test can see the metadata a client really sends, e.g. `authorization: Bearer ...`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from hpack import Decoder

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADERS, CONTINUATION = 0x1, 0x9
END_HEADERS, PADDED, PRIORITY = 0x4, 0x8, 0x20


class _HeaderReader:
    """Follows one client-to-server HTTP/2 byte stream and collects the header lists it carries."""

    def __init__(self, sink: list[dict[str, str]]) -> None:
        self.buffer, self.decoder, self.sink = b"", Decoder(), sink
        self.block, self.preface_seen = b"", False

    def feed(self, data: bytes) -> None:
        self.buffer += data
        if not self.preface_seen:
            if len(self.buffer) < len(PREFACE):
                return
            self.buffer, self.preface_seen = self.buffer[len(PREFACE):], True
        while len(self.buffer) >= 9:
            length = int.from_bytes(self.buffer[:3], "big")
            if len(self.buffer) < 9 + length:
                return
            kind, flags, payload = self.buffer[3], self.buffer[4], self.buffer[9:9 + length]
            self.buffer = self.buffer[9 + length:]
            if kind == HEADERS:
                if flags & PADDED:
                    pad, payload = payload[0], payload[1:]
                    payload = payload[:len(payload) - pad]
                if flags & PRIORITY:
                    payload = payload[5:]
                self.block = payload
            elif kind == CONTINUATION:
                self.block += payload
            else:
                continue
            if flags & END_HEADERS:
                self.sink.append({k: v for k, v in self.decoder.decode(self.block)})
                self.block = b""


@dataclass
class TlsProxy:
    upstream_port: int
    cert: Path
    key: Path
    client_ca: Path | None = None  # set: a client certificate from this CA is required
    port: int = 0
    accepted: int = 0  # connections whose TLS handshake succeeded (only these reach the dev server)
    requests: list[dict[str, str]] = field(default_factory=list)  # header lists seen, in order
    _open: set[asyncio.StreamWriter] = field(default_factory=set)

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert, self.key)
        ctx.set_alpn_protocols(["h2"])  # gRPC clients insist on HTTP/2 by ALPN
        if self.client_ca is not None:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.client_ca)
        return ctx

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        self._open |= {writer, up_writer}
        headers = _HeaderReader(self.requests)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, watch: bool) -> None:
            try:
                while data := await src.read(65536):
                    if watch:
                        headers.feed(data)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
                pass
            finally:
                self._open.discard(dst)
                with contextlib.suppress(Exception):
                    dst.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))

    @contextlib.asynccontextmanager
    async def running(self):
        server = await asyncio.start_server(self._serve_one, "127.0.0.1", self.port, ssl=self._context())
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for writer in list(self._open):
                with contextlib.suppress(Exception):
                    writer.close()
