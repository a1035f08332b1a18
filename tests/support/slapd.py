# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A throwaway OpenLDAP ``slapd`` for the tests: temp dir, free loopback ports, LDIF seed, TLS.

Use it from pytest through the fixtures in ``ldap_fixtures.py``, or directly::

    with SlapdServer("/tmp/dir") as server:      # writes config + TLS, slapadd, starts
        server.uri, server.ldaps_uri, server.ca_file, server.bind_dn, server.bind_pw
        server.modify("dn: uid=jdoe,ou=people,dc=example,dc=org\\nchangetype: modify\\n...")

or from a shell (the server keeps running after the command returns)::

    python tests/support/slapd.py --workdir /tmp/ldap      # prints uri=... pid=... lines
    python tests/support/slapd.py --stop /tmp/ldap

The seed (``tests/data/ldap/*.ldif``) is described in ``tests/data/ldap/README.md``.
Only the standard library is used, so the CLI runs with any Python 3.
"""

import argparse
import base64
import glob
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SEED_DIR = os.path.join(os.path.dirname(HERE), "data", "ldap")
DEFAULT_SEED = sorted(glob.glob(os.path.join(SEED_DIR, "*.ldif")))

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SLAPADD = shutil.which("slapadd") or "/usr/sbin/slapadd"
SCHEMA_DIR = "/etc/ldap/schema"
MODULE_DIR = "/usr/lib/ldap"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis", "msuser")

BASE_DN = "dc=example,dc=org"
BIND_DN = "cn=admin,dc=example,dc=org"
BIND_PW = "admin-secret"
READER_DN = "cn=sync-reader,dc=example,dc=org"
READER_PW = "reader-secret"

CONF_TEMPLATE = """\
# Written by tests/support/slapd.py
{includes}
modulepath {module_dir}
moduleload back_mdb
moduleload ppolicy

pidfile {pidfile}
argsfile {argsfile}
loglevel none

TLSCACertificateFile {ca_file}
TLSCertificateFile {cert_file}
TLSCertificateKeyFile {key_file}
TLSVerifyClient never

database mdb
maxsize 1073741824
dbnosync
suffix "{base_dn}"
rootdn "{bind_dn}"
rootpw {bind_pw}
directory {db_dir}
index objectClass,uid,mail,cn,member,entryUUID eq
sizelimit size.soft={size_limit} size.hard={size_limit} size.pr={size_limit} size.prtotal=unlimited

overlay ppolicy

access to attrs=userPassword
    by self write
    by anonymous auth
    by * none
access to *
    by * read
"""

SERVER_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


class SlapdError(RuntimeError):
    """slapd or one of the LDAP tools failed; the message carries their output."""


def _run(argv, what, input_text=None, env=None, timeout=60):
    proc = subprocess.run(
        argv,
        input=input_text.encode("utf-8") if isinstance(input_text, str) else input_text,
        stdin=None if input_text is not None else subprocess.DEVNULL,
        capture_output=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        out = proc.stdout.decode("utf-8", "replace").strip()
        raise SlapdError(f"{what} failed (exit {proc.returncode}): {err}\n{out}")
    return proc.stdout.decode("utf-8", "replace")


def generate_tls(directory):
    """Write a throwaway CA and a server certificate for 127.0.0.1/localhost with ``openssl``.

    Returns ``(ca_file, cert_file, key_file)``. Files already there are reused, so one
    directory can serve many servers (the pytest fixtures share one per session).
    """
    directory = os.path.abspath(str(directory))
    ca_file = os.path.join(directory, "ca.pem")
    cert_file = os.path.join(directory, "server.pem")
    key_file = os.path.join(directory, "server.key")
    if all(os.path.exists(p) for p in (ca_file, cert_file, key_file)):
        return ca_file, cert_file, key_file
    os.makedirs(directory, exist_ok=True)
    ca_key = os.path.join(directory, "ca.key")
    csr = os.path.join(directory, "server.csr")
    ext = os.path.join(directory, "server.ext")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run(
        ["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_file, "-days", "3650"]
        + ["-subj", "/O=idsync tests/CN=idsync test CA", "-addext", "basicConstraints=critical,CA:TRUE"]
        + ["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        "openssl req (CA)",
    )
    _run(
        ["openssl", "req", "-new", *ec, "-keyout", key_file, "-out", csr, "-subj", "/O=idsync tests/CN=127.0.0.1"],
        "openssl req (server)",
    )
    with open(ext, "w", encoding="ascii") as handle:
        handle.write(SERVER_EXTENSIONS)
    _run(
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca_file, "-CAkey", ca_key, "-days", "3650"]
        + ["-set_serial", "0x" + secrets.token_hex(8), "-extfile", ext, "-out", cert_file],
        "openssl x509 (sign server certificate)",
    )
    return ca_file, cert_file, key_file


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _proc_alive(pid):
    """True if the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return [arg.decode("utf-8", "replace") for arg in handle.read().split(b"\0") if arg]
    except OSError:
        return []


def _read_pidfile(path):
    try:
        with open(path, encoding="ascii") as handle:
            text = handle.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def parse_ldif(text):
    """Parse ``ldapsearch -LLL -o ldif-wrap=no`` output into ``[(dn, {attr: [value, ...]})]``.

    Base64 values are decoded; a value that is not UTF-8 stays ``bytes``.
    """
    entries = []
    for block in text.split("\n\n"):
        dn, attrs = None, {}
        for line in block.splitlines():
            if not line or line.startswith("#"):
                continue
            if line.startswith(" ") and attrs:  # folded line (when not run with ldif-wrap=no)
                raise SlapdError(f"folded LDIF is not supported: {line!r}")
            attr, sep, value = line.partition(":")
            if not sep:
                continue
            if value.startswith(":"):
                raw = base64.b64decode(value[1:].strip())
                try:
                    value = raw.decode("utf-8")
                except UnicodeDecodeError:
                    value = raw
            else:
                value = value[1:] if value.startswith(" ") else value
            if attr.lower() == "dn" and dn is None:
                dn = value
            else:
                attrs.setdefault(attr, []).append(value)
        if dn is not None:
            entries.append((dn, attrs))
    return entries


class SlapdServer:
    """One slapd process in ``workdir``, seeded from LDIF, on free 127.0.0.1 ports.

    ``SlapdServer(workdir, ldif_files=None, *, size_limit=500, tls_dir=None, start_timeout=20.0)``.
    ``ldif_files`` defaults to the seed in ``tests/data/ldap`` (name order, one slapadd each).
    ``tls_dir``: where the CA/server certificate live (made there if absent); default
    ``workdir/tls``. Attributes after ``start()``: ``uri``, ``ldaps_uri``, ``port``,
    ``tls_port``, ``pid``, ``ca_file``; always: ``base_dn``, ``bind_dn``, ``bind_pw`` (rootdn),
    ``reader_dn``, ``reader_pw`` (a non-root account in the seed), ``workdir``.
    """

    base_dn = BASE_DN
    bind_dn = BIND_DN
    bind_pw = BIND_PW
    reader_dn = READER_DN
    reader_pw = READER_PW

    def __init__(self, workdir, ldif_files=None, *, size_limit=500, tls_dir=None, start_timeout=20.0):
        self.workdir = os.path.abspath(str(workdir))
        self.ldif_files = [os.path.abspath(str(p)) for p in (DEFAULT_SEED if ldif_files is None else ldif_files)]
        self.size_limit = int(size_limit)
        self.tls_dir = os.path.abspath(str(tls_dir)) if tls_dir else os.path.join(self.workdir, "tls")
        self.start_timeout = float(start_timeout)
        self.conf_file = os.path.join(self.workdir, "slapd.conf")
        self.db_dir = os.path.join(self.workdir, "db")
        self.pidfile = os.path.join(self.workdir, "slapd.pid")
        self.argsfile = os.path.join(self.workdir, "slapd.args")
        self.log_file = os.path.join(self.workdir, "slapd.log")
        self.ldap_conf = os.path.join(self.workdir, "ldap.conf")
        self.ca_file = self.cert_file = self.key_file = None
        self.port = self.tls_port = None
        self.pid = None
        self._proc = None

    # -- addresses -----------------------------------------------------------------------------
    @property
    def uri(self):
        return f"ldap://127.0.0.1:{self.port}" if self.port else None

    @property
    def ldaps_uri(self):
        return f"ldaps://127.0.0.1:{self.tls_port}" if self.tls_port else None

    def __repr__(self):
        return f"<SlapdServer {self.uri} pid={self.pid} {self.workdir}>"

    # -- set-up ----------------------------------------------------------------------------------
    def _prepare(self):
        """Config, TLS and the seeded database; done once per work dir."""
        os.makedirs(self.workdir, exist_ok=True)
        self.ca_file, self.cert_file, self.key_file = generate_tls(self.tls_dir)
        includes = "\n".join(f"include {SCHEMA_DIR}/{name}.schema" for name in SCHEMAS)
        conf = CONF_TEMPLATE.format(
            includes=includes,
            module_dir=MODULE_DIR,
            pidfile=self.pidfile,
            argsfile=self.argsfile,
            ca_file=self.ca_file,
            cert_file=self.cert_file,
            key_file=self.key_file,
            base_dn=self.base_dn,
            bind_dn=self.bind_dn,
            bind_pw=self.bind_pw,
            db_dir=self.db_dir,
            size_limit=self.size_limit,
        )
        with open(self.conf_file, "w", encoding="utf-8") as handle:
            handle.write(conf)
        if not os.path.exists(os.path.join(self.db_dir, "data.mdb")):
            os.makedirs(self.db_dir, exist_ok=True)
            for path in self.ldif_files:
                _run([SLAPADD, "-f", self.conf_file, "-l", path], f"slapadd -l {path}")

    def _write_ldap_conf(self):
        with open(self.ldap_conf, "w", encoding="utf-8") as handle:
            handle.write(
                f"# ldap-utils settings for this server: export LDAPCONF={self.ldap_conf}\n"
                f"URI {self.uri}\nBASE {self.base_dn}\nTLS_CACERT {self.ca_file}\nTLS_REQCERT demand\n"
            )

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self):
        """Prepare (first time), start slapd and wait until it answers. Returns self."""
        if self.is_running():
            return self
        self._prepare()
        reuse_ports = self.port is not None
        last_error = None
        for _attempt in range(5):
            if not reuse_ports:
                self.port, self.tls_port = _free_port(), _free_port()
                while self.tls_port == self.port:
                    self.tls_port = _free_port()
            try:
                self._spawn()
                self._write_ldap_conf()
                return self
            except SlapdError as exc:
                last_error = exc
                if reuse_ports or "already in use" not in str(exc):
                    raise
        raise last_error

    def _spawn(self):
        if _read_pidfile(self.pidfile) is not None:
            old = _read_pidfile(self.pidfile)
            if _proc_alive(old) and self.conf_file in _proc_cmdline(old):
                raise SlapdError(f"a slapd for {self.workdir} is already running (pid {old})")
            os.unlink(self.pidfile)  # stale, from a slapd of this work dir that was killed
        urls = f"ldap://127.0.0.1:{self.port}/ ldaps://127.0.0.1:{self.tls_port}/"
        # -d: stay in the foreground (no fork), so this process can wait for it and reap it; level
        # 32768 ("none") writes only the messages logged at any level (start-up errors) to the log.
        argv = [SLAPD, "-f", self.conf_file, "-h", urls, "-d", "32768"]
        with open(self.log_file, "ab") as log:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
            log.write(f"\n--- {stamp} {shlex.join(argv)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True
            )
        try:
            self.pid = self._wait_until_ready()
        except BaseException:
            if self._proc is not None:  # never leave a half-started slapd behind (timeout, Ctrl-C)
                self._proc.kill()
                self._proc.wait()
                self._proc = None
            raise

    def _wait_until_ready(self):
        """Poll (bounded) until the pidfile names our process and both ports answer LDAP."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                raise SlapdError(f"slapd exited during start-up:\n{self._log_tail()}")
            pid = _read_pidfile(self.pidfile)
            if pid == self._proc.pid and _port_answers(self.port) and self._answers():
                return pid
            time.sleep(0.05)
        raise SlapdError(f"slapd did not answer within {self.start_timeout:.0f} s:\n{self._log_tail()}")

    def _answers(self):
        """Both listeners answer a root DSE search (the ldaps one with certificate verification)."""
        try:
            for uri in (self.uri, self.ldaps_uri):
                self.ldap_tool("ldapsearch", "-x", "-H", uri, "-b", "", "-s", "base", "-o", "nettimeout=2", "1.1")
        except (SlapdError, subprocess.TimeoutExpired):
            return False
        return True

    def _log_tail(self, lines=30):
        try:
            with open(self.log_file, encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def is_running(self):
        return self.pid is not None and _proc_alive(self.pid)

    def stop(self, timeout=10.0):
        """SIGTERM the pid this object started (read from the pidfile), wait, then SIGKILL."""
        pid, self.pid = self.pid, None
        if pid is None:
            return
        _terminate(pid, self._proc if self._proc is not None and self._proc.pid == pid else None, timeout)
        self._proc = None
        if _read_pidfile(self.pidfile) == pid:  # left behind only after SIGKILL
            os.unlink(self.pidfile)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # -- clients ---------------------------------------------------------------------------------
    def client_env(self):
        """Environment for ldap-utils: nothing from the caller's LDAP* settings, this CA trusted."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LDAP")}
        env["LDAPTLS_CACERT"] = self.ca_file or ""
        env["LDAPTLS_REQCERT"] = "demand"
        return env

    def ldap_tool(self, tool, *args, input_text=None, timeout=60):
        """Run an ldap-utils program (``ldapsearch``, ``ldapmodify``, ...) and return its stdout."""
        return _run([tool, *args], tool, input_text=input_text, env=self.client_env(), timeout=timeout)

    def _as_root(self):
        if not self.is_running():
            raise SlapdError("slapd is not running")
        return ["-x", "-H", self.uri, "-D", self.bind_dn, "-w", self.bind_pw]

    def add(self, ldif_text):
        """Add the entries in ``ldif_text`` (plain entry records) as the rootdn (ldapadd)."""
        return self.ldap_tool("ldapadd", *self._as_root(), input_text=ldif_text)

    def modify(self, ldif_text):
        """Apply LDIF change records (``changetype: modify|add|delete|modrdn``) as the rootdn."""
        return self.ldap_tool("ldapmodify", *self._as_root(), input_text=ldif_text)

    def delete(self, dn, recursive=False):
        """Delete ``dn`` (with ``recursive=True``, its subtree too) as the rootdn."""
        args = self._as_root() + (["-r"] if recursive else []) + [dn]
        return self.ldap_tool("ldapdelete", *args)

    def rename(self, dn, new_rdn, new_superior=None, delete_old=True):
        """modrdn as the rootdn: ``rename("cn=Sales,ou=groups,...", "cn=Revenue")`` keeps entryUUID."""
        args = self._as_root() + (["-r"] if delete_old else []) + (["-s", new_superior] if new_superior else [])
        return self.ldap_tool("ldapmodrdn", *args, dn, new_rdn)

    def search(self, filterstr="(objectClass=*)", attrs=(), base=None, scope="sub"):
        """Search as the rootdn (paged, no size limit); returns ``[(dn, {attr: [values]})]``."""
        args = self._as_root() + ["-LLL", "-o", "ldif-wrap=no", "-E", "pr=500/noprompt"]
        args += ["-b", base or self.base_dn, "-s", scope, filterstr, *attrs]
        return parse_ldif(self.ldap_tool("ldapsearch", *args))

    def count(self, filterstr="(objectClass=*)", base=None, scope="sub"):
        """Number of entries a rootdn search finds."""
        return len(self.search(filterstr, ["1.1"], base=base, scope=scope))

    def fingerprint(self):
        """``(number of entries, newest entryCSN)``: changes when anything is added, changed or deleted."""
        csns = [attrs.get("entryCSN", [""])[0] for _dn, attrs in self.search(attrs=["entryCSN"])]
        return len(csns), max(csns, default="")

    # -- CLI support -----------------------------------------------------------------------------
    def shell_lines(self):
        values = [
            ("uri", self.uri),
            ("ldaps_uri", self.ldaps_uri),
            ("port", self.port),
            ("tls_port", self.tls_port),
            ("pid", self.pid),
            ("base_dn", self.base_dn),
            ("bind_dn", self.bind_dn),
            ("bind_pw", self.bind_pw),
            ("reader_dn", self.reader_dn),
            ("reader_pw", self.reader_pw),
            ("ca_file", self.ca_file),
            ("ldapconf", self.ldap_conf),
            ("workdir", self.workdir),
        ]
        return [f"{name}={shlex.quote(str(value))}" for name, value in values]


def _terminate(pid, proc=None, timeout=10.0):
    """SIGTERM ``pid``, wait up to ``timeout``, then SIGKILL. ``proc``: its Popen, to reap it."""

    def wait(seconds):
        if proc is not None:
            try:
                proc.wait(timeout=seconds)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not _proc_alive(pid):
                return True
            time.sleep(0.05)
        return not _proc_alive(pid)

    for sig, seconds in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        if wait(seconds):
            break
    if proc is not None and proc.poll() is None:
        proc.wait(timeout=5)


def stop_workdir(workdir, timeout=10.0):
    """Stop the slapd started in ``workdir`` (pid from its pidfile, checked against its command line).

    Returns the pid stopped, or None when no slapd of that work dir was running.
    """
    workdir = os.path.abspath(str(workdir))
    pidfile = os.path.join(workdir, "slapd.pid")
    pid = _read_pidfile(pidfile)
    if pid is None:
        return None
    conf_file = os.path.join(workdir, "slapd.conf")
    cmdline = _proc_cmdline(pid)
    if not _proc_alive(pid) or conf_file not in cmdline or not os.path.basename(cmdline[0]).startswith("slapd"):
        return None  # stale pidfile: the pid is gone or belongs to something else
    _terminate(pid, None, timeout)
    if _read_pidfile(pidfile) == pid:
        os.unlink(pidfile)
    return pid


def main(argv=None):
    parser = argparse.ArgumentParser(description="Start or stop a throwaway slapd with the test seed.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--workdir", help="start a server in DIR (created if missing) and leave it running")
    action.add_argument("--stop", metavar="DIR", help="stop the server started in DIR")
    parser.add_argument("--ldif", action="append", help="seed file (repeatable); default: tests/data/ldap/*.ldif")
    parser.add_argument("--size-limit", type=int, default=500)
    args = parser.parse_args(argv)
    if args.stop:
        pid = stop_workdir(args.stop)
        print("stopped=%s" % (pid if pid is not None else ""))
        return 0
    server = SlapdServer(args.workdir, args.ldif, size_limit=args.size_limit)
    server.start()
    print("\n".join(server.shell_lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
