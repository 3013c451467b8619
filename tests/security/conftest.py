"""A test CA and a real TLS front (mTLS required) for the session's real Temporal dev server."""

from __future__ import annotations

import uuid

import pytest

from tests.security.shred_helpers import new_key

from casework.client import CaseworkClient, connect
from casework.config import load_settings
from tests.conftest import sqlite_store
from worker import build_worker

from tests.security.pki import Authority
from tests.security.tls_proxy import TlsProxy


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca, rogue = Authority(directory, "casework-test"), Authority(directory, "rogue")
    return {
        "ca": ca, "rogue": rogue, "dir": directory,
        "server": ca.issue("server", "temporal.test", server_names=("temporal.test", "127.0.0.1")),
        "client": ca.issue("client", "casework-worker", client=True),
        "rogue_client": rogue.issue("rogue-client", "casework-worker", client=True),
    }


@pytest.fixture(scope="session")
def dev_server_port(temporal_env) -> int:
    return int(temporal_env.client.service_client.config.target_host.rsplit(":", 1)[1])


@pytest.fixture(scope="session")
async def mtls_proxy(pki, dev_server_port):
    proxy = TlsProxy(dev_server_port, pki["server"].cert, pki["server"].key, client_ca=pki["ca"].ca_path)
    async with proxy.running():
        yield proxy


@pytest.fixture
def mtls_env(pki, mtls_proxy) -> dict[str, str]:
    """CASEWORK_* settings of a worker or client that reaches the dev server only through mTLS."""
    return {"CASEWORK_TEMPORAL_ADDRESS": f"127.0.0.1:{mtls_proxy.port}",
            "CASEWORK_TLS_CERT_PATH": str(pki["client"].cert), "CASEWORK_TLS_KEY_PATH": str(pki["client"].key),
            "CASEWORK_TLS_CA_PATH": str(pki["ca"].ca_path)}


@pytest.fixture
def payload_key() -> str:
    return new_key()


@pytest.fixture
async def encrypted_engine(temporal_env, payload_key, tmp_path):
    """A worker and client on the dev server whose payloads are encrypted under `payload_key`."""
    address = temporal_env.client.service_client.config.target_host
    settings = load_settings(environ={"CASEWORK_PAYLOAD_KEY": payload_key})
    client = await connect(address, settings=settings)
    queue = f"casework-codec-{uuid.uuid4()}"
    async with build_worker(client, sqlite_store(tmp_path / "events.db"), queue):
        yield CaseworkClient(client, queue)
