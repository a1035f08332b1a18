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
import os
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.idsync.provisioning.plugins.module_utils import (
    _engine,
    _http,
    _ldap,
    _mapping,
    _plan,
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


# Saved plans, the preview's length and the run report file: options of every ``*_sync`` module.
PLAN_ARGUMENT_SPEC = {
    "save_plan": {"type": "path"},
    "apply_plan": {"type": "path"},
    "max_plan_age": {"type": "str", "default": "24h"},
    "skip_drifted": {"type": "bool", "default": False},
    "preview_limit": {"type": "int", "default": 20},
    "report_file": {"type": "path"},
}
DEFAULT_PREVIEW_LIMIT = 20


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
    spec.update(PLAN_ARGUMENT_SPEC)
    return spec


SYNC_MODULE_KWARGS = {
    "supports_check_mode": True,
    "required_one_of": [("source", "users")],
    "mutually_exclusive": [("source", "users"), ("source", "groups"), ("save_plan", "apply_plan")],
}


def _guarded(module, work: Callable[[], dict[str, Any]], needs: tuple[str, ...]) -> None:
    """Run ``work``; a ProvisioningError fails the task with its message (and its plan, if any).

    ``needs`` names the third-party libraries this run imports; a missing one fails the task first.
    """
    available = {
        "requests": (_http.HAS_REQUESTS, _http.REQUESTS_IMPORT_ERROR),
        "ldap3": (_ldap.HAS_LDAP3, _ldap.LDAP3_IMPORT_ERROR),
        "python-ldap": (_ldap.HAS_PYTHON_LDAP, _ldap.PYTHON_LDAP_IMPORT_ERROR),
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
    """``<target>_sync``: read (or take) the source, map it, plan (or take a saved plan), apply, report."""

    def work() -> dict[str, Any]:
        run = _SyncRun(module, target)
        try:
            result = run.execute()
        except ProvisioningError as exc:
            run.write_report(error=exc.message)
            raise
        run.write_report(result=result)
        return result

    source = module.params.get("source")
    # the directory's library is the one its backend option selects (auto: python-ldap, else ldap3)
    needs = ("requests", "jmespath") + ((_ldap.backend_requirement(source.get("backend"))[0],) if source else ())
    _guarded(module, work, needs)


# Options that decide nothing a plan holds: not compared when a saved plan is applied. Thresholds are
# checked again on the plan's own actions when it is applied.
NOT_DECIDING = frozenset(
    {"users", "groups", "state_file", "max_workers", "max_deletes", "max_disables", "max_group_deletes"}
    | set(PLAN_ARGUMENT_SPEC)
    | set(VERIFICATION_ARGUMENT_SPEC)
)
# Source options that say how to reach the directory, not what is in scope.
SOURCE_CONNECTION_OPTIONS = frozenset(
    {"bind_dn", "bind_pw", "start_tls", "validate_certs", "ca_path", "connect_timeout", "receive_timeout"}
    | {"backend", "page_size", "range_size", "server_uri"}
)
# Connection options that say how to reach the target or who signs in, not which target or how it writes.
TRANSPORT_OPTIONS = frozenset(
    {"validate_certs", "ca_path", "timeout", "proxy_url", "token_url", "page_size", "member_chunk", "use_patch"}
    | {"use_bulk", "config_file", "jwt_key_id", "jwt_private_key_file", "properties_file", "client_id", "app_key"}
    | {"auth_username"}
)


class _SyncRun:
    """One ``<target>_sync`` run: its inputs, the plan it makes or applies, its result and report file."""

    def __init__(self, module, target: Target):
        self.module = module
        self.target = target
        self.params = module.params
        self.started = time.time()
        self.check_mode = bool(module.check_mode)
        self.connection_spec = target.connection_spec()
        self.labels: dict[str, dict[str, str]] = {}
        self.report_data: dict[str, Any] | None = None
        self.plan_info: dict[str, Any] | None = None
        # what the directory says of users it read but left out of scope (reasons of their disables)
        self.absent_reasons: dict[str, str] = {}
        limit = self.params.get("preview_limit")
        self.limit = DEFAULT_PREVIEW_LIMIT if limit is None else int(limit)

    # -- what the plan file and the report say of the run --------------------------------------
    def target_identity(self) -> dict[str, Any]:
        """Which target this is: its name and the non-secret options that pick the tenant or change
        what a write does (Dropbox wipe_data, Box delete_force)."""
        connection = {
            name: self.params.get(name)
            for name, spec in sorted(self.connection_spec.items())
            if not spec.get("no_log") and name not in TRANSPORT_OPTIONS and self.params.get(name) is not None
        }
        return {"name": self.target.name, "connection": connection}

    def source_description(self) -> dict[str, Any]:
        source = self.params.get("source")
        if source:
            shown = {name: value for name, value in source.items() if value not in (None, "", [])}
            return {
                name: value
                for name, value in shown.items()
                if name in ("server_uri", "bind_dn") or name not in SOURCE_CONNECTION_OPTIONS
            }
        groups = self.params.get("groups")
        return {
            "records": "given to the task",
            "users": len(self.params.get("users") or []),
            "groups": None if groups is None else len(groups),
        }

    def decision_options(self) -> dict[str, Any]:
        """The options a plan was decided under, compared when it is applied."""
        options = {
            name: value
            for name, value in sorted(self.params.items())
            if name not in NOT_DECIDING
            and name not in self.connection_spec
            and name not in self.target.sync_options
            and name != "source"
        }
        source = self.params.get("source")
        if source:
            options["source"] = {
                name: value for name, value in sorted(source.items()) if name not in SOURCE_CONNECTION_OPTIONS
            }
        return options

    # -- the run ---------------------------------------------------------------------------------
    def execute(self) -> dict[str, Any]:
        params, target = self.params, self.target
        if params.get("save_plan") and not self.check_mode:
            raise ProvisioningError(
                "save_plan: a plan is saved by a preview (check mode), for someone to approve before it is applied"
                " with apply_plan; this run writes. Run it with --check (or check_mode: true)"
            )
        saved = None
        if params.get("apply_plan"):
            # Refused before anything is read when it is not this target's, is stale or was changed.
            saved = _plan.read_plan(params["apply_plan"])
            _plan.check_plan(
                saved,
                self.target_identity(),
                self.decision_options(),
                parse_duration("max_plan_age", params.get("max_plan_age")),
            )
            self.plan_info = {"id": saved["plan_id"], "path": params["apply_plan"], "created": saved["created"]}
        operations = {name: (params["operations"] or {}).get(name, True) for name in OPERATIONS}
        policy = _engine.Policy.from_options(
            {name: params[name] for name in policy_argument_spec() if name != "operations"}
            | operations
            | {"manage_groups": params["manage_groups"]}
            | verification_policy(params)
        )
        user_mapping = _mapping.compile_mapping(
            _mapping.merge_mapping(target.default_user_mapping, params["user_mapping"]), target.user_key
        )
        group_mapping = _mapping.compile_group_mapping(params["group_mapping"] or None)

        if params["source"]:
            options = _ldap.LdapOptions.from_getter(params["source"].get)
            directory = _ldap.read_directory(options)
            for warning in directory.warnings():
                self.module.warn(warning)
            self.absent_reasons = directory.absent_reasons
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
        self.labels = _plan.field_labels(connector, target.user_key)
        manage_groups = _engine.groups_managed(params["manage_groups"], desired_groups is not None, caps)
        kept_in_state = _engine.state_needed(caps, manage_groups)
        if kept_in_state and not params["state_file"]:
            raise ProvisioningError(
                f"state_file: {target.name} {' and '.join(kept_in_state)} carry no ownership marker here, so this "
                "provisioner records what it created or linked in a state file; set state_file to a path "
                "that persists between runs (on AWX, a project-relative path or a mounted volume)"
            )
        state_file = params["state_file"] if kept_in_state else None
        workers = params["max_workers"]
        drift: list[dict[str, Any]] = []
        with _state_for_run(state_file, target.name, self.check_mode) as state:
            # What a saved plan records of each object it touches, and what its apply compares.
            views = None
            if saved is not None or params.get("save_plan"):
                views = _plan.Views(connector, state, user_mapping.paths, desired_users, desired_groups, errors)
            if saved is not None:
                plan, drift = _plan.prepare_apply(saved, views, connector, state, workers)
                self.plan_info["drift"] = drift
                if drift and not params.get("skip_drifted"):
                    result = {"changed": False, "drift": drift, "plan_id": saved["plan_id"]}
                    result["requests"] = _request_stats(connector)
                    result["failed_msg"] = _plan.drift_message(saved, drift)
                    return result
                _engine.check_thresholds(plan, policy, self.limit or _engine.SHOWN)
            else:
                plan = self.plan(desired_users, desired_groups, errors, connector, policy, state)
            report = _engine.apply(plan, connector, self.check_mode, state=state, max_workers=workers)
            if params.get("save_plan"):
                self.save_plan(plan, views, user_mapping.paths)
        return self.result(plan, report, connector, saved, drift)

    def plan(self, desired_users, desired_groups, errors, connector, policy, state) -> _engine.Plan:
        try:
            return _engine.plan(
                desired_users,
                desired_groups,
                connector,
                policy,
                state=state,
                source_errors=errors,
                max_workers=self.params["max_workers"],
                absent_reasons=self.absent_reasons,
                shown=self.limit or _engine.SHOWN,
            )
        except _engine.PlanRefused as exc:
            # The refused plan's summary is the report file's too.
            self.report_data = {"counts": exc.details["counts"], "actions": [], "failures": []}
            raise

    def save_plan(self, plan: _engine.Plan, views: _plan.Views, paths: list[str]) -> None:
        context = {
            "target": self.target_identity(),
            "source": self.source_description(),
            "options": self.decision_options(),
            "mapped_paths": paths,
        }
        document = _plan.build_saved_plan(plan, views, self.labels, context)
        # Secrets never reach the file: secret paths are redacted when the plan is built, and any
        # no_log value of this run (a token, a bind password) is masked wherever it would stand.
        document = _plan.seal(_secrets.shared_masker().mask_value(document, fragments=False))
        path = self.params["save_plan"]
        _plan.write_private(path, _plan.plan_text(document), "save_plan")
        self.plan_info = {
            "id": document["plan_id"],
            "path": path,
            "created": document["created"],
            "actions": document["summary"]["actions"],
            "objects": document["summary"]["objects"],
            "bytes": os.path.getsize(path),
        }

    def result(self, plan, report, connector, saved, drift) -> dict[str, Any]:
        caps = connector.capabilities
        report_data = report.as_dict()
        report_data.pop("diff")
        self.report_data = report_data
        title = self.title(saved)
        preview = _plan.preview_lines(
            report_data["actions"],
            self.labels,
            title,
            self.check_mode,
            self.limit,
            managed=(plan.managed_users, plan.managed_groups),
        )
        if drift:
            preview += ["", f"drifted, left out ({len(drift)})"] + [
                "  " + line for line in _plan.drift_lines(drift, self.limit)
            ]
        result: dict[str, Any] = {
            "changed": report.changed,
            "report": report_data,
            "preview": preview,
            "requests": _request_stats(connector),
        }
        if self.plan_info is not None:
            result["plan_file"] = {key: value for key, value in self.plan_info.items() if key != "drift"}
        if drift:
            result["drift"] = drift
            self.module.warn(
                f"skip_drifted: {len(drift)} changes since the plan was made left their objects' actions out: "
                + "; ".join(_plan.drift_lines(drift, 3))
            )
        if not caps.can_list_users:
            # A target read through the state file: say whether this run read every account, and why.
            result["verification"] = {"full": plan.full_verification, "reason": plan.verification_reason}
        if self.module._diff:
            result["diff"] = _plan.diff_entries(
                report_data["actions"], preview, self.labels, self.check_mode, self.limit
            )
        if report.failed:
            result["failed_msg"] = _failure_summary(report.failures, len(report.actions))
        return result

    def title(self, saved: dict[str, Any] | None) -> str:
        where = self.target_identity()["connection"].get("url")
        target = f"{self.target.name}" + (f" at {where}" if where else "")
        if saved is not None:
            what = f"applying the plan {_plan.short_id(saved['plan_id'])} of {saved['created']}"
            return f"{target}: {what}" + (" (check mode: nothing written)" if self.check_mode else "")
        return f"{target}: " + ("preview, nothing written (check mode)" if self.check_mode else "sync")

    def write_report(self, result: dict[str, Any] | None = None, error: str | None = None) -> None:
        path = self.params.get("report_file")
        if not path:
            return
        if result is not None and result.get("failed_msg") and self.report_data is None:
            error = result["failed_msg"]  # refused before any write: drift
        data = _plan.build_run_report(
            self.started,
            time.time(),
            self.target_identity(),
            self.source_description(),
            self.check_mode,
            self.report_data,
            self.labels,
            error=error,
            plan={key: value for key, value in (self.plan_info or {}).items() if key != "drift"} or None,
        )
        if self.plan_info and self.plan_info.get("drift"):
            data["drift"] = self.plan_info["drift"]
        _plan.write_run_report(path, _secrets.shared_masker().mask_value(data, fragments=False))
        if result is not None:
            result["report_file"] = path


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


def _request_stats(connector: Connector) -> dict[str, int]:
    client = getattr(connector, "client", None)
    stats = getattr(client, "stats", None) or {}
    return {" ".join(key) if isinstance(key, tuple) else str(key): count for key, count in stats.items()}


# -- rendering a saved plan ----------------------------------------------------------------------

PLAN_RENDER_ARGUMENT_SPEC = {
    "src": {"type": "path", "required": True},
    "format": {"type": "str", "default": "markdown", "choices": ["markdown", "csv", "text"]},
    "dest": {"type": "path"},
    "limit": {"type": "int", "default": 0},
}


def run_plan_render(module) -> None:
    """``plan_render``: a saved plan as Markdown, CSV or text, returned and optionally written to ``dest``."""

    def work() -> dict[str, Any]:
        params = module.params
        document = _plan.read_plan(params["src"], option="src")
        content = _plan.render_plan(document, params["format"], max(0, params["limit"]))
        result: dict[str, Any] = {
            "changed": False,
            "content": content,
            "plan_id": document["plan_id"],
            "created": document["created"],
            "summary": document.get("summary") or {},
        }
        dest = params["dest"]
        if dest:
            try:
                with open(dest, encoding="utf-8") as handle:
                    unchanged = handle.read() == content
            except OSError:
                unchanged = False
            result["changed"] = not unchanged
            result["dest"] = dest
            if not unchanged and not module.check_mode:
                _plan.write_private(dest, content, "dest")
        return result

    _guarded(module, work, ())
