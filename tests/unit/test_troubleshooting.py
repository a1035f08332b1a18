# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/troubleshooting.md quotes what the code prints, and the code prints what it quotes.

Each connection, TLS and bind failure is produced for real, on 127.0.0.1 only: a name under
``.invalid``, a closed port, a port whose accept queue is full (connect timeout), TLS servers
with certificates made here (self-signed, for another name, expired), the real slapd fixture
for a bad bind, a loopback HTTP server for 401 / 403 / read timeouts. Each message must match
its template in the code (``CONNECTION_MESSAGES`` in ``_ldap``, ``TRANSPORT_MESSAGES`` and
``STATUS_MESSAGES`` in ``_http``), and the page must quote every template, and nothing else,
in its ``text`` blocks of those sections.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import socket
import ssl
import string
import threading
from pathlib import Path

import pytest
from support.http_faults import Reply, ScriptedHttpServer
from support.playbook import REPO_ROOT, run_playbook

from ansible_collections.idsync.provisioning.plugins.lookup.ldap_source import unknown_options_message
from ansible_collections.idsync.provisioning.plugins.module_utils import _http, _ldap
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError

DOC = REPO_ROOT / "docs" / "troubleshooting.md"
CHECKED_SECTIONS = ("Cannot reach the directory", "Bind errors", "Certificate errors", "Errors from the SCIM service")
WRONG_PASSWORD = "Wr0ng-S3cret!"

LDAP_TEMPLATES = _ldap.CONNECTION_MESSAGES
HTTP_TEMPLATES = {**_http.TRANSPORT_MESSAGES, **{f"status_{k}": v for k, v in _http.STATUS_MESSAGES.items()}}


# -- the page --------------------------------------------------------------------------------
def text_blocks(section: str | None = None) -> list[str]:
    """The lines of the ```text blocks of the page, or of one ``## section`` of it."""
    text = DOC.read_text(encoding="utf-8")
    if section is not None:
        match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
        assert match, f"docs/troubleshooting.md has no section '## {section}'"
        text = match.group(1)
    return [line for block in re.findall(r"^```text\n(.*?)^```", text, re.M | re.S) for line in block.splitlines()]


def pattern(template: str) -> re.Pattern:
    """A regex for what ``template.format(...)`` prints: literal parts exact, fields anything,
    a field used twice the same both times; an optional ``METHOD /path: `` or ``ldap_source: `` in front."""
    parts = [r"(?:[A-Z]+ /\S*: |ldap_source: )?"]
    seen: set[str] = set()
    for literal, field, _spec, conversion in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if field is None:
            continue
        if field in seen:
            parts.append(f"(?P={field})")
            continue
        seen.add(field)
        parts.append(f"(?P<{field}>'[^']*')" if conversion == "r" else f"(?P<{field}>.*?)")
    return re.compile("".join(parts) + "$")


def quoted_lines() -> list[str]:
    return [line for section in CHECKED_SECTIONS for line in text_blocks(section)]


@pytest.mark.parametrize("name", sorted(LDAP_TEMPLATES))
def test_the_page_quotes_every_directory_message(name):
    regex = pattern(LDAP_TEMPLATES[name])
    assert any(regex.match(line) for line in quoted_lines()), f"docs/troubleshooting.md does not quote {name}"


@pytest.mark.parametrize("name", sorted(HTTP_TEMPLATES))
def test_the_page_quotes_every_http_message(name):
    regex = pattern(HTTP_TEMPLATES[name])
    assert any(regex.match(line) for line in quoted_lines()), f"docs/troubleshooting.md does not quote {name}"


def test_every_quoted_connection_message_is_one_the_code_prints():
    templates = [pattern(t) for t in (*LDAP_TEMPLATES.values(), *HTTP_TEMPLATES.values())]
    stale = [line for line in quoted_lines() if not any(regex.match(line) for regex in templates)]
    assert stale == []


def assert_prints(template: str, message: str, **values) -> None:
    """``message`` is ``template`` filled in; the fields given have these values."""
    match = pattern(template).match(message)
    assert match, f"{message!r}\n does not follow\n{template!r}"
    for field, expected in values.items():
        assert match.group(field) == str(expected), (field, message)


# -- real failures ---------------------------------------------------------------------------
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def full_port():
    """A port that accepts no more connections: its accept queue is full, so a connect times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=2)
    try:
        yield port
    finally:
        filler.close()
        listener.close()


def make_cert(directory: Path, name: str, san: list, *, expired: bool = False) -> tuple[str, str]:
    """A self-signed certificate (usable as its own CA) made with ``cryptography``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017 - keep in step with the 3.10 modules
    if expired:
        not_before, not_after = now - datetime.timedelta(days=3), now - datetime.timedelta(days=1)
    else:
        not_before, not_after = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_file), str(key_file)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    from cryptography import x509

    directory = tmp_path_factory.mktemp("certs")
    loopback = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    return {
        "self_signed": make_cert(directory, "loopback", loopback),
        "other_name": make_cert(directory, "other.example", [x509.DNSName("other.example")]),
        "expired": make_cert(directory, "expired", loopback, expired=True),
    }


class TlsListener:
    """Accepts TLS on 127.0.0.1 and says nothing: enough for a client's handshake to fail."""

    def __init__(self, cert_file: str, key_file: str):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_file, key_file)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while True:
            try:
                conn, _address = self.sock.accept()
            except OSError:
                return
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except OSError:
                conn.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.sock.close()


def ldap_error(**values) -> str:
    values.setdefault("user_base_dn", "dc=example,dc=org")
    values.setdefault("connect_timeout", 2)
    with pytest.raises(ProvisioningError) as caught:
        _ldap.read_directory(_ldap.LdapOptions.from_getter(values.get))
    return caught.value.message


def http_error(url: str, **client) -> ProvisioningError:
    client.setdefault("retries", 0)
    with pytest.raises(ProvisioningError) as caught:
        _http.HttpClient(url, **client).request("GET", "/Users")
    return caught.value


# -- the directory ---------------------------------------------------------------------------
def test_ldap_host_that_does_not_resolve():
    message = ldap_error(server_uri=["ldap://ldap.example.invalid"])
    assert_prints(_ldap.LDAP_HOST_UNKNOWN, message, host="ldap.example.invalid")
    assert "invalid server address" not in message


def test_ldap_refused_connection():
    port = closed_port()
    assert_prints(_ldap.LDAP_REFUSED, ldap_error(server_uri=[f"ldap://127.0.0.1:{port}"]), host="127.0.0.1", port=port)


def test_ldap_connect_timeout(full_port):
    message = ldap_error(server_uri=[f"ldap://127.0.0.1:{full_port}"], connect_timeout=1)
    assert_prints(_ldap.LDAP_CONNECT_TIMEOUT, message, host="127.0.0.1", port=full_port, seconds=1)


def test_ldap_every_server_failing_lists_each():
    first = closed_port()
    message = ldap_error(server_uri=[f"ldap://127.0.0.1:{first}", "ldap://ldap.example.invalid"])
    assert_prints(_ldap.LDAP_SERVERS_UNREACHABLE, message, count=2)
    assert _ldap.LDAP_REFUSED.format(host="127.0.0.1", port=first) in message
    assert _ldap.LDAP_HOST_UNKNOWN.format(host="ldap.example.invalid") in message


def test_ldap_untrusted_certificate_on_ldaps_and_starttls(slapd):
    port = slapd.ldaps_uri.rsplit(":", 1)[1]
    assert_prints(_ldap.LDAP_TLS_UNTRUSTED, ldap_error(server_uri=[slapd.ldaps_uri]), host="127.0.0.1", port=port)
    message = ldap_error(server_uri=[slapd.uri], start_tls=True)
    assert_prints(_ldap.LDAP_TLS_UNTRUSTED, message, host="127.0.0.1", port=slapd.port)
    assert "self-signed certificate in certificate chain" in message


def test_ldap_certificate_for_another_name(certs):
    cert, key = certs["other_name"]
    with TlsListener(cert, key) as server:
        message = ldap_error(server_uri=[f"ldaps://127.0.0.1:{server.port}"], ca_path=cert)
    assert_prints(_ldap.LDAP_TLS_NAME_MISMATCH, message, host="127.0.0.1", port=server.port, names="other.example")


def test_ldap_other_tls_failure(certs):
    cert, key = certs["expired"]
    with TlsListener(cert, key) as server:
        message = ldap_error(server_uri=[f"ldaps://127.0.0.1:{server.port}"], ca_path=cert)
    assert_prints(_ldap.LDAP_TLS_FAILED, message, host="127.0.0.1", port=server.port, reason="certificate has expired")


def test_ldap_bad_credentials_name_the_dn_and_the_server_not_the_password(slapd):
    message = ldap_error(server_uri=[slapd.uri], bind_dn=slapd.reader_dn, bind_pw=WRONG_PASSWORD)
    assert_prints(_ldap.LDAP_BIND_INVALID, message, bind_dn=repr(slapd.reader_dn), server=slapd.uri, detail="")
    assert WRONG_PASSWORD not in message and slapd.reader_pw not in message


def test_ldap_bind_dn_without_password(slapd):
    message = ldap_error(server_uri=[slapd.uri], bind_dn=slapd.reader_dn)
    assert_prints(_ldap.LDAP_BIND_NO_PASSWORD, message, bind_dn=repr(slapd.reader_dn), server=slapd.uri)


# -- HTTP targets ----------------------------------------------------------------------------
def test_http_host_that_does_not_resolve():
    error = http_error("https://scim.example.invalid/scim/v2")
    assert_prints(_http.HTTP_HOST_UNKNOWN, error.message, host="scim.example.invalid")
    assert error.message.startswith("GET /Users: ")


def test_http_refused_connection():
    port = closed_port()
    error = http_error(f"http://127.0.0.1:{port}")
    assert_prints(_http.HTTP_REFUSED, error.message, host="127.0.0.1", port=port)


def test_http_connect_timeout(full_port):
    error = http_error(f"http://127.0.0.1:{full_port}", timeout=(1, 1))
    assert_prints(_http.HTTP_CONNECT_TIMEOUT, error.message, host="127.0.0.1", port=full_port)


def test_http_read_timeout():
    with ScriptedHttpServer() as server:
        server.script(Reply(200, {}, delay=1.0))
        error = http_error(server.url, timeout=(2, 0.2))
    assert_prints(_http.HTTP_READ_TIMEOUT, error.message, host="127.0.0.1", port=server.port)


@pytest.mark.parametrize(
    ("cert", "trusted", "template", "values"),
    [
        ("self_signed", False, _http.HTTP_TLS_UNTRUSTED, {"reason": "self-signed certificate"}),
        ("other_name", True, _http.HTTP_TLS_NAME_MISMATCH, {}),
        ("expired", True, _http.HTTP_TLS_FAILED, {"reason": "certificate has expired"}),
    ],
)
def test_http_tls_failures(certs, cert, trusted, template, values):
    cert_file, key_file = certs[cert]
    with ScriptedHttpServer(certfile=cert_file, keyfile=key_file) as server:
        error = http_error(server.url, ca_path=cert_file if trusted else None)
        assert server.requests == []
    assert_prints(template, error.message, host="127.0.0.1", port=server.port, **values)


@pytest.mark.parametrize(("status", "credentials"), [(401, "token"), (403, "user name and password")])
def test_http_refused_credentials_and_operations(status, credentials):
    token = "t0ken-never-shown"
    auth = _http.bearer_auth(token) if credentials == "token" else ("svc", WRONG_PASSWORD)
    with ScriptedHttpServer() as server:
        server.script(Reply(status, {"detail": "Authorization failure"}))
        error = http_error(server.url + "/scim/v2", auth=auth, secrets=[token, WRONG_PASSWORD])
    assert error.status == status
    server_url = f"http://127.0.0.1:{server.port}"
    values = {"credentials": credentials} if status == 401 else {}
    assert_prints(_http.STATUS_MESSAGES[status], error.message, server=server_url, **values)
    assert error.message.startswith(f"GET /Users: {status} Authorization failure; {server_url} ")
    assert token not in error.message and WRONG_PASSWORD not in error.message


# -- the lookup's unknown options and the sync summary ---------------------------------------
def test_the_quoted_unknown_option_message_is_the_lookups():
    row = re.search(r"`(ldap_source: unknown option [^`]*?)\.\.\.`", DOC.read_text(encoding="utf-8"))
    assert row, "docs/troubleshooting.md does not quote the lookup's unknown option message"
    known = list(_ldap.source_argument_spec())
    assert unknown_options_message(["user_group"], known).startswith(row.group(1))


HEADLINE_PLAY = """
- hosts: localhost
  gather_facts: false
  vars:
    sync_target: scim
    sync_fail_on_errors: false
  tasks:
    - name: Report each case
      ansible.builtin.include_tasks: "{{ report_tasks }}"
      vars:
        sync_result:
          changed: "{{ case.changed }}"
          report:
            check_mode: false
            counts: {create_user: "{{ case.created }}"}
            actions: []
            failed: "{{ case.failures | length }}"
            failures: "{{ case.failures }}"
      loop: "{{ cases }}"
      loop_control:
        loop_var: case
"""


def test_the_summary_headline_says_when_a_run_failed(tmp_path):
    failure = {"kind": "create_user", "object_type": "user", "name": "zoe", "error": "POST /Users: 409 taken"}
    cases = [
        {"changed": True, "created": 3, "failures": []},
        {"changed": False, "created": 0, "failures": []},
        {"changed": True, "created": 3, "failures": [failure, dict(failure, name="ann")]},
        {"changed": False, "created": 0, "failures": [failure]},
    ]
    result = run_playbook(
        tmp_path,
        HEADLINE_PLAY,
        extra_vars={"cases": cases, "report_tasks": os.path.join(REPO_ROOT, "roles/sync/tasks/report.yml")},
        env={"ANSIBLE_ROLES_PATH": str(REPO_ROOT / "roles")},
    )
    assert result.rc == 0, result.text
    headlines = re.findall(r'"msg": \[\s*"(scim sync: [^"]*)"', result.stdout)
    assert headlines == [
        "scim sync: changes applied",
        "scim sync: nothing to change",
        "scim sync: 2 failed, the other changes applied",
        "scim sync: 1 failed, nothing else to change",
    ]
    assert text_blocks("Other messages") == headlines
