"""How casework connects to Temporal: the one place that turns Settings into `Client.connect`
keyword arguments (namespace, data converter, TLS / mTLS, API key), for the client, worker and CLI.

Certificates and keys are read and checked here, so a bad setting stops the program with a
ConfigError naming it, before any connection is tried. The embedded dev server serves plaintext on
127.0.0.1 and gets no TLS or API key; payload encryption applies to every server.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from temporalio.client import TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from casework.codec import EncryptionCodec, NoPayloadKeys, payload_keys
from casework.config import ConfigError, Settings

TLS_SETTINGS = ("tls_cert_path", "tls_key_path", "tls_ca_path", "tls_server_name")


def connect_options(settings: Settings, *, embedded: bool = False) -> dict[str, Any]:
    """Keyword arguments for `Client.connect(address, **options)`; ConfigError if a setting is wrong."""
    options: dict[str, Any] = {"namespace": settings.temporal_namespace, "data_converter": data_converter(settings)}
    if not embedded:
        options.update(_auth_options(settings))
    return options


def data_converter(settings: Settings) -> DataConverter:
    """pydantic's converter, with payload encryption when payload keys are set. Failure messages and
    stack traces then travel encrypted too (they can quote a customer's input). Without keys, an
    encrypted payload is refused with a reason."""
    keys = payload_keys(settings)
    if not keys:
        return dataclasses.replace(pydantic_data_converter, payload_codec=NoPayloadKeys())
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(keys),
                               failure_converter_class=DefaultFailureConverterWithEncodedAttributes)


def auth_settings_given(settings: Settings) -> bool:
    """Whether any TLS or API-key setting is set (the embedded server ignores them)."""
    return bool(settings.tls or settings.api_key.get_secret_value() or settings.api_key_file
                or any(getattr(settings, name) for name in TLS_SETTINGS))


def _auth_options(settings: Settings) -> dict[str, Any]:
    if settings.tls_disable_host_verification:
        raise ConfigError("setting tls_disable_host_verification: the Temporal Python SDK cannot turn off "
                          "host-name verification; set tls_server_name to the name the server's certificate "
                          "carries (and tls_ca_path to its CA) instead")
    if bool(settings.tls_cert_path) != bool(settings.tls_key_path):
        given, missing = (("tls_cert_path", "tls_key_path") if settings.tls_cert_path
                          else ("tls_key_path", "tls_cert_path"))
        raise ConfigError(f"setting {given} is set but {missing} (env CASEWORK_{missing.upper()}) is not: "
                          f"mTLS needs both the client certificate and its private key")
    api_key = _api_key(settings)
    tls_given = [name for name in TLS_SETTINGS if getattr(settings, name)]
    if settings.tls is False and tls_given:
        raise ConfigError(f"setting tls is false but {', '.join(tls_given)} is set: drop one or the other")
    use_tls = settings.tls if settings.tls is not None else bool(tls_given or api_key)
    options: dict[str, Any] = {"tls": _tls_config(settings) if use_tls else False}
    if api_key:
        options["api_key"] = api_key
    return options


def _api_key(settings: Settings) -> str:
    inline = settings.api_key.get_secret_value().strip()
    if inline and settings.api_key_file:
        raise ConfigError("set one of api_key (env CASEWORK_API_KEY or TEMPORAL_API_KEY) and api_key_file "
                          "(env CASEWORK_API_KEY_FILE), not both")
    if not settings.api_key_file:
        return inline
    text = _read("api_key_file", settings.api_key_file).decode(errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise ConfigError(f"setting api_key_file: {settings.api_key_file} is empty")
    return lines[0]


def _tls_config(settings: Settings) -> TLSConfig | bool:
    if not any(getattr(settings, name) for name in TLS_SETTINGS):
        return True  # TLS with the system's roots, the host dialled as the name to verify
    ca = _read("tls_ca_path", settings.tls_ca_path) if settings.tls_ca_path else None
    cert = _read("tls_cert_path", settings.tls_cert_path) if settings.tls_cert_path else None
    key = _read("tls_key_path", settings.tls_key_path) if settings.tls_key_path else None
    if ca is not None:
        _certificates("tls_ca_path", settings.tls_ca_path, ca)
    if cert is not None and key is not None:
        _check_pair(settings, _certificates("tls_cert_path", settings.tls_cert_path, cert)[0], key)
    return TLSConfig(server_root_ca_cert=ca, client_cert=cert, client_private_key=key,
                     domain=settings.tls_server_name or None)


def _read(setting: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"setting {setting} (env CASEWORK_{setting.upper()}): file {path} does not exist") from None
    except OSError as err:
        raise ConfigError(f"setting {setting} (env CASEWORK_{setting.upper()}): cannot read {path}: "
                          f"{err.strerror}") from None


def _certificates(setting: str, path: str, data: bytes) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise ConfigError(f"setting {setting}: {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    return certs


def _check_pair(settings: Settings, cert: x509.Certificate, key_pem: bytes) -> None:
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise ConfigError(f"setting tls_key_path: {settings.tls_key_path} is encrypted with a passphrase, "
                          f"which the Temporal SDK cannot use; store it unencrypted with tight file "
                          f"permissions") from None
    except (ValueError, UnicodeDecodeError, UnsupportedAlgorithm):
        raise ConfigError(f"setting tls_key_path: {settings.tls_key_path} holds no usable PEM private key") from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        raise ConfigError(f"settings tls_cert_path and tls_key_path: the key in {settings.tls_key_path} does "
                          f"not belong to the certificate in {settings.tls_cert_path}")
