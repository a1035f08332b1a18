# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real Active Directory for the tests: Samba's AD domain controller, provisioned in a temp dir.

    with SambaAD("/tmp/dir") as ad:     # lock, provision, TLS for 127.0.0.1, start, wait for LDAPS
        ad.ldaps_uri, ad.ca_file, ad.bind_dn, ad.bind_pw, ad.base_dn
        ad.add_ou("OU=Staff," + ad.base_dn)
        ad.add_user("OU=Staff," + ad.base_dn, "jsmith", "Janet", "Smith", mail="jsmith@corp.example")

Samba listens on the fixed ports 127.0.0.1:389 and :636, so only one can run on a machine at a
time: ``start()`` takes an exclusive ``fcntl`` lock on ``LOCK_PATH`` and keeps it until ``stop()``
(other pytest-xdist workers, or other test runs, wait for it). Keep every test that uses it in
one file (``tests/integration/test_samba_ad.py``), so ``--dist loadfile`` runs them on one worker.

Samba refuses simple binds over plain LDAP, and its own certificate names ``<host>.<realm>``: the
server here gets a certificate for 127.0.0.1 signed by a throwaway CA (``slapd.generate_tls``),
and every client verifies it. Samba runs in the foreground in a session of its own; ``stop()``
ends that process group (only the one it started) by its pid.

Needs root and Debian's samba packages (``make system-packages``): a missing piece fails with a
message naming it, it never skips.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import glob
import os
import re
import secrets
import signal
import ssl
import subprocess
import threading
import time
import uuid
from typing import Any

import ldap3

from support.ldap_admin import LdapAdmin
from support.slapd import _port_answers, generate_tls

REALM = "CORP.EXAMPLE"
DOMAIN = "CORP"
DNS_DOMAIN = REALM.lower()
BASE_DN = "DC=corp,DC=example"
ADMIN = f"Administrator@{DNS_DOMAIN}"
LDAP_PORT, LDAPS_PORT = 389, 636
LOCK_PATH = os.path.join("/tmp", "idsync-samba-ad.lock")  # one per machine: the ports are fixed
USER_PASSWORD = "Idsync-User-Pass-1!"  # meets Samba's default complexity rules

# userAccountControl flags (MS-ADTS 2.2.16)
UAC_ACCOUNTDISABLE = 0x2
UAC_NORMAL_ACCOUNT = 0x200

SYSTEM_PACKAGES_HINT = "run `make system-packages` (as root) to install Samba's AD domain controller"

# What a provisioned AD DC needs from Debian, each with the package that ships it.
REQUIRED_FILES = {
    "samba": ["/usr/sbin/samba"],
    "samba-common-bin": ["/usr/bin/samba-tool"],
    "samba-ad-provision": ["/usr/share/samba/setup/ad-schema"],
    "samba-dsdb-modules": ["/usr/lib/*/samba/ldb/samba_dsdb.so"],
    "samba-vfs-modules": ["/usr/lib/*/samba/vfs/acl_xattr.so"],
    "ldb-tools": ["/usr/bin/ldbsearch"],
}


class SambaError(RuntimeError):
    """Samba or one of its tools failed; the message carries their output."""


def missing_packages() -> list[str]:
    """The Debian packages of ``REQUIRED_FILES`` whose files are absent."""
    return sorted(pkg for pkg, patterns in REQUIRED_FILES.items() if not any(glob.glob(p) for p in patterns))


def check_requirements() -> None:
    """Raise ``SambaError`` saying what to install when this machine cannot run an AD DC."""
    missing = missing_packages()
    if missing:
        raise SambaError(f"Samba AD tests need the Debian packages {', '.join(missing)}: {SYSTEM_PACKAGES_HINT}")
    if os.geteuid() != 0:
        raise SambaError("Samba's AD domain controller runs only as root; run the Samba AD tests as root")


# Generous: provisioning takes 4 s on an idle machine, but over 2 minutes was seen on 2 cores at load 16.
TOOL_TIMEOUT = 600.0


def _run(argv: list[str], what: str, timeout: float = TOOL_TIMEOUT) -> str:
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        output = (exc.stderr or b"")[-2000:]
        output = output.decode("utf-8", "replace") if isinstance(output, bytes) else output
        raise SambaError(f"{what} did not end within {timeout:.0f} s (stopped); its last output:\n{output}") from None
    if proc.returncode != 0:
        raise SambaError(
            f"{what} failed (exit {proc.returncode}):\n{proc.stderr.strip()[-3000:]}\n{proc.stdout[-2000:]}"
        )
    return proc.stdout


def guid_text(raw: bytes) -> str:
    """objectGUID bytes as Windows and Samba write them (mixed-endian)."""
    return str(uuid.UUID(bytes_le=raw))


class SambaAD(LdapAdmin):
    """One Samba AD DC for the domain ``corp.example``, provisioned fresh in ``workdir``.

    Attributes: ``base_dn``, ``bind_dn`` (``Administrator@corp.example``), ``bind_pw``, after
    ``start()`` also ``ldaps_uri``, ``ca_file``, ``cert_file``, ``key_file``, ``pid``.
    ``lock_timeout``: how long to wait for another Samba of the tests to end.
    """

    base_dn = BASE_DN
    bind_dn = ADMIN
    ldaps_uri = f"ldaps://127.0.0.1:{LDAPS_PORT}"

    def __init__(self, workdir, tls_dir=None, *, start_timeout: float = 300.0, lock_timeout: float = 900.0):
        self.workdir = os.path.abspath(str(workdir))
        self.tls_dir = os.path.abspath(str(tls_dir)) if tls_dir else os.path.join(self.workdir, "tls")
        self.start_timeout = start_timeout
        self.lock_timeout = lock_timeout
        # a fresh, complex password per domain (upper, lower, digits, symbols)
        self.bind_pw = f"Idsync-{secrets.token_hex(6)}-Adm1n!"
        self.smb_conf = os.path.join(self.workdir, "etc", "smb.conf")
        self.sam_ldb = os.path.join(self.workdir, "private", "sam.ldb")
        self.log_file = os.path.join(self.workdir, "samba.out")
        self.ca_file = self.cert_file = self.key_file = None
        self.pid: int | None = None
        self._proc: subprocess.Popen | None = None
        self._lock_handle = None
        self._previous_holder = ""
        self.timings: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"<SambaAD {self.ldaps_uri} pid={self.pid} {self.workdir}>"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> SambaAD:
        check_requirements()
        return self._steps(
            ("lock", self._lock),
            ("ports", self._check_ports),
            ("provision", self._provision),
            ("tls", self._configure_tls),
            ("start", self._spawn),
        )

    def _check_ports(self) -> None:
        for port in (LDAP_PORT, LDAPS_PORT):
            if not _port_answers(port):
                continue
            left = _samba_left_behind(self._previous_holder)
            if left:
                raise SambaError(
                    f"127.0.0.1:{port} is held by the Samba of an earlier test run that did not stop it "
                    f"({self._previous_holder}): end it by its pid (kill -- -{left} ends its process group)"
                )
            raise SambaError(
                f"127.0.0.1:{port} is already in use by another program (not a Samba of these tests, which would "
                f"hold {LOCK_PATH}); Samba's AD DC needs ports 389 and 636: stop that program "
                f"(ss -ltnp 'sport = :{port}' names it)"
            )

    def _lock(self) -> None:
        handle = open(LOCK_PATH, "a+")  # noqa: SIM115 - held open for the server's lifetime
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    handle.close()
                    raise SambaError(
                        f"another Samba AD of the tests ({holder}) held {LOCK_PATH} for more than "
                        f"{self.lock_timeout:.0f} s; only one can run at a time (fixed ports 389/636)"
                    ) from None
                time.sleep(0.2)
        handle.seek(0)
        # what a run that was killed left here: its Samba may still hold the ports (see _check_ports)
        self._previous_holder = handle.read().strip()
        self._lock_handle = handle
        self._record_holder()

    def _record_holder(self) -> None:
        """The lock file says who holds it: this process, its work dir and, once started, samba's pid."""
        handle = self._lock_handle
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, samba {self.pid or '-'}, {self.workdir}\n")
        handle.flush()

    def _unlock(self) -> None:
        handle, self._lock_handle = self._lock_handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def _provision(self) -> None:
        os.makedirs(self.workdir, exist_ok=True)
        _run(
            [
                "samba-tool", "domain", "provision", f"--targetdir={self.workdir}", f"--realm={REALM}",
                f"--domain={DOMAIN}", "--server-role=dc", "--dns-backend=NONE", f"--adminpass={self.bind_pw}",
                "--option=interfaces=lo", "--option=bind interfaces only=yes",
                # the default services include the file server, which dies at start without a share setup
                "--option=server services=ldap cldap kdc", f"--option=log file={self.workdir}/log.%m",
            ],
            "samba-tool domain provision",
        )  # fmt: skip

    def _configure_tls(self) -> None:
        self.ca_file, self.cert_file, self.key_file = generate_tls(self.tls_dir)
        os.chmod(self.key_file, 0o600)  # Samba refuses a key others can read
        with open(self.smb_conf, encoding="utf-8") as handle:
            conf = handle.read()
        tls = (
            "\ttls enabled = yes\n"
            f"\ttls certfile = {self.cert_file}\n\ttls keyfile = {self.key_file}\n\ttls cafile = {self.ca_file}\n"
        )
        conf = conf.replace("[global]\n", "[global]\n" + tls, 1)
        with open(self.smb_conf, "w", encoding="utf-8") as handle:
            handle.write(conf)

    def _spawn(self) -> None:
        argv = ["samba", "-s", self.smb_conf, "--foreground", "--no-process-group"]
        with open(self.log_file, "ab") as log:
            # a session of its own: samba's workers share its process group, which stop() ends
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True
            )
        self.pid = self._proc.pid
        self._record_holder()

        def ready() -> bool:
            if self._proc.poll() is not None:
                raise SambaError(f"samba exited during start-up (exit {self._proc.returncode}):\n{self._log_tail()}")
            return _port_answers(LDAPS_PORT)

        self._wait_until_bound(self.start_timeout, ready, "Samba's LDAPS", self._log_tail)

    def _log_tail(self, lines: int = 30) -> str:
        texts = []
        for path in [self.log_file, *sorted(glob.glob(os.path.join(self.workdir, "log.*")))]:
            with contextlib.suppress(OSError), open(path, encoding="utf-8", errors="replace") as handle:
                texts.append(f"--- {path}\n" + "".join(handle.readlines()[-lines:]))
        return "\n".join(texts) or "(no log)"

    def stop(self, timeout: float = 15.0) -> None:
        """End the process group this object started (SIGTERM, then SIGKILL), release the lock."""
        self.close_connection()
        proc, self._proc = self._proc, None
        if proc is not None:
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            # the workers may outlive the master by a moment: wait for the group to be gone
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and _group_alive(proc.pid):
                time.sleep(0.05)
            if _group_alive(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        self.pid = None
        self._unlock()

    # -- an administrator's client, over LDAPS with the CA verified -------------------------------
    error_class = SambaError

    def _admin_server(self) -> ldap3.Server:
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=self.ca_file, version=ssl.PROTOCOL_TLS_CLIENT)
        return ldap3.Server("127.0.0.1", port=LDAPS_PORT, use_ssl=True, tls=tls, connect_timeout=5, get_info=ldap3.NONE)

    def add_ou(self, dn: str) -> str:
        return self.add(dn, "organizationalUnit")

    def add_user(
        self,
        parent: str,
        sam: str,
        given: str,
        surname: str,
        mail: str | None = None,
        disabled: bool = False,
        **extra: Any,
    ) -> str:
        """A user with a password (set over LDAPS, as AD requires), enabled unless ``disabled``."""
        display = f"{given} {surname}"
        attributes = {
            "sAMAccountName": sam,
            "userPrincipalName": f"{sam}@{DNS_DOMAIN}",
            "givenName": given,
            "sn": surname,
            "displayName": display,
            "unicodePwd": f'"{USER_PASSWORD}"'.encode("utf-16-le"),
            "userAccountControl": str(UAC_NORMAL_ACCOUNT | (UAC_ACCOUNTDISABLE if disabled else 0)),
            **extra,
        }
        if mail:
            attributes["mail"] = mail
        return self.add(f"CN={escape_rdn(display)},{parent}", "user", attributes)

    def add_group(self, parent: str, name: str, members: list[str] = ()) -> str:
        attributes: dict[str, Any] = {"sAMAccountName": name}
        if members:
            attributes["member"] = list(members)
        return self.add(f"CN={escape_rdn(name)},{parent}", "group", attributes)

    def guids(self, base: str | None = None, search_filter: str = "(|(objectClass=user)(objectClass=group))") -> dict:
        """``{dn: objectGUID}`` under ``base`` as Samba's own tools print the GUIDs: ``ldbsearch``
        reads the database file directly (no LDAP, no client library of ours)."""
        out = _run(
            ["ldbsearch", "-H", self.sam_ldb, "-b", base or self.base_dn, "-s", "sub", search_filter, "objectGUID"],
            "ldbsearch",
        )
        found = {}
        for block in out.split("\n\n"):
            dn = guid = None
            for line in block.splitlines():
                if line.startswith("dn:: "):
                    dn = base64.b64decode(line[5:]).decode("utf-8")
                elif line.startswith("dn: "):
                    dn = line[4:]
                elif line.startswith("objectGUID: "):
                    guid = line[12:].strip().lower()
            if dn and guid:
                found[dn] = guid
        if not found:
            raise SambaError(f"ldbsearch found no objectGUID under {base or self.base_dn}:\n{out[-2000:]}")
        return found


def escape_rdn(value: str) -> str:
    """An RDN value with the DN specials escaped (RFC 4514)."""
    escaped = re.sub(r'([,+"\\<>;=])', r"\\\1", value)
    if escaped.startswith((" ", "#")):
        escaped = "\\" + escaped
    return escaped[:-1] + "\\ " if escaped.endswith(" ") else escaped


def _samba_left_behind(holder: str) -> int | None:
    """The samba pid a lock file's text names, if that process is still a running samba."""
    found = re.search(r"samba (\d+)", holder or "")
    if not found:
        return None
    pid = int(found.group(1))
    try:
        return pid if os.readlink(f"/proc/{pid}/exe").endswith("/samba") else None
    except OSError:
        return None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # zombies of the group count as gone: they hold no port
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


class LdapsTap:
    """An LDAPS relay on a free 127.0.0.1 port that records what clients send, in clear.

    It ends TLS with the test certificate (valid for 127.0.0.1, so clients verify it against
    the same CA) and opens its own verified LDAPS connection upstream. ``sent()`` is every byte
    the clients sent, decrypted: a test counts in it the requests a reader made (for instance
    the attribute descriptions ``member;range=...`` of ranged reads).
    """

    def __init__(self, upstream_port: int, cert_file: str, key_file: str, ca_file: str):
        self.upstream_port = upstream_port
        self.server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_ctx.load_cert_chain(cert_file, key_file)
        self.client_ctx = ssl.create_default_context(cafile=ca_file)
        self._sent = bytearray()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server = None
        self.port: int | None = None

    @property
    def uri(self) -> str:
        return f"ldaps://127.0.0.1:{self.port}"

    def sent(self) -> bytes:
        return bytes(self._sent)

    def clear(self) -> None:
        self._sent.clear()

    def start(self) -> LdapsTap:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._relay, "127.0.0.1", 0, ssl=self.server_ctx), self._loop
        ).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _relay(self, client_reader, client_writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(
                "127.0.0.1", self.upstream_port, ssl=self.client_ctx, server_hostname="127.0.0.1"
            )
        except OSError:
            client_writer.close()
            return

        async def pump(reader, writer, record: bool) -> None:
            try:
                while data := await reader.read(65536):
                    if record:
                        self._sent.extend(data)
                    writer.write(data)
                    await writer.drain()
            except (OSError, ssl.SSLError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    writer.close()

        await asyncio.gather(pump(client_reader, up_writer, True), pump(up_reader, client_writer, False))

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._server.wait_closed(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> LdapsTap:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


# -- the domain the tests read -----------------------------------------------------------------
CORP = f"OU=Corp,{BASE_DN}"
PEOPLE = f"OU=People,{CORP}"
STAFF = f"OU=Staff,{PEOPLE}"
REMOTE = f"OU=Remote,{PEOPLE}"
GROUPS = f"OU=Groups,{CORP}"
BULK = f"OU=Bulk,{CORP}"

# sAMAccountName -> (OU, given name, surname, disabled)
PEOPLE_LAYOUT = {
    "jsmith": (STAFF, "Janet", "Smith", False),
    "mlopez": (STAFF, "María", "López", False),
    "tnguyen": (STAFF, "Tuan", "Nguyen", False),
    "ddisabled": (STAFF, "Dana", "Disabled", True),
    "rkhan": (REMOTE, "Rosa", "Khan", False),
}
BULK_SIZE = 25  # members of Bulk Team: ranged reads of 10 take three rounds (0-9, 10-19, 20-*)
# group -> (user members by sAMAccountName, group members by name); Auditors > Finance > Accounting
GROUPS_LAYOUT = {
    "Accounting": (["jsmith", "mlopez"], []),
    "Finance": (["tnguyen"], ["Accounting"]),
    "Auditors": (["rkhan"], ["Finance"]),
}


def populate(ad: SambaAD) -> dict[str, str]:
    """Write the test domain (OUs, people, nested groups, a 25-member group); returns name -> DN."""
    dns: dict[str, str] = {}
    for ou in (CORP, PEOPLE, STAFF, REMOTE, GROUPS, BULK):
        ad.add_ou(ou)
    for sam, (parent, given, surname, disabled) in PEOPLE_LAYOUT.items():
        dns[sam] = ad.add_user(parent, sam, given, surname, mail=f"{sam}@{DNS_DOMAIN}", disabled=disabled)
    for name, (users, groups) in GROUPS_LAYOUT.items():
        dns[name] = ad.add_group(GROUPS, name, [dns[u] for u in users] + [dns[g] for g in groups])
    bulk = [ad.add_user(BULK, f"bulk{i:02d}", "Bulk", f"User {i:02d}") for i in range(1, BULK_SIZE + 1)]
    dns["Bulk Team"] = ad.add_group(BULK, "Bulk Team", bulk)
    return dns
