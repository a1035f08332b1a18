# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An administrator's ldap3 client for the test directories (Samba AD, 389-DS): add, modify,
rename, delete and search entries, bypassing the code under test.

A subclass sets ``bind_dn``, ``bind_pw``, ``error_class`` and ``_admin_server()``, and has
``start()`` (returning itself) and ``stop()``: ``with Server(...) as server:`` runs one.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import ldap3

SCOPES = {"sub": ldap3.SUBTREE, "one": ldap3.LEVEL, "base": ldap3.BASE}


class LdapAdmin:
    bind_dn = ""
    bind_pw = ""
    base_dn = ""
    error_class: type[Exception] = RuntimeError
    _connection: ldap3.Connection | None = None

    def _admin_server(self) -> ldap3.Server:
        raise NotImplementedError

    def start(self):
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def _steps(self, *steps):
        """Run the ``(name, callable)`` steps of a start in order, timing each in ``self.timings``;
        on any failure (or Ctrl-C) stop what was started and raise. Returns self."""
        timings = self.__dict__.setdefault("timings", {})
        try:
            for name, step in steps:
                started = time.monotonic()
                step()
                timings[name] = round(time.monotonic() - started, 3)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_bound(self, timeout: float, ready, what: str, log_tail) -> None:
        """Poll until ``ready()`` (the process is up; it may raise) and an administrator's bind works;
        after ``timeout`` seconds raise ``error_class`` naming ``what`` with ``log_tail()``."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if ready():
                try:
                    self.connection()
                    return
                except ldap3.core.exceptions.LDAPException as exc:
                    last = exc
            time.sleep(0.1)
        raise self.error_class(f"{what} did not answer within {timeout:.0f} s ({last}):\n{log_tail()}")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def connection(self) -> ldap3.Connection:
        """A bound connection (opened once, reused). Raw names: no schema checks by ldap3."""
        if self._connection is None or self._connection.closed:
            connection = ldap3.Connection(
                self._admin_server(),
                user=self.bind_dn,
                password=self.bind_pw,
                raise_exceptions=True,
                receive_timeout=30,
                check_names=False,
            )
            connection.open()
            connection.bind()
            self._connection = connection
        return self._connection

    def close_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.unbind()

    def _do(self, what: str, call, *args, **kwargs) -> None:
        try:
            call(*args, **kwargs)
        except ldap3.core.exceptions.LDAPException as exc:
            raise self.error_class(f"{what}: {exc}") from None

    def add(self, dn: str, object_class: list[str] | str, attributes: dict[str, Any] | None = None) -> str:
        self._do(f"add {dn}", self.connection().add, dn, object_class, attributes or {})
        return dn

    def modify(self, dn: str, changes: dict[str, list]) -> None:
        """``changes``: ``{attr: [(ldap3.MODIFY_REPLACE, [values])]}`` as ldap3 takes them."""
        self._do(f"modify {dn}", self.connection().modify, dn, changes)

    def replace(self, dn: str, **values: Any) -> None:
        self.modify(dn, {k: [(ldap3.MODIFY_REPLACE, v if isinstance(v, list) else [v])] for k, v in values.items()})

    def rename(self, dn: str, new_rdn: str, new_superior: str | None = None) -> str:
        """modrdn (a move with ``new_superior``); returns the new DN. The entry keeps its id."""
        what = f"rename {dn} -> {new_rdn},{new_superior or '(same parent)'}"
        self._do(what, self.connection().modify_dn, dn, new_rdn, new_superior=new_superior)
        return f"{new_rdn},{new_superior or dn.split(',', 1)[1]}"

    def delete(self, dn: str) -> None:
        self._do(f"delete {dn}", self.connection().delete, dn)

    def search(
        self, base: str | None = None, search_filter: str = "(objectClass=*)", attributes=("*",), scope: str = "sub"
    ) -> tuple[list[tuple[str, dict[str, list[bytes]]]], list[str]]:
        """``(entries, references)``, paged: entries as ``(dn, raw attributes)``, continuation refs as URLs."""
        entries, references = [], []
        for item in self.connection().extend.standard.paged_search(
            base or self.base_dn, search_filter, SCOPES[scope], attributes=list(attributes), paged_size=500,
            generator=True,
        ):  # fmt: skip
            if item["type"] == "searchResEntry":
                entries.append((item["dn"], dict(item["raw_attributes"])))
            elif item["type"] == "searchResRef":
                references.extend(item["uri"])
        return entries, references
