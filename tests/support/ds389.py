# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real 389 Directory Server for the tests (Debian ``389-ds-base``), on free 127.0.0.1 ports.

    with DS389() as ds:            # dscreate (through lib389, no systemd), listen on 127.0.0.1, start
        ds.uri, ds.suffix, ds.bind_dn, ds.bind_pw
        ds.add("uid=jsmith,ou=People," + ds.suffix, ["inetOrgPerson"], {"uid": "jsmith", ...})

``dscreate from-file`` insists on systemctl even with ``systemd = False``; lib389 skips systemd
when ``DirSrv.with_systemd`` answers False, so it runs through a small wrapper with Debian's
``/usr/bin/python3`` (where lib389 lives, not in a venv). Each instance has a name of its own
(``idsync<hex>``), so runs never collide; ``stop()`` ends the server by the pid in its pidfile and
removes every ``*/slapd-NAME`` it made (under /etc/dirsrv, /var/lib/dirsrv, /var/log/dirsrv,
/run/dirsrv, /run/lock/dirsrv).

Needs root and ``389-ds-base`` (``make system-packages``): a missing piece fails, it never skips.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import signal
import subprocess
import textwrap
import time

import ldap3

from support.ldap_admin import LdapAdmin
from support.slapd import _free_port, _proc_alive, _proc_cmdline, _read_pidfile

SYSTEM_PYTHON = "/usr/bin/python3"
DSCREATE = "/usr/sbin/dscreate"
NS_SLAPD = "/usr/sbin/ns-slapd"
SYSTEM_PACKAGES_HINT = "run `make system-packages` (as root) to install 389-ds-base"
DIRECTORY_MANAGER = "cn=Directory Manager"

# dscreate run with systemd left out (see the module docstring)
WRAPPER = textwrap.dedent(
    """\
    import runpy, sys
    import lib389
    lib389.DirSrv.with_systemd = lambda self: False
    sys.argv = ["dscreate", "from-file", sys.argv[1]]
    runpy.run_path("/usr/sbin/dscreate", run_name="__main__")
    """
)

INF = textwrap.dedent(
    """\
    [general]
    full_machine_name = localhost
    start = False
    systemd = False
    selinux = False
    strict_host_checking = False

    [slapd]
    instance_name = {name}
    port = {port}
    secure_port = {secure_port}
    root_password = {password}
    self_sign_cert = False

    [backend-userroot]
    suffix = {suffix}
    sample_entries = no
    create_suffix_entry = yes
    """
)


class DS389Error(RuntimeError):
    """dscreate or ns-slapd failed; the message carries their output."""


def check_requirements() -> None:
    missing = [path for path in (DSCREATE, NS_SLAPD, SYSTEM_PYTHON) if not os.path.exists(path)]
    if missing:
        raise DS389Error(f"389-DS tests need {', '.join(missing)}: {SYSTEM_PACKAGES_HINT}")
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import lib389"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        raise DS389Error(
            f"{SYSTEM_PYTHON} cannot import lib389 ({probe.stderr.strip()[-300:]}): {SYSTEM_PACKAGES_HINT}"
        )
    if os.geteuid() != 0:
        raise DS389Error("389-DS instances are created under /etc/dirsrv and /var/lib/dirsrv: run these tests as root")


class DS389(LdapAdmin):
    """One 389-DS instance, created fresh by ``start()`` and removed by ``stop()``."""

    bind_dn = DIRECTORY_MANAGER

    def __init__(self, workdir, suffix: str = "dc=example,dc=com", *, start_timeout: float = 300.0):
        self.workdir = os.path.abspath(str(workdir))
        self.suffix = self.base_dn = suffix
        self.name = "idsync" + secrets.token_hex(4)
        self.bind_pw = "Directory-" + secrets.token_hex(8)
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.secure_port: int | None = None
        self.pid: int | None = None
        self.config_dir = f"/etc/dirsrv/slapd-{self.name}"
        self.pidfile = f"/run/dirsrv/slapd-{self.name}.pid"
        self.timings: dict[str, float] = {}

    @property
    def uri(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def __repr__(self) -> str:
        return f"<DS389 {self.name} {self.uri} pid={self.pid}>"

    def instance_paths(self) -> list[str]:
        """Everything dscreate and ns-slapd make for this instance."""
        patterns = [
            f"/etc/dirsrv/slapd-{self.name}",
            f"/var/lib/dirsrv/slapd-{self.name}",
            f"/var/log/dirsrv/slapd-{self.name}",
            f"/run/lock/dirsrv/slapd-{self.name}",
            f"/run/dirsrv/slapd-{self.name}.*",
            f"/run/slapd-{self.name}.socket",
        ]
        return sorted(path for pattern in patterns for path in glob.glob(pattern))

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> DS389:
        check_requirements()
        os.makedirs(self.workdir, exist_ok=True)
        return self._steps(("create", self._create), ("start", self._spawn))

    def _create(self) -> None:
        self.port, self.secure_port = _free_port(), _free_port()
        while self.secure_port == self.port:
            self.secure_port = _free_port()
        inf = os.path.join(self.workdir, "instance.inf")
        wrapper = os.path.join(self.workdir, "dscreate_nosystemd.py")
        with open(inf, "w", encoding="utf-8") as handle:
            handle.write(
                INF.format(
                    name=self.name,
                    port=self.port,
                    secure_port=self.secure_port,
                    password=self.bind_pw,
                    suffix=self.suffix,
                )
            )
        os.chmod(inf, 0o600)
        with open(wrapper, "w", encoding="utf-8") as handle:
            handle.write(WRAPPER)
        proc = subprocess.run(
            [SYSTEM_PYTHON, wrapper, inf], capture_output=True, text=True, timeout=600, check=False, cwd=self.workdir
        )
        if proc.returncode != 0:
            raise DS389Error(
                f"dscreate from-file failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
            )
        # listen on the loopback only (dscreate has no setting for it)
        dse = os.path.join(self.config_dir, "dse.ldif")
        with open(dse, encoding="utf-8") as handle:
            text = handle.read()
        marker = "dn: cn=config\n"
        if marker not in text:
            raise DS389Error(f"{dse} has no cn=config entry")
        text = text.replace(marker, marker + "nsslapd-listenhost: 127.0.0.1\n", 1)
        with open(dse, "w", encoding="utf-8") as handle:
            handle.write(text)

    def _spawn(self) -> None:
        log = os.path.join(self.workdir, "ns-slapd.out")
        with open(log, "ab") as out:
            # it daemonizes: the pid comes from its pidfile
            proc = subprocess.run(
                [NS_SLAPD, "-D", self.config_dir, "-i", self.pidfile],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=300, check=False,
            )  # fmt: skip
        if proc.returncode != 0:
            raise DS389Error(f"ns-slapd exited {proc.returncode}:\n{self._log_tail(log)}")

        def ready() -> bool:
            pid = _read_pidfile(self.pidfile)
            if pid is not None and _proc_alive(pid):
                self.pid = pid
            return self.pid is not None

        self._wait_until_bound(self.start_timeout, ready, f"389-DS {self.name}", lambda: self._log_tail(log))

    def _log_tail(self, path: str) -> str:
        texts = []
        for name in (path, f"/var/log/dirsrv/slapd-{self.name}/errors"):
            with contextlib.suppress(OSError), open(name, encoding="utf-8", errors="replace") as handle:
                texts.append(f"--- {name}\n" + "".join(handle.readlines()[-30:]))
        return "\n".join(texts) or "(no log)"

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the pid of this instance (checked against its command line), wait, remove it."""
        self.close_connection()
        pid = self.pid or _read_pidfile(self.pidfile)
        self.pid = None
        if pid is not None and _proc_alive(pid) and f"slapd-{self.name}" in " ".join(_proc_cmdline(pid)):
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline and _proc_alive(pid):
                    time.sleep(0.05)
                if not _proc_alive(pid):
                    break
        for path in self.instance_paths():
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)

    # -- the Directory Manager's client (support.ldap_admin) ----------------------------------
    error_class = DS389Error

    def _admin_server(self) -> ldap3.Server:
        return ldap3.Server("127.0.0.1", port=self.port, connect_timeout=5, get_info=ldap3.NONE)


# -- the directory the tests read ----------------------------------------------------------------
READER_PW = "Reader-" + secrets.token_hex(6)
READER_SIZE_LIMIT = 20  # what the reader account may get from one unpaged search
# uid -> (given name, surname, locked with nsAccountLock)
PEOPLE_LAYOUT = {
    "jsmith": ("Janet", "Smith", False),
    "mlopez": ("María", "López", False),
    "tnguyen": ("Tuan", "Nguyen", False),
    "locked": ("Lucas", "Locked", True),
}
BULK_SIZE = 25  # with the people above: more entries than the reader's size limit and the page size
# uniqueMember groups (groupOfUniqueNames); jsmith's value carries the optional unique id (#'0101'B)
GROUPS_LAYOUT = {
    "Accounting": ["jsmith", "mlopez", "locked"],
    "Engineering": ["tnguyen", "mlopez"],
}


def populate(ds: DS389) -> dict[str, str]:
    """OUs, people (one locked), uniqueMember groups, a bulk of users, and a size-limited reader
    account allowed to read them (nsUniqueId and nsAccountLock are operational: named in the ACI)."""
    suffix = ds.suffix
    people, groups, services = f"ou=People,{suffix}", f"ou=Groups,{suffix}", f"ou=Services,{suffix}"
    for ou, dn in (("People", people), ("Groups", groups), ("Services", services)):
        ds.add(dn, "organizationalUnit", {"ou": ou})
    dns = {"people": people, "groups": groups}
    for uid, (given, surname, locked) in PEOPLE_LAYOUT.items():
        attributes = {
            "uid": uid, "givenName": given, "sn": surname, "cn": f"{given} {surname}",
            "displayName": f"{given} {surname}", "mail": f"{uid}@example.com",
        }  # fmt: skip
        if locked:
            attributes["nsAccountLock"] = "true"
        dns[uid] = ds.add(f"uid={uid},{people}", ["inetOrgPerson"], attributes)
    for i in range(1, BULK_SIZE + 1):
        uid = f"bulk{i:02d}"
        dns[uid] = ds.add(f"uid={uid},{people}", ["inetOrgPerson"], {"uid": uid, "cn": f"Bulk {i:02d}", "sn": "Bulk"})
    for name, members in GROUPS_LAYOUT.items():
        values = [dns[m] + ("#'0101'B" if m == "jsmith" else "") for m in members]
        dns[name] = ds.add(f"cn={name},{groups}", ["groupOfUniqueNames"], {"cn": name, "uniqueMember": values})
    reader = f"uid=sync-reader,{services}"
    ds.add(
        reader,
        ["account", "simpleSecurityObject"],
        {"uid": "sync-reader", "userPassword": READER_PW, "nsSizeLimit": str(READER_SIZE_LIMIT)},
    )
    aci = (
        '(targetattr="* || nsUniqueId || nsAccountLock")(version 3.0; acl "idsync reader"; '
        f'allow (read, search, compare) userdn="ldap:///{reader}";)'
    )
    ds.modify(suffix, {"aci": [(ldap3.MODIFY_ADD, [aci])]})
    ds.reader_dn, ds.reader_pw = reader, READER_PW
    dns["reader"] = reader
    return dns
