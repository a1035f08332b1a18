# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a module run does, for every target: argument spec pieces and the run functions.

Private to this collection. A module is documentation, an argument spec assembled from the
pieces here plus its target's connection spec, and one call to a ``run_*`` function with a
``connector_factory(params) -> Connector``. Errors are ``ProvisioningError`` and are turned
into ``fail_json`` in one place (``_guarded``).
"""

from __future__ import annotations

import contextlib
import json
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.idsync.provisioning.plugins.module_utils import (
    _engine,
    _http,
    _ldap,
    _mapping,
    _secrets,
    _state,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._connector import Connector
from ansible_collections.idsync.provisioning.plugins.module_utils._kit import Target
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError

ConnectorFactory = Callable[[Mapping[str, Any]], Connector]

OPERATIONS = _engine.CAPABILITY_SWITCHES


def policy_argument_spec() -> dict[str, Any]:
    """The deprovisioning and safety policy options of ``*_sync`` modules."""
    return {
        "remove_user_action": {"type": "str", "default": "disable", "choices": ["disable", "delete"]},
        "provision_disabled_users": {"type": "bool", "default": False},
        "ownership": {"type": "str", "default": "linked", "choices": ["linked", "authoritative"]},
        "protected": {"type": "list", "elements": "str", "default": []},
        "max_deletes": {"type": "str"},
        "max_disables": {"type": "str"},
        "max_group_deletes": {"type": "str"},
        "allow_empty_source": {"type": "bool", "default": False},
        "marker_prefix": {"type": "str", "default": "idsync:"},
        "operations": {
            "type": "dict",
            "default": {},
            "options": {name: {"type": "bool", "default": True} for name in OPERATIONS},
        },
    }


# Targets that keep their accounts in a state file instead of listing them (PingID) add these
# options to their sync module (``Target.sync_options``); see verification_policy().
VERIFICATION_ARGUMENT_SPEC = {
    "full_verification": {"type": "bool", "default": False},
    "verify_every_runs": {"type": "int", "default": 24},
    "verify_max_age": {"type": "str", "default": "7d"},
}
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(option: str, text: str | None) -> int | None:
    """``"7d"``, ``"12h"``, ``"90m"``, ``"3600"`` (seconds) -> seconds; ``""``/``"never"``/None -> None."""
    if text is None or str(text).strip().lower() in ("", "never", "none"):
        return None
    value = str(text).strip().lower()
    number, unit = (value[:-1], value[-1]) if value[-1] in DURATION_UNITS else (value, "s")
    if not number.isdigit():
        raise ProvisioningError(
            f"{option}: expected a number of seconds or a duration such as 12h or 7d (units s, m, h, d), got {text!r}"
        )
    return int(number) * DURATION_UNITS[unit]


def verification_policy(params: Mapping[str, Any]) -> dict[str, Any]:
    """The verification options of a target that has them, as Policy fields."""
    if "verify_every_runs" not in params:
        return {}
    every = params["verify_every_runs"]
    return {
        "full_verification": params["full_verification"],
        "verify_every_runs": None if every is not None and every < 0 else every,
        "verify_max_age": parse_duration("verify_max_age", params["verify_max_age"]),
    }


def sync_argument_spec(connection_spec: Mapping[str, Any]) -> dict[str, Any]:
    """Connection + source + mapping + policy: everything a ``<target>_sync`` module takes."""
    spec: dict[str, Any] = dict(connection_spec)
    spec.update(
        {
            "source": {"type": "dict", "options": _ldap.source_argument_spec(env_fallback)},
            "users": {"type": "list", "elements": "dict"},
            "groups": {"type": "list", "elements": "dict"},
            "user_mapping": {"type": "dict", "default": {}},
            "group_mapping": {"type": "dict", "default": {}},
            "manage_groups": {"type": "bool"},
            "state_file": {"type": "path"},
            "max_workers": {"type": "int", "default": 4},
        }
    )
    spec.update(policy_argument_spec())
    return spec


SYNC_MODULE_KWARGS = {
    "supports_check_mode": True,
    "required_one_of": [("source", "users")],
    "mutually_exclusive": [("source", "users"), ("source", "groups")],
}


def _guarded(module, work: Callable[[], dict[str, Any]], needs: tuple[str, ...]) -> None:
    """Run ``work``; a ProvisioningError fails the task with its message (and its plan, if any).

    ``needs`` names the third-party libraries this run imports; a missing one fails the task first.
    """
    available = {
        "requests": (_http.HAS_REQUESTS, _http.REQUESTS_IMPORT_ERROR),
        "ldap3": (_ldap.HAS_LDAP3, _ldap.LDAP3_IMPORT_ERROR),
        "jmespath": (_mapping.HAS_JMESPATH, _mapping.JMESPATH_IMPORT_ERROR),
    }
    for library in needs:
        present, error = available[library]
        if not present:
            module.fail_json(msg=missing_required_lib(library), exception=error)
    # Every no_log value of this run joins the masker the HTTP layer uses, so an error that
    # echoes one (in any encoding, or cut) is masked where it is made; the result is masked
    # once more on the way out (Ansible itself masks only the raw values).
    masker = _secrets.shared_masker()
    for value in module.no_log_values:
        masker.add(value)
    fail_json, exit_json = _masked_exit(module.fail_json, masker), _masked_exit(module.exit_json, masker)
    try:
        result = work()
    except ProvisioningError as exc:
        # Documented keys: a plan refused as a whole (a threshold, the empty-source guard) as "plan",
        # any other failure's particulars (the service's error answer, attempts) as "details".
        is_plan = isinstance(exc.details, dict) and "actions" in exc.details
        extra = {} if exc.details is None else {"plan" if is_plan else "details": exc.details}
        fail_json(msg=exc.message, **extra)
    except Exception as exc:  # noqa: BLE001 - an unexpected bug still fails the task with a traceback
        fail_json(msg=f"unexpected error: {type(exc).__name__}: {exc}", exception=traceback.format_exc())
    failed = result.pop("failed_msg", None)
    if failed:
        fail_json(msg=failed, **result)
    exit_json(**result)


def _masked_exit(exit_function: Callable[..., Any], masker: _secrets.SecretMasker) -> Callable[..., Any]:
    """``exit_json`` / ``fail_json`` with secrets masked in everything they return."""

    def finish(msg: str | None = None, **result: Any) -> Any:
        # The fragment scan is per character: run it on the messages, not on a 100k-action report
        # whose service texts were masked, fragments included, when each error was made.
        if msg is not None:
            result["msg"] = masker.mask(msg)
        if "exception" in result:
            result["exception"] = masker.mask(result["exception"])
        return exit_function(**{key: masker.mask_value(value, fragments=False) for key, value in result.items()})

    return finish


# -- the whole reconcile -------------------------------------------------------------------------


def sync_module(target: Target) -> Any:
    """The AnsibleModule of ``<target>_sync``: its connection options, every sync option and the
    target's own sync options (``Target.sync_options``: PingID's verification options)."""
    from ansible.module_utils.basic import AnsibleModule

    spec = sync_argument_spec(target.connection_spec())
    spec.update(target.sync_options)
    return AnsibleModule(argument_spec=spec, **SYNC_MODULE_KWARGS)


def run_sync(module, target: Target) -> None:
    """``<target>_sync``: read (or take) the source, map it, plan, apply, report."""
    default_user_mapping, user_key = target.default_user_mapping, target.user_key

    def work() -> dict[str, Any]:
        params = module.params
        operations = {name: (params["operations"] or {}).get(name, True) for name in OPERATIONS}
        policy = _engine.Policy.from_options(
            {name: params[name] for name in policy_argument_spec() if name != "operations"}
            | operations
            | {"manage_groups": params["manage_groups"]}
            | verification_policy(params)
        )
        user_mapping = _mapping.compile_mapping(
            _mapping.merge_mapping(default_user_mapping, params["user_mapping"]), user_key
        )
        group_mapping = _mapping.compile_group_mapping(params["group_mapping"] or None)

        if params["source"]:
            options = _ldap.LdapOptions.from_getter(params["source"].get)
            directory = _ldap.read_directory(options)
            user_records: list[Any] = directory.users
            group_records: list[Any] | None = directory.groups if options.group_base_dn else None
        else:
            user_records = params["users"] or []
            group_records = params["groups"]

        desired_users, errors = _mapping.map_users(user_mapping, user_records)
        desired_groups = None
        if group_records is not None:
            desired_groups, group_errors = _mapping.map_groups(group_mapping, group_records)
            errors += group_errors

        connector = target.build(params)
        caps = connector.capabilities
        manage_groups = _engine.groups_managed(params["manage_groups"], desired_groups is not None, caps)
        kept_in_state = _engine.state_needed(caps, manage_groups)
        if kept_in_state and not params["state_file"]:
            raise ProvisioningError(
                f"state_file: {target.name} {' and '.join(kept_in_state)} carry no ownership marker here, so this "
                "provisioner records what it created or linked in a state file; set state_file to a path "
                "that persists between runs (on AWX, a project-relative path or a mounted volume)"
            )
        state_file = params["state_file"] if kept_in_state else None
        with _state_for_run(state_file, target.name, module.check_mode) as state:
            plan = _engine.plan(
                desired_users,
                desired_groups,
                connector,
                policy,
                state=state,
                source_errors=errors,
                max_workers=params["max_workers"],
            )
            report = _engine.apply(plan, connector, module.check_mode, state=state, max_workers=params["max_workers"])
        report_data = report.as_dict()
        diff = report_data.pop("diff")
        result: dict[str, Any] = {
            "changed": report.changed,
            "report": report_data,
            "requests": _request_stats(connector),
        }
        if not caps.can_list_users:
            # A target read through the state file: say whether this run read every account, and why.
            result["verification"] = {"full": plan.full_verification, "reason": plan.verification_reason}
        if module._diff:
            result["diff"] = [_readable(entry) for entry in diff]
        if report.failed:
            result["failed_msg"] = _failure_summary(report.failures, len(report.actions))
        return result

    needs = ("requests", "jmespath") + (("ldap3",) if module.params.get("source") else ())
    _guarded(module, work, needs)


def _failure_summary(failures: list[dict[str, Any]], actions: int, shown: int = 3, width: int = 80) -> str:
    """A failed sync's message: how many failed, the first few with the service's words, where the rest is."""

    def one(failure: dict[str, Any]) -> str:
        what = " ".join(str(failure[key]) for key in ("kind", "name") if failure.get(key)) or "state"
        error = " ".join(str(failure.get("error") or "").split())
        error = error if len(error) <= width else error[: width - 3] + "..."
        return f"{what} ({error})" if error else what

    listed = ", ".join(one(failure) for failure in failures[:shown])
    more = f" and {len(failures) - shown} more" if len(failures) > shown else ""
    total = max(actions, len(failures))
    return f"{len(failures)} of {total} actions failed: {listed}{more}; see report.failures"


@contextlib.contextmanager
def _state_for_run(path: str | None, target: str, check_mode: bool) -> Iterator[_state.OwnershipState | None]:
    """The state file for one run: locked from before it is read until after it is saved, so two
    runs at once (two AWX jobs on one volume) cannot interleave. A preview only reads it (the
    file is replaced atomically, so it never sees half a file) and takes no lock."""
    if path is None:
        yield None
        return
    if check_mode:
        yield _state.load_state(path, target)
        return
    _state.check_state_writable(path)
    with _state.state_lock(path):
        yield _state.load_state(path, target)


def _readable(entry: dict[str, Any]) -> dict[str, Any]:
    """Before/after as text: Ansible would dump dicts with every non-ASCII letter escaped."""
    return {
        key: json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        if key in ("before", "after")
        else value
        for key, value in entry.items()
    }


def _request_stats(connector: Connector) -> dict[str, int]:
    client = getattr(connector, "client", None)
    stats = getattr(client, "stats", None) or {}
    return {" ".join(key) if isinstance(key, tuple) else str(key): count for key, count in stats.items()}
