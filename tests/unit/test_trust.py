"""Trust settings for outgoing https (dynafed_net/trust.py, used by the
functions' runtime and the client alike): a CA
bundle and/or a hashed ``X509_CERT_DIR`` add to certifi's roots; a real TLS
server signed by a throwaway CA is refused without them and accepted with
either; bad settings are errors naming the variable."""
from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import certifi
import pytest
import requests

import dynafed_net.trust as trust_module
from tests.interop.xrootd import ThrowawayCA

MODULES = [pytest.param(trust_module, id="trust")]


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return ThrowawayCA.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_server(ca: ThrowawayCA) -> Iterator[str]:
    """An https server on loopback with the CA's ``localhost`` certificate."""
    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(ca.server_cert, ca.server_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("module", MODULES)
def test_nothing_configured_means_certifi(module: ModuleType) -> None:
    settings = module.TrustSettings.from_env({})
    assert not settings.configured
    assert settings.verify() is True


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("setting", ["bundle", "dir"])
def test_site_ca_is_trusted_beside_the_public_roots(module: ModuleType, setting: str, ca: ThrowawayCA,
                                                    tls_server: str) -> None:
    env = {"DYNAFED_FN_CA_BUNDLE": str(ca.bundle)} if setting == "bundle" else {"X509_CERT_DIR": str(ca.cert_dir)}
    settings = module.TrustSettings.from_env(env)
    with pytest.raises(requests.exceptions.SSLError, match="certificate verify failed"):
        requests.get(tls_server, verify=module.TrustSettings().verify(), timeout=10)
    verify = settings.verify()
    assert requests.get(tls_server, verify=verify, timeout=10).content == b"hello"
    combined = Path(verify).read_bytes()
    assert ca.bundle.read_bytes().strip() in combined
    assert Path(certifi.where()).read_bytes().strip().splitlines()[-1] in combined  # public roots kept
    assert settings.verify() == verify  # written once


@pytest.mark.parametrize("module", MODULES)
def test_only_hashed_names_of_the_directory_count(module: ModuleType, ca: ThrowawayCA, tmp_path: Path) -> None:
    """OpenSSL looks certificates up by ``<hash>.<n>``; grid directories also
    hold ``.signing_policy``/``.namespaces``/``.crl_url`` files and CRLs (``.r0``)."""
    directory = tmp_path / "certificates"
    directory.mkdir()
    (directory / "dynafed-ca.pem").write_bytes(ca.bundle.read_bytes())
    (directory / "0123abcd.signing_policy").write_text("access_id_CA X509 '/DC=test/CN=x'\n")
    with pytest.raises(module.TrustError, match="no PEM certificate"):
        module.TrustSettings.from_env({"X509_CERT_DIR": str(directory)})
    (directory / "0123abcd.0").write_bytes(ca.bundle.read_bytes())
    assert module.TrustSettings.from_env({"X509_CERT_DIR": str(directory)}).extra_pem().count(b"BEGIN") == 1


@pytest.mark.parametrize("module", MODULES)
def test_bad_settings_name_the_variable(module: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(module.TrustError, match="DYNAFED_FN_CA_BUNDLE"):
        module.TrustSettings.from_env({"DYNAFED_FN_CA_BUNDLE": str(tmp_path / "missing.pem")})
    with pytest.raises(module.TrustError, match="X509_CERT_DIR"):
        module.TrustSettings.from_env({"X509_CERT_DIR": str(tmp_path / "missing")})
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(module.TrustError, match="no PEM certificate"):
        module.TrustSettings.from_env({"DYNAFED_FN_CA_BUNDLE": str(empty)})


def test_each_component_reads_the_settings_at_start_up(tmp_path: Path) -> None:
    """The function Config and the client config (hooks, CLI, gateway
    dispatcher) fail at start-up on a bad setting, with the variable named."""
    from dynafed_client.config import ClientConfig
    from dynafed_client.errors import ConfigError as ClientConfigError
    from dynafed_runtime.config import Config, ConfigError

    store = {"endpoint_url": "http://127.0.0.1:9", "access_key_id": "a", "secret_access_key": "b"}
    env = {"DYNAFED_FN_STORES": json.dumps({"stores": {"default": store}}), "X509_CERT_DIR": str(tmp_path / "nope")}
    with pytest.raises(ConfigError, match="X509_CERT_DIR"):
        Config.from_env(env, function="copy")
    with pytest.raises(ClientConfigError, match="X509_CERT_DIR"):
        ClientConfig.from_env(env)


def test_gateway_preflight_names_the_trust_settings_on_a_tls_failure(ca: ThrowawayCA, tls_server: str) -> None:
    """The gateway checks an https Source before answering 202: without the
    site CA that is a 502 naming the reason and the two settings; with it, it passes."""
    from dynafed_client.gateway import errors as gw_errors
    from dynafed_client.gateway.preflight import probe_http_source
    from dynafed_contract.urlpolicy import AllowList

    allow = AllowList.parse([tls_server.rstrip("/")])
    with pytest.raises(gw_errors.BadGateway) as refused:
        probe_http_source(tls_server + "f", {}, allow=allow, allow_private=True, verify=True)
    assert "certificate verify failed" in refused.value.reason
    assert "DYNAFED_FN_CA_BUNDLE or X509_CERT_DIR" in refused.value.reason
    settings = trust_module.TrustSettings.from_env({"DYNAFED_FN_CA_BUNDLE": str(ca.bundle)})
    probe_http_source(tls_server + "f", {}, allow=allow, allow_private=True, verify=settings.verify())
