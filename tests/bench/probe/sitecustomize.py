# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bench's probe inside a ``*_sync`` module process run by ansible-playbook (``make bench``).

The bench runs modules with an interpreter wrapper that puts this directory on PYTHONPATH, so
Python imports this file at start-up. In the process of the module ``IDSYNC_BENCH_MODULE``
(``scim_sync``), when ``IDSYNC_BENCH_PROBE`` names a file, it times the phases of the run from
outside the collection's code, by wrapping, once they are imported:

- ``_ldap.read_directory`` (directory read), ``_mapping.map_users`` / ``map_groups`` (map),
- ``_engine.plan`` (target read + plan) and ``_engine.apply`` (writes),
- ``requests.Session.request`` (every HTTP request: method, URL, status, start, end, and for
  member changes how many members its body carried),

and at exit writes them as JSON with the process's peak RSS. ``IDSYNC_BENCH_PROFILE`` names a
file for a cProfile of the whole module run. Nothing happens in any other process.
"""

from __future__ import annotations

import atexit
import importlib.abc
import json
import os
import resource
import sys
import threading
import time

OUT = os.environ.get("IDSYNC_BENCH_PROBE")
PROFILE = os.environ.get("IDSYNC_BENCH_PROFILE")
PACKAGE = "ansible_collections.idsync.provisioning.plugins.module_utils."
STARTED = time.monotonic()


class _Probe:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.phases: dict[str, list[float]] = {}  # name -> [start, end] (first start, last end)
        self.spent: dict[str, float] = {}  # name -> seconds inside it (summed over calls)
        self.requests: list[dict] = []
        self.local = threading.local()
        self.patched: set[str] = set()

    def timed(self, name: str, function):
        probe = self

        def wrapper(*args, **kwargs):
            start = time.monotonic()
            try:
                return function(*args, **kwargs)
            finally:
                end = time.monotonic()
                with probe.lock:
                    span = probe.phases.setdefault(name, [start, end])
                    span[0], span[1] = min(span[0], start), max(span[1], end)
                    probe.spent[name] = probe.spent.get(name, 0.0) + end - start

        wrapper.__wrapped__ = function
        return wrapper

    def patch(self, module) -> None:
        name = module.__name__.rsplit(".", 1)[-1]
        targets = {
            "_ldap": [("read_directory", "directory_read")],
            "_mapping": [("map_users", "map"), ("map_groups", "map")],
            "_engine": [("plan", "plan"), ("apply", "apply")],
        }.get(name, [])
        for attribute, phase in targets:
            if f"{name}.{attribute}" not in self.patched and hasattr(module, attribute):
                setattr(module, attribute, self.timed(phase, getattr(module, attribute)))
                self.patched.add(f"{name}.{attribute}")

    def patch_requests(self, module) -> None:
        if "requests" in self.patched:
            return
        self.patched.add("requests")
        original = module.Session.request
        probe = self

        def request(session, method, url, *args, **kwargs):
            start = time.monotonic()
            status = None
            try:
                response = original(session, method, url, *args, **kwargs)
                status = response.status_code
                return response
            finally:
                end = time.monotonic()
                entry = {"method": str(method).upper(), "url": str(url).split("?", 1)[0], "status": status}
                entry.update(start=round(start, 6), end=round(end, 6), members=_members_in(kwargs))
                with probe.lock:
                    probe.requests.append(entry)

        module.Session.request = request

    def dump(self) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        data = {
            "started": STARTED,
            "ended": time.monotonic(),
            "phases": self.phases,
            "spent": self.spent,
            "requests": self.requests,
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        }
        with open(OUT, "w", encoding="utf-8") as handle:
            json.dump(data, handle)


def _members_in(kwargs: dict) -> int | None:
    """How many members a member-change body carries (SCIM PATCH ops, Dropbox members), else None."""
    body = kwargs.get("data")
    if not body or b"member" not in (body if isinstance(body, bytes) else str(body).encode()):
        return None
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    count = 0
    for operation in data.get("Operations") or []:
        if isinstance(operation, dict) and str(operation.get("path", "")).startswith("members"):
            value = operation.get("value")
            count += len(value) if isinstance(value, list) else 1
    for key in ("members", "users"):
        if isinstance(data.get(key), list):
            count += len(data[key])
    if isinstance(data.get("members"), list) and "displayName" in data:  # a SCIM PUT of the whole group
        return -len(data["members"])
    return count or None


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps the loader of the modules the probe patches, so they are patched right after import."""

    WATCHED = {PACKAGE + "_ldap", PACKAGE + "_mapping", PACKAGE + "_engine", "requests.sessions"}

    def __init__(self, probe: _Probe) -> None:
        self.probe = probe
        self.busy = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.WATCHED or self.busy:
            return None
        self.busy = True
        try:
            import importlib.util

            spec = importlib.util.find_spec(fullname)
        finally:
            self.busy = False
        if spec is None or spec.loader is None:
            return None
        loader, probe = spec.loader, self.probe

        class Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                loader.exec_module(module)
                if fullname == "requests.sessions":
                    probe.patch_requests(module)
                else:
                    probe.patch(module)

        spec.loader = Loader()
        return spec


def _in_module_process() -> bool:
    """The process of the module the bench measures (``IDSYNC_BENCH_MODULE``, e.g. ``scim_sync``)."""
    module = os.environ.get("IDSYNC_BENCH_MODULE", "")
    return bool(OUT and module) and os.path.basename(sys.argv[0]) == f"AnsiballZ_{module}.py"


if _in_module_process():
    _PROBE = _Probe()
    sys.meta_path.insert(0, _Finder(_PROBE))
    atexit.register(_PROBE.dump)
    if PROFILE:
        import cProfile

        _PROFILER = cProfile.Profile()
        _PROFILER.enable()
        atexit.register(lambda: (_PROFILER.disable(), _PROFILER.dump_stats(PROFILE)))
