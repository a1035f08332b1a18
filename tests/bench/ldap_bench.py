# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make bench`, the directory reader (issue 13, item 4): the reader against its floors, per backend.

For each directory size N (the bench directory of ``directory.py``: N people and 500 groups,
loaded into slapd with slapadd) it reads the N people, paged (1,000 a page), with:

- ``ldapsearch`` (OpenLDAP's C client, output to /dev/null): the floor of any client;
- ldap3's own paged search (``extend.standard.paged_search``), values decoded to str;
- python-ldap's own paged search (``search_ext`` + ``SimplePagedResultsControl``), values
  decoded to str;
- the collection's reader (``_ldap.read_directory``, its public interface) on each backend
  (``source.backend``); a backend the reader does not offer yet is "not available";

then once more the people and the groups (what a sync reads) with ``ldapsearch`` and the reader
on each backend. Every measurement runs in a fresh process of its own, so its peak RSS is its
own; seconds are from connecting to the last entry decoded (interpreter start and imports not
counted). Nothing is asserted: the ratios that matter are measured in the same run and printed,
with the targets of issue 13, as one table per N, written as JSON and plotted (time and peak
memory against N, matplotlib from requirements/bench.txt).

    python tests/bench/ldap_bench.py [--sizes 10000,50000,100000] [--repeat 1] [--profile]
    BENCH_LDAP_SIZES=10000 python tests/bench/ldap_bench.py          # about 2 minutes (full: 20)
    python tests/bench/ldap_bench.py --sizes 50000 --profile          # + a cProfile of each Python row
    python tests/bench/ldap_bench.py --sizes 10000 --rows ldap3,reader-ldap3 --commit HEAD

``--profile`` runs each Python row a second time under cProfile (those seconds are not in the
table) and writes ``.build/bench/ldap-profile-<row>-<N>.txt``, the top functions by own time.
``--collections DIR`` measures the collection found under DIR (an ``ansible_collections`` tree,
e.g. a ``git archive`` of a commit) instead of the checkout.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
OUT_DIR = REPO_ROOT / ".build" / "bench"
BASE_LDIF = REPO_ROOT / "tests" / "data" / "ldap" / "00-base.ldif"
DEFAULT_COLLECTIONS = REPO_ROOT / ".build" / "collections"
DEFAULT_SIZES = "10000,50000,100000"
PAGE = 1000
GROUPS = 500
ATTRIBUTES = ["*", "entryUUID"]  # what the reader asks for (plus the disabled rule's attribute)
USER_FILTER = "(objectClass=inetOrgPerson)"
GROUP_FILTER = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"

# The rows of a table: (key, label, kind, backend). Order is the order printed.
ROWS = [
    ("ldapsearch", "ldapsearch (C client)", "ldapsearch", None),
    ("ldap3", "ldap3 bare paged search", "floor", "ldap3"),
    ("python-ldap", "python-ldap bare paged search", "floor", "python-ldap"),
    # the same with the cyclic garbage collector paused, as the reader may run
    ("ldap3-gc-paused", "ldap3 paged search, gc paused", "floor-gc-paused", "ldap3"),
    ("python-ldap-gc-paused", "python-ldap paged search, gc paused", "floor-gc-paused", "python-ldap"),
    ("reader-ldap3", "reader, backend ldap3", "reader", "ldap3"),
    ("reader-python-ldap", "reader, backend python-ldap", "reader", "python-ldap"),
    ("ldapsearch+groups", "ldapsearch, people + groups", "ldapsearch", None),
    ("reader-ldap3+groups", "reader ldap3, people + groups", "reader", "ldap3"),
    ("reader-python-ldap+groups", "reader python-ldap, people + groups", "reader", "python-ldap"),
]
# The targets of issue 13 as (row, against, at most, what the issue says)
TARGETS = [
    ("reader-python-ldap", "ldapsearch", 3.0, "python-ldap reader within 3x of ldapsearch (at 100k)"),
    ("reader-python-ldap", "python-ldap", 1.1, "python-ldap reader within 1.1x of python-ldap's paged search"),
    ("reader-ldap3", "ldap3", 1.1, "ldap3 reader within 1.1x of ldap3's paged search"),
]
MEMORY_TARGET_MB = 500.0  # peak RSS of a 100k-user read


# -- the measured code (run in a worker process, one per measurement) ------------------------
def _text(value: bytes) -> str | bytes:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:  # a binary value (jpegPhoto) stays bytes; the bench directory has none
        return value


def _decoded(attributes: dict) -> dict[str, list[str | bytes]]:
    """Every value as str, as the reader gives them (the floors' share of the work)."""
    try:
        return {name: [value.decode("utf-8") for value in values] for name, values in attributes.items()}
    except UnicodeDecodeError:
        return {name: [_text(value) for value in values] for name, values in attributes.items()}


def floor_ldap3(uri: str, bind_dn: str, bind_pw: str, searches: list[tuple[str, str]]) -> int:
    """ldap3's own paged search, nothing else: raw values decoded to str and kept."""
    import ldap3

    # check_names=False and no schema: ldap3's fastest settings (its schema formatting costs more)
    server = ldap3.Server(uri, get_info=ldap3.NONE)
    connection = ldap3.Connection(server, bind_dn, bind_pw, auto_bind=True, check_names=False, read_only=True)
    entries = []
    for base, search_filter in searches:
        for entry in connection.extend.standard.paged_search(
            base, search_filter, attributes=ATTRIBUTES, paged_size=PAGE, generator=True
        ):
            if entry.get("type") == "searchResEntry":
                entries.append((entry["dn"], _decoded(entry["raw_attributes"])))
    connection.unbind()
    return len(entries)


def floor_python_ldap(uri: str, bind_dn: str, bind_pw: str, searches: list[tuple[str, str]]) -> int:
    """python-ldap's own paged search (RFC 2696 control, one result3 per page), values to str."""
    import ldap
    from ldap.controls import SimplePagedResultsControl

    connection = ldap.initialize(uri)
    connection.protocol_version = 3
    connection.set_option(ldap.OPT_REFERRALS, 0)
    connection.simple_bind_s(bind_dn, bind_pw)
    entries = []
    for base, search_filter in searches:
        control = SimplePagedResultsControl(True, size=PAGE, cookie="")
        while True:
            message = connection.search_ext(base, ldap.SCOPE_SUBTREE, search_filter, ATTRIBUTES, serverctrls=[control])
            _type, data, _msgid, controls = connection.result3(message)
            entries.extend((dn, _decoded(attributes)) for dn, attributes in data if dn is not None)
            cookie = next((c.cookie for c in controls if c.controlType == SimplePagedResultsControl.controlType), b"")
            if not cookie:
                break
            control.cookie = cookie
    connection.unbind_s()
    return len(entries)


def reader_available(backend: str) -> tuple[bool, str]:
    """Whether the reader offers ``backend`` (the ``source.backend`` option), and if not why."""
    from ansible_collections.idsync.provisioning.plugins.module_utils import _ldap

    if "backend" in {f.name for f in dataclasses.fields(_ldap.LdapOptions)}:
        return True, ""
    if backend == "ldap3":
        return True, ""  # the only backend before source.backend existed
    return False, "the reader has no source.backend option yet (only ldap3)"


def run_reader(uri: str, bind_dn: str, bind_pw: str, backend: str, people: str, groups: str | None) -> int:
    """The collection's reader through its public interface, with the backend chosen by option."""
    from ansible_collections.idsync.provisioning.plugins.module_utils import _ldap

    values: dict[str, Any] = {
        "server_uri": [uri],
        "bind_dn": bind_dn,
        "bind_pw": bind_pw,
        "user_base_dn": people,
        "group_base_dn": groups,
        "page_size": PAGE,
    }
    if "backend" in {f.name for f in dataclasses.fields(_ldap.LdapOptions)}:
        values["backend"] = backend
    directory = _ldap.read_directory(_ldap.LdapOptions.from_getter(values.get))
    return len(directory.users) + len(directory.groups)


def _rss_mb() -> float:
    """This process's resident set now (Linux /proc), in MiB."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1048576


def worker(spec: dict) -> dict:
    """One measurement in this (fresh) process: imports first, then the timed read."""
    sys.path.insert(0, spec["collections"])
    kind, backend = spec["kind"], spec["backend"]
    searches = [(spec["people"], USER_FILTER)] + ([(spec["groups"], GROUP_FILTER)] if spec["groups"] else [])
    args = (spec["uri"], spec["bind_dn"], spec["bind_pw"])
    if kind.startswith("floor"):
        __import__("ldap3" if backend == "ldap3" else "ldap")
        function = floor_ldap3 if backend == "ldap3" else floor_python_ldap

        def call():
            if kind == "floor-gc-paused":
                gc.disable()
            try:
                return function(*args, searches)
            finally:
                gc.enable()
    else:
        available, reason = reader_available(backend)
        if not available:
            return {"available": False, "reason": reason}

        def call():
            return run_reader(*args, backend, spec["people"], spec["groups"])

    baseline = _rss_mb()
    profiler = None
    if spec.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    count = call()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "available": True,
        "seconds": seconds,
        "cpu_s": after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime,
        "entries": count,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "start_rss_mb": baseline,
    }
    if profiler is not None:
        profiler.disable()
        import pstats

        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(30)
        Path(spec["profile"]).write_text(f"{seconds:.3f} s under cProfile\n" + text.getvalue())
    return result


# -- the harness --------------------------------------------------------------------------------
def server_cpu_s(pid: int | None) -> float | None:
    """CPU seconds slapd (``pid``) has used so far (user + system, /proc), None when unreadable."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait(process: subprocess.Popen) -> tuple[int, float, float]:
    """Wait for ``process``; (exit status, its own peak RSS in MiB, its CPU seconds) from wait4."""
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def measure_ldapsearch(ldap, searches: list[tuple[str, str]]) -> dict:
    """ldapsearch of each (base, filter), paged, to /dev/null: total seconds, largest peak RSS."""
    seconds, peak, cpu = 0.0, 0.0, 0.0
    for base, search_filter in searches:
        command = [
            "ldapsearch", "-x", "-LLL", "-H", ldap.uri, "-D", ldap.bind_dn, "-w", ldap.bind_pw,
            "-b", base, "-E", f"pr={PAGE}/noprompt", search_filter, *ATTRIBUTES,
        ]  # fmt: skip
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        code, rss, used = _wait(process)
        seconds += time.perf_counter() - started
        cpu += used
        if code != 0:
            raise RuntimeError(f"{' '.join(command[:4])} ... exited {code}")
        peak = max(peak, rss)
    return {"available": True, "seconds": seconds, "cpu_s": cpu, "peak_rss_mb": peak}


def measure_python(spec: dict) -> dict:
    """One Python row in a fresh interpreter (this one), its result as JSON on stdout."""
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
        stdout=subprocess.PIPE,
        text=True,
    )
    output = process.stdout.read()
    code, rss, _cpu = _wait(process)
    if code != 0:
        raise RuntimeError(f"bench worker {spec['kind']} {spec['backend']} exited {code}")
    result = json.loads(output.strip().splitlines()[-1])
    if result.get("available"):
        result["peak_rss_mb"] = max(result["peak_rss_mb"], rss)
    return result


def bench_slapd(workdir: Path, ldif: Path):
    """A slapd of the seed's base entries and the bench LDIF. The bench LDIF goes in with
    ``slapadd -q`` and the time a large load needs on a busy machine (the test fixture gives
    slapadd 60 s, which 50,000 people overran on the shared build machine)."""
    from support.slapd import SLAPADD, SlapdServer

    class BenchSlapd(SlapdServer):
        def _prepare(self):
            fresh = not os.path.exists(os.path.join(self.db_dir, "data.mdb"))
            super()._prepare()
            if fresh:
                command = [SLAPADD, "-q", "-f", self.conf_file, "-l", str(ldif)]
                subprocess.run(command, check=True, capture_output=True, timeout=3600)

    return BenchSlapd(workdir, [str(BASE_LDIF)], size_limit=PAGE)


def bench_size(
    users: int, work: Path, collections: str, repeat: int = 1, profile: Path | None = None, only: set | None = None
) -> dict:
    """Load N people (and the 500 groups) into a new slapd and measure every row there."""
    from bench.directory import GROUPS as GROUPS_DN
    from bench.directory import PEOPLE, BenchDirectory

    directory = BenchDirectory(users, GROUPS)
    started = time.perf_counter()
    ldif = directory.write_ldif(work / f"ldap-bench-{users}.ldif")
    result: dict[str, Any] = {"users": users, "groups": GROUPS, "memberships": directory.memberships, "rows": {}}
    with bench_slapd(work / f"slapd-{users}", ldif) as ldap:
        result["load_s"] = round(time.perf_counter() - started, 1)
        ldif.unlink()
        for attempt in range(repeat):
            for key, _label, kind, backend in ROWS:
                if only and key not in only:
                    continue
                groups = GROUPS_DN if key.endswith("+groups") else None
                server_before = server_cpu_s(ldap.pid)
                if kind == "ldapsearch":
                    searches = [(PEOPLE, USER_FILTER)] + ([(groups, GROUP_FILTER)] if groups else [])
                    measured = measure_ldapsearch(ldap, searches)
                else:
                    spec = {
                        "kind": kind,
                        "backend": backend,
                        "uri": ldap.uri,
                        "bind_dn": ldap.bind_dn,
                        "bind_pw": ldap.bind_pw,
                        "people": PEOPLE,
                        "groups": groups,
                        "collections": collections,
                    }
                    measured = measure_python(spec)
                    if profile and attempt == 0 and measured.get("available"):
                        spec["profile"] = str(profile / f"ldap-profile-{key}-{users}.txt")
                        measure_python(spec)
                server_after = server_cpu_s(ldap.pid)
                if measured.get("available") and server_before is not None and server_after is not None:
                    measured["server_cpu_s"] = server_after - server_before
                result["rows"][key] = _best(result["rows"].get(key), measured)
                print(f"  N={users} {key}: {_cell(result['rows'][key])}", flush=True)
    result["ratios"] = ratios(result["rows"])
    result["cpu_ratios"] = ratios(result["rows"], cost)
    return result


def _best(previous: dict | None, measured: dict) -> dict:
    """The fastest of the repeats (the least disturbed by the other work on the machine)."""
    measured = {k: round(v, 3) if isinstance(v, float) else v for k, v in measured.items()}
    if previous is None or not previous.get("available"):
        return measured
    if not measured.get("available"):
        return previous
    best = measured if measured["seconds"] < previous["seconds"] else previous
    return dict(best, peak_rss_mb=max(previous["peak_rss_mb"], measured["peak_rss_mb"]))


def _cell(row: dict) -> str:
    if not row.get("available"):
        return f"not available ({row.get('reason', '')})"
    return f"{row['seconds']:.2f} s, peak RSS {row['peak_rss_mb']:.0f} MiB"


def wall(row: dict) -> float:
    return row["seconds"]


def cost(row: dict) -> float:
    """CPU seconds of the client and of slapd for a read: what the wall time is on an idle machine,
    and far less disturbed by the other work on a shared one."""
    return row.get("cpu_s", 0.0) + row.get("server_cpu_s", 0.0)


def ratios(rows: dict[str, dict], measure=wall) -> dict[str, float | None]:
    """Every reader row against every floor row of the same read, where both were measured."""
    out: dict[str, float | None] = {}
    for key, _label, kind, _backend in ROWS:
        if kind != "reader":
            continue
        suffix = "+groups" if key.endswith("+groups") else ""
        floors = ["ldapsearch" + suffix] + ([] if suffix else [r[0] for r in ROWS if r[2].startswith("floor")])
        for floor in floors:
            row, base = rows.get(key) or {}, rows.get(floor) or {}
            value = None
            if row.get("available") and base.get("available") and measure(base) > 0:
                value = round(measure(row) / measure(base), 2)
            out[f"{key} / {floor}"] = value
    for floor in [r[0] for r in ROWS if r[2].startswith("floor")]:
        row, base = rows.get(floor) or {}, rows.get("ldapsearch") or {}
        if row.get("available") and base.get("available") and measure(base) > 0:
            out[f"{floor} / ldapsearch"] = round(measure(row) / measure(base), 2)
    return out


def verdicts(results: list[dict]) -> list[str]:
    """The targets of issue 13 at the largest N measured, each as met / missed / not measured
    (judged on wall seconds, with the CPU ratio beside it)."""
    if not results:
        return []
    largest = max(results, key=lambda r: r["users"])
    lines = []
    for row, floor, limit, text in TARGETS:
        value = largest["ratios"].get(f"{row} / {floor}")
        state = "not measured" if value is None else ("met" if value <= limit else "MISSED")
        shown = "-" if value is None else f"{value:.2f}x"
        by_cpu = (largest.get("cpu_ratios") or {}).get(f"{row} / {floor}")
        cpu_text = "" if by_cpu is None else f" (CPU {by_cpu:.2f}x)"
        lines.append(f"{text}: {shown}{cpu_text} at N={largest['users']} (target <= {limit}x): {state}")
    for backend in ("python-ldap", "ldap3"):  # against the stricter floor: no cyclic GC during the read
        value = largest["ratios"].get(f"reader-{backend} / {backend}-gc-paused")
        by_cpu = (largest.get("cpu_ratios") or {}).get(f"reader-{backend} / {backend}-gc-paused")
        if value is not None:
            cpu_text = "" if by_cpu is None else f" (CPU {by_cpu:.2f}x)"
            lines.append(f"{backend} reader against {backend} with gc paused: {value:.2f}x{cpu_text} (no target)")
    peaks = [
        (key, row["peak_rss_mb"])
        for key, row in largest["rows"].items()
        if key.startswith("reader") and row.get("available")
    ]
    if peaks:
        key, peak = max(peaks, key=lambda item: item[1])
        state = "met" if peak < MEMORY_TARGET_MB else "MISSED"
        lines.append(
            f"peak memory of a reader run: {peak:.0f} MiB ({key}) at N={largest['users']} "
            f"(target < {MEMORY_TARGET_MB:.0f} MB): {state}"
        )
    return lines


def _ratio(row: dict, base: dict | None, measure) -> str:
    if not base or not base.get("available") or base is row or measure(base) <= 0:
        return ""
    return f"{measure(row) / measure(base):.2f}x"


def format_table(result: dict) -> str:
    """One N as a table: wall seconds against ldapsearch, against the library's own floor and
    against that floor with the collector paused; the same by CPU seconds (client + slapd); the
    CPU of each side and the peak RSS."""
    rows = result["rows"]
    lines = [
        f"### directory reader, N={result['users']} people ({result['groups']} groups, "
        f"{result['memberships']} memberships)",
        f"{'':<36} {'wall':>7} {'-------- wall / --------':>24} {'--------- CPU / --------':>24}"
        f" {'client':>6} {'slapd':>6} {'peak':>5}",
        f"{'read':<36} {'s':>7} {'ldapsrch':>8} {'floor':>7} {'gc off':>7} {'ldapsrch':>8} {'floor':>7} {'gc off':>7}"
        f" {'CPU s':>6} {'CPU s':>6} {'MiB':>5}",
    ]
    for key, label, kind, backend in ROWS:
        row = rows.get(key)
        if row is None:
            continue
        if not row.get("available"):
            lines.append(f"{label:<36} not available: {row.get('reason', '')}")
            continue
        suffix = "+groups" if key.endswith("+groups") else ""
        against = rows.get("ldapsearch" + suffix)
        own = rows.get(backend) if kind == "reader" and not suffix else None
        paused = rows.get(f"{backend}-gc-paused") if kind == "reader" and not suffix else None
        lines.append(
            f"{label:<36} {row['seconds']:>7.2f} {_ratio(row, against, wall):>8} {_ratio(row, own, wall):>7}"
            f" {_ratio(row, paused, wall):>7} {_ratio(row, against, cost):>8} {_ratio(row, own, cost):>7}"
            f" {_ratio(row, paused, cost):>7}"
            f" {row.get('cpu_s', 0):>6.2f} {row.get('server_cpu_s', 0):>6.2f} {row['peak_rss_mb']:>5.0f}"
        )
    return "\n".join(lines)


def archive(commit: str, root: Path) -> tuple[str, str]:
    """The collection of ``commit`` (``git archive``) as an ansible_collections tree under ``root``."""
    target = root / "ansible_collections" / "idsync" / "provisioning"
    target.mkdir(parents=True)
    revision = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", commit], capture_output=True, text=True, check=True
    ).stdout.strip()
    tar = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", revision, "plugins"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=tar.stdout, check=True)
    return str(root), f"commit {revision}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=os.environ.get("BENCH_LDAP_SIZES") or DEFAULT_SIZES)
    parser.add_argument("--repeat", type=int, default=int(os.environ.get("BENCH_LDAP_REPEAT", 1)))
    parser.add_argument("--profile", action="store_true", default=bool(os.environ.get("BENCH_LDAP_PROFILE")))
    parser.add_argument("--collections", default=os.environ.get("BENCH_COLLECTIONS") or str(DEFAULT_COLLECTIONS))
    parser.add_argument(
        "--rows", help=f"comma-separated rows to measure (default all: {', '.join(r[0] for r in ROWS)})"
    )
    parser.add_argument("--commit", help="measure the collection of this commit (git archive), not the checkout")
    parser.add_argument("--out-dir", default=str(OUT_DIR))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if str(REPO_ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(REPO_ROOT / "tests"))
    only = {r for r in (args.rows or "").split(",") if r}
    unknown = only - {r[0] for r in ROWS}
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}")
    sizes = [int(n) for n in args.sizes.split(",") if n.strip()]
    if not sizes:
        parser.error("--sizes (BENCH_LDAP_SIZES) names no size")
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []
    started = time.perf_counter()
    path = out_dir / "ldap-reader.json"
    with tempfile.TemporaryDirectory(prefix="idsync-bench-ldap-") as workdir:
        collections, measured = args.collections, "the checkout"
        if args.commit:
            collections, measured = archive(args.commit, Path(workdir) / "collections")
        print(f"directory reader bench: N={args.sizes}, the reader of {measured}", flush=True)
        for users in sizes:
            results.append(
                bench_size(users, Path(workdir), collections, args.repeat, out_dir if args.profile else None, only)
            )
            print("\n" + format_table(results[-1]) + "\n", flush=True)
            summary = verdicts(results)
            document = {  # written after every size: a later failure keeps what was measured
                "sizes": sizes,
                "page_size": PAGE,
                "repeat": args.repeat,
                "reader": measured,
                "seconds": round(time.perf_counter() - started, 1),
                "results": results,
                "targets": summary,
            }
            path.write_text(json.dumps(document, indent=2))
    print("\n".join(summary))
    print(f"\nwritten to {path}")
    from bench import plot_ldap

    written = plot_ldap.plot(results, out_dir / "ldap-reader.png")
    print(
        f"plot: {written}" if written else "plot: matplotlib is not installed (pip install -r requirements/bench.txt)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
