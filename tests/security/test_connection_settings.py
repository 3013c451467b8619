"""Connection settings: what Client.connect is given, and a clear ConfigError for every bad setting."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from temporalio.client import TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter

from casework.codec import EncryptionCodec, PayloadDecryptionError
from casework.config import ConfigError, load_settings
from casework.connection import connect_options
from tests.security.pki import Authority


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("files")
    ca = Authority(directory, "casework-test")
    return {"ca": ca, "client": ca.issue("client", "worker", client=True),
            "other": ca.issue("other", "someone-else", client=True), "dir": directory}


def options(**env: str) -> dict:
    return connect_options(load_settings(environ=env))


async def test_nothing_set_is_plaintext_without_a_key_and_with_the_pydantic_converter():
    got = options()
    assert got | {"data_converter": None} == {"namespace": "default", "data_converter": None, "tls": False}
    converter = got["data_converter"]
    assert converter.payload_converter_class is pydantic_data_converter.payload_converter_class
    # Payloads go out in clear; one encrypted under a key this process lacks is refused by name.
    [plain] = await converter.encode(["x"])
    assert plain.metadata["encoding"] == b"json/plain"
    [sealed] = await EncryptionCodec([os.urandom(32)]).encode([plain])
    with pytest.raises(PayloadDecryptionError, match="is encrypted .* no payload key is configured"):
        await converter.decode([sealed])


def test_mtls_files_are_read_into_the_tls_config(files):
    got = options(CASEWORK_TLS_CERT_PATH=str(files["client"].cert), CASEWORK_TLS_KEY_PATH=str(files["client"].key),
                  CASEWORK_TLS_CA_PATH=str(files["ca"].ca_path), CASEWORK_TLS_SERVER_NAME="temporal.internal")
    assert got["tls"] == TLSConfig(server_root_ca_cert=files["ca"].ca_path.read_bytes(),
                                   client_cert=files["client"].cert.read_bytes(),
                                   client_private_key=files["client"].key.read_bytes(), domain="temporal.internal")
    assert "api_key" not in got


def test_an_api_key_alone_turns_tls_on_with_the_system_roots(tmp_path):
    assert options(CASEWORK_API_KEY="k-123") | {"data_converter": None} == {
        "namespace": "default", "data_converter": None, "tls": True, "api_key": "k-123"}
    key_file = tmp_path / "api.key"
    key_file.write_text("\n  from-file-key  \nsecond line ignored\n")
    assert options(CASEWORK_API_KEY_FILE=str(key_file))["api_key"] == "from-file-key"
    # Explicitly off (e.g. a local sidecar terminates TLS): the key is still sent.
    assert options(CASEWORK_API_KEY="k-123", CASEWORK_TLS="false")["tls"] is False


def test_the_temporal_cli_variables_count_and_casework_ones_win(files):
    got = options(TEMPORAL_API_KEY="cli-key", TEMPORAL_TLS_CLIENT_CERT_PATH=str(files["client"].cert),
                  TEMPORAL_TLS_CLIENT_KEY_PATH=str(files["client"].key),
                  TEMPORAL_TLS_SERVER_CA_CERT_PATH=str(files["ca"].ca_path), TEMPORAL_TLS_SERVER_NAME="t.example")
    assert got["api_key"] == "cli-key"
    assert got["tls"].client_cert == files["client"].cert.read_bytes()
    assert got["tls"].domain == "t.example"
    assert options(TEMPORAL_API_KEY="cli-key", CASEWORK_API_KEY="ours")["api_key"] == "ours"
    # TEMPORAL_ADDRESS, the standard variable, names the server when CASEWORK_TEMPORAL_ADDRESS does not;
    # an empty CASEWORK_TEMPORAL_ADDRESS keeps the embedded server all the same.
    assert load_settings(environ={"TEMPORAL_ADDRESS": "cloud:7233"}).temporal_address == "cloud:7233"
    assert load_settings(environ={"TEMPORAL_ADDRESS": "cloud:7233",
                                  "CASEWORK_TEMPORAL_ADDRESS": "ours:7233"}).temporal_address == "ours:7233"
    assert load_settings(environ={"TEMPORAL_ADDRESS": "cloud:7233",
                                  "CASEWORK_TEMPORAL_ADDRESS": ""}).temporal_address == ""
    assert load_settings(environ={"TEMPORAL_NAMESPACE": "prod"}).temporal_namespace == "prod"
    with pytest.raises(ConfigError, match=r"env TEMPORAL_TLS\)"):
        load_settings(environ={"TEMPORAL_TLS": "perhaps"})


def test_the_embedded_server_gets_no_tls_or_key_but_keeps_the_codec():
    key = base64.b64encode(os.urandom(32)).decode()
    got = connect_options(load_settings(environ={"CASEWORK_API_KEY": "k", "CASEWORK_PAYLOAD_KEY": key}),
                          embedded=True)
    assert set(got) == {"namespace", "data_converter"}
    assert isinstance(got["data_converter"].payload_codec, EncryptionCodec)


@pytest.mark.parametrize("env,message", [
    ({"CASEWORK_TLS_KEY_PATH": "{client_key}"},
     "tls_key_path is set but tls_cert_path .* is not: mTLS needs both"),
    ({"CASEWORK_TLS_CERT_PATH": "{client_cert}"},
     "tls_cert_path is set but tls_key_path .* is not: mTLS needs both"),
    ({"CASEWORK_TLS_CERT_PATH": "{dir}/missing.crt", "CASEWORK_TLS_KEY_PATH": "{client_key}"},
     r"tls_cert_path \(env CASEWORK_TLS_CERT_PATH\): file .*missing.crt does not exist"),
    ({"CASEWORK_TLS_CA_PATH": "{dir}"}, "tls_ca_path .*cannot read"),
    ({"CASEWORK_TLS_CA_PATH": "{client_key}"}, "tls_ca_path: .* holds no PEM certificate"),
    ({"CASEWORK_TLS_CERT_PATH": "{client_key}", "CASEWORK_TLS_KEY_PATH": "{client_key}"},
     "tls_cert_path: .* holds no PEM certificate"),
    ({"CASEWORK_TLS_CERT_PATH": "{client_cert}", "CASEWORK_TLS_KEY_PATH": "{client_cert}"},
     "tls_key_path: .* holds no usable PEM private key"),
    ({"CASEWORK_TLS_CERT_PATH": "{client_cert}", "CASEWORK_TLS_KEY_PATH": "{other_key}"},
     "does not belong to the certificate"),
    ({"CASEWORK_TLS_CERT_PATH": "{client_cert}", "CASEWORK_TLS_KEY_PATH": "{encrypted_key}"},
     "encrypted with a passphrase"),
    ({"CASEWORK_TLS": "false", "CASEWORK_TLS_CA_PATH": "{ca}"}, "tls is false but tls_ca_path is set"),
    ({"TEMPORAL_TLS_DISABLE_HOST_VERIFICATION": "true"}, "cannot turn off host-name verification"),
    ({"CASEWORK_API_KEY": "a", "CASEWORK_API_KEY_FILE": "{client_key}"}, "set one of api_key .* and api_key_file"),
    ({"CASEWORK_API_KEY_FILE": "{empty}"}, "api_key_file: .* is empty"),
])
def test_a_bad_connection_setting_is_a_named_config_error(files, env, message):
    encrypted = files["dir"] / "encrypted.key"
    encrypted.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")))
    (files["dir"] / "empty").write_text("\n\n")
    paths = {"client_cert": files["client"].cert, "client_key": files["client"].key, "other_key": files["other"].key,
             "ca": files["ca"].ca_path, "dir": files["dir"], "encrypted_key": encrypted, "empty": files["dir"] / "empty"}
    with pytest.raises(ConfigError, match=message):
        options(**{k: v.format(**paths) for k, v in env.items()})


@pytest.mark.parametrize("value,message", [
    ("not base64!", "key #1 is not valid base64"),
    (base64.b64encode(b"x" * 16).decode(), "key #1 is 16 bytes, AES-256 needs 32"),
    ("{good},{good}", "key #2 is listed twice"),
])
def test_a_bad_payload_key_is_named_by_position_never_echoed(value, message):
    good = base64.b64encode(os.urandom(32)).decode()
    value = value.format(good=good)
    with pytest.raises(ConfigError, match=message) as err:
        options(CASEWORK_PAYLOAD_KEY=value)
    assert value not in str(err.value) and good not in str(err.value)


def test_payload_keys_from_a_file_in_order(tmp_path):
    first, second = os.urandom(32), os.urandom(32)
    keys = tmp_path / "payload.keys"
    keys.write_text(f"# current key first\n{base64.b64encode(first).decode()}\n\n"
                    f"{base64.b64encode(second).decode()}\n")
    codec = options(CASEWORK_PAYLOAD_KEY_FILE=str(keys))["data_converter"].payload_codec
    assert isinstance(codec, EncryptionCodec) and len(codec.key_ids) == 2
    only_second = options(CASEWORK_PAYLOAD_KEY=base64.b64encode(second).decode())["data_converter"].payload_codec
    assert codec.key_ids[1] == only_second.encrypting_key_id != codec.encrypting_key_id
    with pytest.raises(ConfigError, match="set one of payload_key .* and payload_key_file"):
        options(CASEWORK_PAYLOAD_KEY_FILE=str(keys), CASEWORK_PAYLOAD_KEY=base64.b64encode(first).decode())
    with pytest.raises(ConfigError, match="payload_key_file: file .* does not exist"):
        options(CASEWORK_PAYLOAD_KEY_FILE=str(tmp_path / "nope"))


def test_command_line_options_override_the_settings(monkeypatch, tmp_path):
    from casework.cli import Context, cli

    def _settings(argv: list[str]):
        return Context.from_params(cli.make_context("casework", argv).params).settings()

    key_file = tmp_path / "api.key"
    key_file.write_text("from-file\n")
    monkeypatch.setenv("CASEWORK_API_KEY_FILE", str(key_file))
    monkeypatch.setenv("CASEWORK_TLS_SERVER_NAME", "from-env.example")
    settings = _settings(["--address", "t:7233", "--api-key", "from-flag", "--no-tls", "show", "c"])
    assert (settings.api_key.get_secret_value(), settings.api_key_file, settings.tls) == ("from-flag", "", False)
    with pytest.raises(ConfigError, match="tls is false but tls_server_name is set"):
        connect_options(settings)
    assert connect_options(_settings(["show", "c"]))["api_key"] == "from-file"
