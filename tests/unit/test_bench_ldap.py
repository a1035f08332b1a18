# -*- coding: utf-8 -*-
"""The reader bench (tests/bench/ldap_bench.py): its ratios, verdicts, table and plot series, and
that its floors read the same entries as the reader (on the seed directory). No timing is asserted."""

from __future__ import annotations

import importlib.util
import json

from bench import ldap_bench, plot_ldap
from support.ldap_backends import usable_backend


def row(seconds: float, peak: float = 100.0) -> dict:
    return {"available": True, "seconds": seconds, "cpu_s": seconds, "peak_rss_mb": peak}


MISSING = {"available": False, "reason": "the reader has no source.backend option yet (only ldap3)"}


def result(users: int, **overrides: dict) -> dict:
    rows = {
        "ldapsearch": row(1.0, 20),
        "ldap3": row(20.0, 300),
        "python-ldap": row(5.0, 250),
        "reader-ldap3": row(21.0, 420),
        "reader-python-ldap": row(6.0, 380),
        "ldapsearch+groups": row(2.0, 20),
        "reader-ldap3+groups": row(30.0, 480),
        "reader-python-ldap+groups": row(8.0, 450),
    }
    rows.update(overrides)
    return {"users": users, "groups": 500, "memberships": 1234, "rows": rows, "ratios": ldap_bench.ratios(rows)}


def test_ratios_compare_each_reader_with_its_floors_of_the_same_read():
    ratios = result(100000)["ratios"]
    assert ratios["reader-python-ldap / ldapsearch"] == 6.0
    assert ratios["reader-python-ldap / python-ldap"] == 1.2
    assert ratios["reader-ldap3 / ldap3"] == 1.05
    assert ratios["reader-ldap3+groups / ldapsearch+groups"] == 15.0
    assert ratios["python-ldap / ldapsearch"] == 5.0
    # a people + groups read is not compared with a floor that read people only
    assert "reader-ldap3+groups / ldap3" not in ratios


def test_a_backend_the_reader_lacks_gives_no_ratio_and_says_not_available():
    measured = result(10000, **{"reader-python-ldap": MISSING, "reader-python-ldap+groups": MISSING})
    assert measured["ratios"]["reader-python-ldap / ldapsearch"] is None
    table = ldap_bench.format_table(measured)
    line = next(text for text in table.splitlines() if text.startswith("reader, backend python-ldap"))
    assert "not available" in line and "source.backend" in line
    ldap3_line = next(text for text in table.splitlines() if text.startswith("reader, backend ldap3"))
    assert "21.00x" in ldap3_line and "1.05x" in ldap3_line  # against ldapsearch, against ldap3's own
    verdicts = ldap_bench.verdicts([measured])
    assert any("1.1x of python-ldap" in v and v.endswith("not measured") for v in verdicts)


def test_verdicts_judge_the_largest_size_and_the_peak_memory():
    small = result(10000, **{"reader-python-ldap": row(1.5)})  # would meet 3x; the largest N counts
    large = result(100000, **{"reader-ldap3+groups": row(30.0, 520)})
    verdicts = ldap_bench.verdicts([large, small])
    assert verdicts[0].startswith("python-ldap reader within 3x of ldapsearch") and verdicts[0].endswith("MISSED")
    assert "6.00x at N=100000" in verdicts[0]
    assert verdicts[1].endswith("MISSED")  # 1.2x > 1.1x
    assert verdicts[2].endswith(": met")  # 1.05x
    assert "520 MiB (reader-ldap3+groups)" in verdicts[3] and verdicts[3].endswith("MISSED")
    json.dumps(verdicts)  # the JSON document carries them


def test_cpu_ratios_count_the_client_and_slapd():
    rows = result(100000)["rows"]
    rows["ldapsearch"] = dict(rows["ldapsearch"], cpu_s=0.5, server_cpu_s=1.5)
    rows["reader-python-ldap"] = dict(rows["reader-python-ldap"], cpu_s=3.0, server_cpu_s=1.0)
    assert ldap_bench.cost(rows["ldapsearch"]) == 2.0
    assert ldap_bench.ratios(rows, ldap_bench.cost)["reader-python-ldap / ldapsearch"] == 2.0
    measured = dict(result(100000), rows=rows, cpu_ratios=ldap_bench.ratios(rows, ldap_bench.cost))
    measured["ratios"] = ldap_bench.ratios(rows)
    assert ldap_bench.verdicts([measured])[0].startswith(
        "python-ldap reader within 3x of ldapsearch (at 100k): 6.00x (CPU 2.00x) at N=100000"
    )
    line = next(text for text in ldap_bench.format_table(measured).splitlines() if "backend python-ldap" in text)
    assert "6.00x" in line and "2.00x" in line


def test_plot_series_are_ordered_by_size_and_skip_what_was_not_measured():
    results = [result(50000), result(10000, **{"reader-python-ldap": MISSING}), result(100000)]
    assert plot_ldap.series(results, "ldap3", "seconds") == ([10000, 50000, 100000], [20.0, 20.0, 20.0])
    assert plot_ldap.series(results, "reader-python-ldap", "peak_rss_mb") == ([50000, 100000], [380, 380])
    results[0]["rows"]["ldap3"] = dict(results[0]["rows"]["ldap3"], server_cpu_s=1.5)
    assert plot_ldap.series(results, "ldap3", "cost") == ([10000, 50000, 100000], [20.0, 21.5, 20.0])


def test_the_plot_draws_every_row_kind(tmp_path):
    rows = {key: row(1.0 + n) for n, (key, *_rest) in enumerate(ldap_bench.ROWS)}
    results = [
        {"users": users, "groups": 500, "memberships": 1, "rows": dict(rows, **{"reader-ldap3": MISSING})}
        for users in (10000, 50000)
    ]
    path = plot_ldap.plot(results, tmp_path / "plot.png")
    if importlib.util.find_spec("matplotlib") is None:  # requirements/bench.txt, not the tests' venv
        assert path is None and not (tmp_path / "plot.png").exists()
        return
    assert path == str(tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes().startswith(b"\x89PNG")


def test_the_floors_read_every_entry_the_reader_reads(slapd):
    people = "ou=people,dc=example,dc=org"
    searches = [(people, ldap_bench.USER_FILTER)]
    args = (slapd.uri, slapd.bind_dn, slapd.bind_pw)
    from ansible_collections.idsync.provisioning.plugins.module_utils import _ldap

    options = {"server_uri": [slapd.uri], "bind_dn": slapd.bind_dn, "bind_pw": slapd.bind_pw, "user_base_dn": people}
    users = len(_ldap.read_directory(_ldap.LdapOptions.from_getter(options.get)).users)
    assert users > 3
    assert ldap_bench.floor_ldap3(*args, searches) == users
    assert ldap_bench.run_reader(*args, "ldap3", people, None) == users
    usable_backend("python-ldap")  # fails in the dev venv without it; skips where it is left out on purpose
    assert ldap_bench.floor_python_ldap(*args, searches) == users
