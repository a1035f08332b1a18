# -*- coding: utf-8 -*-
"""AWX / Automation Controller: what docs/awx and meta/ define, and the sync run the way AWX runs it.

AWX runs a job with ansible-runner. Each credential's ``injectors`` become environment variables
(rendered in a sandboxed Jinja2 environment; an empty field renders as an empty string; ``file``
injectors are written to the job's private data dir), the job template's variables and the survey
answers become ``env/extravars`` (survey answers tagged ``!unsafe``), and the ``set_stats`` data
the playbook publishes is taken from the ``playbook_on_stats`` event as the job's artifacts.

These tests do the same, following AWX's code (``awx/main/models/credential.py``
``CredentialType.inject_credential``, ``awx/main/fields.py`` for the credential type schema,
``awx/api/views`` ``_validate_spec_data`` for surveys, ``awx/main/utils/safe_yaml.py``), so they
prove that the credential types feed the modules' environment fallbacks and that the example job
template and survey drive the role, against a real slapd and a real scim2-server.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner
import ansiblelint
import jsonschema
import pytest
import yaml
from ansible.release import __version__ as ansible_core_version
from jinja2 import StrictUndefined
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from support.seed import ACTIVE_PEOPLE, GROUPS, PEOPLE, PEOPLE_IDS

from ansible_collections.idsync.provisioning.plugins.module_utils import _ldap, _runner, scim

REPO_ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS_ROOT = REPO_ROOT / ".build" / "collections"
AWX_DIR = REPO_ROOT / "docs" / "awx"
EE_IMAGE = REPO_ROOT / "execution-environment.yml"  # the image definition
EE_DECLARATION = REPO_ROOT / "meta" / "execution-environment.yml"  # the collection's, minimums
BIN_DIR = Path(sys.executable).parent
ANSIBLE_PLAYBOOK = BIN_DIR / "ansible-playbook"

# The seeded people that a sync provisions (locked1 is disabled): tests/data/ldap/README.md.
# The directory layout is the site's: the test replaces the example's sync_source with the seed's.
SOURCE = {
    "user_base_dn": PEOPLE,
    "group_base_dn": GROUPS,
    "group_search_scope": "onelevel",
    "group_filter": "(|(cn=Engineering)(cn=Platform)(cn=Sales))",
    "nested_groups": True,
}
INVENTORY = {
    "all": {"hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}
}
CREDENTIAL_ENV = re.compile(r"^(LDAP|SCIM)_")

# -- AWX's rules, as AWX implements them ------------------------------------------------------

# awx/main/fields.py CredentialTypeInputField.schema / CredentialTypeInjectorField.schema
AWX_INPUTS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "required": {"type": "array", "items": {"type": "string"}},
        "fields": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "type": {"enum": ["string", "boolean"]},
                    "format": {"enum": ["ssh_private_key", "url"]},
                    "choices": {"type": "array", "minItems": 1, "items": {"type": "string"}, "uniqueItems": True},
                    "id": {"type": "string", "pattern": "^[a-zA-Z_]+[a-zA-Z0-9_]*$"},
                    "label": {"type": "string"},
                    "help_text": {"type": "string"},
                    "multiline": {"type": "boolean"},
                    "secret": {"type": "boolean"},
                    "ask_at_runtime": {"type": "boolean"},
                    "default": {},
                },
                "additionalProperties": False,
                "required": ["id", "label"],
            },
        },
    },
}
AWX_INJECTORS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "file": {
            "type": "object",
            "patternProperties": {r"^template(\.[a-zA-Z_]+[a-zA-Z0-9_]*)?$": {"type": "string"}},
            "additionalProperties": False,
        },
        "env": {
            "type": "object",
            "patternProperties": {"^[a-zA-Z_]+[a-zA-Z0-9_]*$": {"type": "string", "pattern": "^[\x00-\x7f]*$"}},
            "additionalProperties": False,
        },
        "extra_vars": {"type": "object"},
    },
}
# awx/main/constants.py ENV_BLOCKLIST (AWX also refuses every ANSIBLE_* variable)
AWX_ENV_BLOCKLIST = {
    "VIRTUAL_ENV",
    "PATH",
    "PYTHONPATH",
    "JOB_ID",
    "INVENTORY_ID",
    "INVENTORY_SOURCE_ID",
    "INVENTORY_UPDATE_ID",
    "AD_HOC_COMMAND_ID",
    "REST_API_URL",
    "REST_API_TOKEN",
    "MAX_EVENT_RES",
    "CALLBACK_QUEUE",
    "CALLBACK_CONNECTION",
    "CACHE",
    "JOB_CALLBACK_DEBUG",
    "INVENTORY_HOSTVARS",
    "AWX_HOST",
    "PROJECT_REVISION",
    "SUPERVISOR_CONFIG_PATH",
}
SURVEY_TYPES = {
    "text": str,
    "textarea": str,
    "password": str,
    "integer": int,
    "float": (float, int),
    "multiplechoice": str,
    "multiselect": str,
}


class Namespace:
    """AWX's ``TowerNamespace``: attributes set as the file injectors are written."""


def credential_type_errors(definition: dict[str, Any]) -> list[str]:
    """What AWX would refuse when this credential type is created (empty list: accepted)."""
    errors = [f"{key}: missing" for key in ("name", "kind", "inputs", "injectors") if key not in definition]
    if definition.get("kind") not in ("cloud", "net"):
        errors.append(f"kind {definition.get('kind')!r}: custom credential types are cloud or net")
    inputs, injectors = definition.get("inputs", {}), definition.get("injectors", {})
    errors += [f"inputs: {e.message}" for e in jsonschema.Draft4Validator(AWX_INPUTS_SCHEMA).iter_errors(inputs)]
    errors += [
        f"injectors: {e.message}" for e in jsonschema.Draft4Validator(AWX_INJECTORS_SCHEMA).iter_errors(injectors)
    ]
    if errors:
        return errors
    ids = [f["id"] for f in inputs.get("fields", [])]
    if len(ids) != len(set(ids)) or "tower" in ids:
        errors.append(f"field ids must be unique and not 'tower': {ids}")
    errors += [f"required {name!r} is not a field" for name in inputs.get("required", []) if name not in ids]
    for entry in inputs.get("fields", []):
        if entry.get("type", "string") != "string":
            errors += [
                f"{entry['id']}: {key} only for strings"
                for key in ("choices", "multiline", "format", "secret")
                if key in entry
            ]
    for variable in injectors.get("env", {}):
        if variable.startswith("ANSIBLE_") or variable in AWX_ENV_BLOCKLIST:
            errors.append(f"env {variable}: not allowed in credentials")
    # every template must render with each field set and tower.filename as the file injectors define it
    namespace: dict[str, Any] = dict.fromkeys(ids, "EXAMPLE")
    namespace["tower"] = Namespace()
    files = [label for label in injectors.get("file", {}) if label.startswith("template")]
    if "template" in files:
        if len(files) > 1:
            errors.append("file: single-file and multi-file syntax mixed")
        namespace["tower"].filename = "EXAMPLE_FILENAME"
    elif files:
        namespace["tower"].filename = Namespace()
        for label in files:
            setattr(namespace["tower"].filename, label.split(".")[1], "EXAMPLE_FILENAME")
    sandbox = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    for kind in ("file", "env"):
        for key, template in injectors.get(kind, {}).items():
            try:
                sandbox.from_string(template).render(namespace)
            except (UndefinedError, SecurityError, TemplateSyntaxError) as exc:
                errors.append(f"{kind} {key}: {exc}")
    return errors


def awx_inject(definition: dict[str, Any], inputs: dict[str, Any], private_data_dir: Path) -> dict[str, str]:
    """The environment AWX gives a job for one credential (``CredentialType.inject_credential``)."""
    fields = {entry["id"]: entry for entry in definition["inputs"]["fields"]}
    assert set(inputs) <= set(fields), f"no such field: {set(inputs) - set(fields)}"
    namespace: dict[str, Any] = {"tower": Namespace()}
    for name, value in inputs.items():
        if isinstance(value, bool) or len(value):  # empty strings stay undefined
            namespace[name] = value
    for name, entry in fields.items():
        if entry.get("type") == "boolean" and name not in inputs:
            namespace[name] = False
    sandbox = ImmutableSandboxedEnvironment()
    for label, template in definition["injectors"].get("file", {}).items():
        handle, path = tempfile.mkstemp(dir=private_data_dir / "env")
        with os.fdopen(handle, "w") as stream:
            stream.write(sandbox.from_string(template).render(**namespace))
        os.chmod(path, 0o600)
        # AWX gives the path inside the job's container (/runner/env/...); here the job runs on this host
        if "." in label:
            if not hasattr(namespace["tower"], "filename"):
                namespace["tower"].filename = Namespace()
            setattr(namespace["tower"].filename, label.split(".")[1], path)
        else:
            namespace["tower"].filename = path
    return {
        variable: sandbox.from_string(template).render(**namespace)
        for variable, template in definition["injectors"]["env"].items()
    }


class UnsafeDumper(yaml.SafeDumper):
    """awx/main/utils/safe_yaml.py: every string of an untrusted variable is written as ``!unsafe``."""

    def represent_str(self, data):
        return self.represent_scalar("!unsafe", data)


UnsafeDumper.add_representer(str, UnsafeDumper.represent_str)


def awx_extravars(template_vars: dict[str, Any], answers: dict[str, Any]) -> str:
    """``env/extravars`` as AWX writes it: the template's own variables trusted, survey answers not."""
    merged = {**template_vars, **answers}
    return "".join(
        yaml.dump(
            {key: value},
            Dumper=yaml.SafeDumper if template_vars.get(key, object()) == value else UnsafeDumper,
            default_flow_style=False,
            allow_unicode=True,
        )
        for key, value in merged.items()
    )


def survey_errors(survey: dict[str, Any]) -> list[str]:
    """What AWX refuses when the survey spec is saved (``_validate_spec_data``)."""
    errors = [
        f"{key}: missing or not {kind.__name__}"
        for key, kind in (("name", str), ("description", str), ("spec", list))
        if not isinstance(survey.get(key), kind)
    ]
    if errors or not survey["spec"]:
        return errors or ["spec: no questions"]
    seen: set[str] = set()
    for index, item in enumerate(survey["spec"]):
        for key, kind in (("type", str), ("question_name", str), ("variable", str), ("required", bool)):
            if not isinstance(item.get(key), kind):
                errors.append(f"question {index}: {key} missing or not {kind.__name__}")
        if item.get("variable") in seen:
            errors.append(f"question {index}: variable {item['variable']} duplicated")
        seen.add(item.get("variable"))
        kind = SURVEY_TYPES.get(item.get("type"))
        if kind is None:
            errors.append(f"question {index}: type {item.get('type')!r}")
            continue
        if item.get("default", "") != "" and not isinstance(item["default"], kind):
            errors.append(f"question {index}: default {item['default']!r} is not {item['type']}")
        errors += [
            f"question {index}: {key} not an integer"
            for key in ("min", "max")
            if item.get(key) is not None and not isinstance(item[key], int)
        ]
        if item["type"] in ("multiplechoice", "multiselect"):
            choices = item.get("choices")
            choices = choices.splitlines() if isinstance(choices, str) else choices
            if not choices:
                errors.append(f"question {index}: choices missing")
            elif item.get("default", "") != "" and item["default"] not in choices:
                errors.append(f"question {index}: default {item['default']!r} not among the choices")
    return errors


def survey_answers(survey: dict[str, Any], **given: Any) -> dict[str, Any]:
    """The answers of a launch (defaults for the questions not answered), validated as AWX does."""
    answers = {item["variable"]: item["default"] for item in survey["spec"] if item.get("default", "") != ""}
    unknown = set(given) - set(answers) - {item["variable"] for item in survey["spec"]}
    assert not unknown, f"not questions of the survey: {unknown}"
    answers.update(given)
    for item in survey["spec"]:
        value = answers.get(item["variable"])
        assert value is not None or not item["required"], f"{item['variable']}: required"
        if item["type"] == "multiplechoice":
            assert value in item["choices"], f"{item['variable']}: {value!r} not among {item['choices']}"
        if item["type"] in ("text", "textarea") and value is not None:
            assert (item.get("min") or 0) <= len(value) <= (item.get("max") or 1024), f"{item['variable']}: length"
    return answers


# -- the files under test ---------------------------------------------------------------------


class DocsLoader(yaml.SafeLoader):
    """Reads the example playbook: ``!unsafe`` (Jinja left for AWX) is a plain string, as AWX stores it."""


DocsLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=DocsLoader)


LDAP_TYPE = load_yaml(AWX_DIR / "credential_types" / "ldap_directory.yml")
SCIM_TYPE = load_yaml(AWX_DIR / "credential_types" / "scim_service.yml")
SURVEY = json.loads((AWX_DIR / "survey.json").read_text(encoding="utf-8"))
SETUP_PLAY = load_yaml(AWX_DIR / "job_templates.yml")[0]


def module_tasks(module: str) -> list[dict[str, Any]]:
    """The arguments of every task of the example playbook that calls ``module``."""
    return [task[module] for task in SETUP_PLAY["tasks"] if module in task]


def play_var(reference: Any) -> Any:
    """Resolve ``"{{ name }}"`` against the example play's variables."""
    match = re.fullmatch(r"\{\{\s*(\w+)\s*\}\}", str(reference).strip())
    assert match, f"expected a reference to a play variable, got {reference!r}"
    return SETUP_PLAY["vars"][match.group(1)]


def job_template(name: str) -> dict[str, Any]:
    found = [args for args in module_tasks("awx.awx.job_template") if args["name"] == name]
    assert len(found) == 1, f"job template {name!r}: {len(found)} definitions"
    return found[0]


def module_env() -> dict[str, dict[str, tuple[str, bool]]]:
    """Per credential type: environment variable -> (module option, whether the option is no_log)."""
    ldap_spec = _ldap.source_argument_spec()
    scim_spec = scim.connection_argument_spec()
    return {
        "ldap": {env: (option, bool(ldap_spec[option].get("no_log"))) for option, env in _ldap.ENV_FALLBACKS.items()},
        "scim": {
            spec["fallback"][1][0]: (option, bool(spec.get("no_log")))
            for option, spec in scim_spec.items()
            if "fallback" in spec
        },
    }


def requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


# -- running a job ----------------------------------------------------------------------------


@dataclass
class Job:
    runner: Any
    env: dict[str, str]
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def artifacts(self) -> dict[str, Any]:
        """What AWX stores as the job's artifacts: the set_stats data of the playbook_on_stats event."""
        stats = [event for event in self.events if event["event"] == "playbook_on_stats"]
        assert len(stats) == 1, [event["event"] for event in self.events]
        return stats[0]["event_data"]["artifact_data"]

    @property
    def stdout(self) -> str:
        return "\n".join(event.get("stdout", "") for event in self.events)

    def secrets_shown(self, *values: str) -> list[str]:
        """The values among ``values`` that appear anywhere in an event or in the job's stdout file."""
        artifacts = Path(self.runner.config.artifact_dir)
        text = json.dumps(self.events, ensure_ascii=False) + (artifacts / "stdout").read_text(encoding="utf-8")
        return [value for value in values if value in text]


def launch(
    workdir: Path,
    template_name: str,
    credentials: list[tuple[dict[str, Any], dict[str, Any]]],
    answers: dict[str, Any],
    verbosity: int = 0,
) -> Job:
    """Launch an example job template as AWX would, with the survey ``answers``."""
    template = job_template(template_name)
    (workdir / "env").mkdir(parents=True)
    injected: dict[str, str] = {}
    for definition, inputs in credentials:
        injected.update(awx_inject(definition, inputs, workdir))
    template_vars = dict(play_var(template["extra_vars"]), sync_source=SOURCE)
    (workdir / "env" / "extravars").write_text(awx_extravars(template_vars, answers), encoding="utf-8")
    options = (["--check"] if template.get("job_type") == "check" else []) + (
        ["--diff"] if template.get("diff_mode") else []
    )
    runner = ansible_runner.run(
        private_data_dir=str(workdir),
        project_dir=str(REPO_ROOT),  # AWX runs the playbook from the project checkout
        playbook=template["playbook"],
        inventory=INVENTORY,
        envvars={
            **injected,
            "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_ROOT),
            # ansible-runner starts "ansible-playbook" from PATH: this Python's (in AWX, the EE's)
            "PATH": os.pathsep.join([str(ANSIBLE_PLAYBOOK.parent), os.environ.get("PATH", "")]),
        },
        cmdline=" ".join(options) or None,
        verbosity=verbosity,
        quiet=True,
        timeout=600,
    )
    return Job(runner, injected, list(runner.events))


@pytest.fixture
def clean_environ(monkeypatch):
    """The job's LDAP_* and SCIM_* variables come from the credentials only."""
    for name in list(os.environ):
        if CREDENTIAL_ENV.match(name):
            monkeypatch.delenv(name)


def server_dump(scim_server) -> str:
    return json.dumps({"users": scim_server.all("Users"), "groups": scim_server.all("Groups")}, sort_keys=True)


# -- static checks: what AWX would accept -------------------------------------------------------


@pytest.mark.parametrize("definition", [LDAP_TYPE, SCIM_TYPE], ids=["ldap", "scim"])
def test_credential_types_are_accepted_by_awx(definition):
    assert credential_type_errors(definition) == []
    assert definition["kind"] == "cloud"
    assert definition["name"].startswith("idsync ") and definition["description"].strip()
    for entry in definition["inputs"]["fields"]:
        assert entry.get("label") and entry.get("help_text"), entry["id"]


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda d: d["injectors"]["env"].update(ANSIBLE_CONFIG="{{ bind_dn }}"), "ANSIBLE_CONFIG: not allowed"),
        (
            lambda d: d["injectors"]["env"].update(LDAP_BIND_PW="{{ bind_pasword }}"),
            "LDAP_BIND_PW: 'bind_pasword' is undefined",
        ),
        (lambda d: d["inputs"]["fields"][0].update(kind="x"), "Additional properties"),
        (lambda d: d["inputs"]["required"].append("nonexistent"), "required 'nonexistent'"),
        (lambda d: d["injectors"]["file"].update({"template.ca": "x"}), "mixed"),
    ],
    ids=["ansible-env", "typo", "unknown-key", "required", "file-syntax"],
)
def test_the_awx_rules_used_here_refuse_a_broken_type(change, complaint):
    broken = json.loads(json.dumps(LDAP_TYPE))
    change(broken)
    assert any(complaint in error for error in credential_type_errors(broken)), credential_type_errors(broken)


def test_credential_types_inject_exactly_the_module_env_fallbacks():
    expected = module_env()
    assert set(expected["ldap"]) == {"LDAP_SERVER_URI", "LDAP_BIND_DN", "LDAP_BIND_PW", "LDAP_CA_PATH"}
    assert set(expected["scim"]) == {"SCIM_URL", "SCIM_TOKEN", "SCIM_USERNAME", "SCIM_PASSWORD", "SCIM_CA_PATH"}
    for target, definition in (("ldap", LDAP_TYPE), ("scim", SCIM_TYPE)):
        env = definition["injectors"]["env"]
        assert set(env) == set(expected[target]), target
        secret = {entry["id"]: entry.get("secret", False) for entry in definition["inputs"]["fields"]}
        for variable, template in env.items():
            used = set(re.findall(r"\b([a-z_]+)\b", template)) & set(secret)
            assert len(used) == 1, (variable, template)
            # a secret field feeds a no_log option and a no_log option is fed by a secret field
            assert secret[used.pop()] == expected[target][variable][1], variable


def test_injected_environment_as_awx_renders_it(tmp_path):
    (tmp_path / "env").mkdir()
    full = awx_inject(
        LDAP_TYPE,
        {"server_uri": "ldaps://a,ldaps://b", "bind_dn": "cn=r", "bind_password": "pw", "ca_certificate": "PEM\n"},
        tmp_path,
    )
    assert {k: v for k, v in full.items() if k != "LDAP_CA_PATH"} == {
        "LDAP_SERVER_URI": "ldaps://a,ldaps://b",
        "LDAP_BIND_DN": "cn=r",
        "LDAP_BIND_PW": "pw",
    }
    ca_file = Path(full["LDAP_CA_PATH"])
    assert ca_file.parent == tmp_path / "env" and ca_file.read_text() == "PEM\n"
    assert ca_file.stat().st_mode & 0o777 == 0o600
    # fields left empty are injected empty (AWX sets every variable of the type); no CA path then
    minimal = awx_inject(
        SCIM_TYPE, {"url": "https://scim.example.com/v2", "token": "t", "ca_certificate": ""}, tmp_path
    )
    assert minimal == {
        "SCIM_URL": "https://scim.example.com/v2",
        "SCIM_TOKEN": "t",
        "SCIM_USERNAME": "",
        "SCIM_PASSWORD": "",
        "SCIM_CA_PATH": "",
    }


# -- static checks: survey and job templates -----------------------------------------------------


def test_survey_is_accepted_by_awx_and_drives_the_role():
    assert survey_errors(SURVEY) == []
    broken = json.loads(json.dumps(SURVEY))
    broken["spec"][0]["default"] = "archive"
    assert survey_errors(broken) == ["question 0: default 'archive' not among the choices"]

    questions = {item["variable"]: item for item in SURVEY["spec"]}
    assert set(questions) == {"sync_remove_user_action", "sync_max_disables", "sync_preview"}
    role = load_yaml(REPO_ROOT / "roles" / "sync" / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    policy = role["sync_policy"]["options"]
    # the choices are the role's and the module's
    assert questions["sync_remove_user_action"]["choices"] == policy["remove_user_action"]["choices"]
    assert policy["remove_user_action"]["choices"] == _runner.policy_argument_spec()["remove_user_action"]["choices"]
    assert role["sync_preview"]["type"] == "bool" and set(questions["sync_preview"]["choices"]) == {"true", "false"}

    template_vars = play_var(job_template("idsync SCIM sync")["extra_vars"])
    assert template_vars["sync_policy"]["remove_user_action"] == "{{ sync_remove_user_action }}"
    assert template_vars["sync_policy"]["max_disables"] == "{{ sync_max_disables }}"
    # the templates and schedules that do not ask still get a value for what the policy references
    for variable in ("sync_remove_user_action", "sync_max_disables"):
        assert template_vars[variable] == questions[variable]["default"], variable
    assert set(template_vars) - {"sync_remove_user_action", "sync_max_disables"} <= set(role), "not role variables"
    assert survey_answers(SURVEY) == {
        "sync_remove_user_action": "disable",
        "sync_max_disables": "5%",
        "sync_preview": "false",
    }


def test_job_templates_example():
    sync, preview = job_template("idsync SCIM sync"), job_template("idsync SCIM preview")
    assert (sync["job_type"], preview["job_type"]) == ("run", "check")
    assert sync["playbook"] == preview["playbook"] == "playbooks/scim_sync.yml"
    assert (REPO_ROOT / sync["playbook"]).is_file()
    assert sync["survey_enabled"] is True and "'survey.json'" in play_var(sync["survey_spec"])
    assert "sync_preview" in preview["survey_spec"]  # the preview template does not ask for a preview
    assert sync["extra_vars"] == preview["extra_vars"]

    type_names = {LDAP_TYPE["name"], SCIM_TYPE["name"]}
    created_types = module_tasks("awx.awx.credential_type")
    assert len(created_types) == 2
    for args in created_types:
        path = re.search(r"'(credential_types/[a-z_]+\.yml)'", args["inputs"]).group(1)
        assert (AWX_DIR / path).is_file() and args["kind"] == "cloud"
    credentials = {args["name"]: args["credential_type"] for args in module_tasks("awx.awx.credential")}
    for template in (sync, preview):
        assert {credentials[name] for name in template["credentials"]} == type_names, template["name"]

    schedules = module_tasks("awx.awx.schedule")
    assert {args["unified_job_template"] for args in schedules} == {sync["name"], preview["name"]}
    for args in schedules:
        assert re.match(r"DTSTART;TZID=[^:]+:\d{8}T\d{6} RRULE:FREQ=(HOURLY|DAILY|WEEKLY)", args["rrule"])
        survey_answers(SURVEY, **args.get("extra_data", {}))  # schedule answers are valid survey answers
    hosts = module_tasks("awx.awx.host")
    assert hosts[0]["variables"]["ansible_python_interpreter"] == "{{ ansible_playbook_python }}"


# -- static checks: execution environment -------------------------------------------------------
# The image AWX runs the jobs in: execution-environment.yml at the repository root (docs/awx/README.md).
# The collection's own declaration (meta/execution-environment.yml), its minimums, the tarball's
# contents and ansible-builder's introspection are tested in test_collection_packaging.py.


def test_execution_environment_image_definition():
    schema = json.loads((Path(ansiblelint.__file__).parent / "schemas" / "execution-environment.json").read_text())
    for path in (EE_IMAGE, EE_DECLARATION):
        definition = yaml.safe_load(path.read_text(encoding="utf-8"))
        errors = [error.message for error in jsonschema.Draft7Validator(schema).iter_errors(definition)]
        assert errors == [], f"{path.relative_to(REPO_ROOT)}: {errors}"
    definition = yaml.safe_load(EE_IMAGE.read_text(encoding="utf-8"))
    assert definition["version"] == 3
    assert re.fullmatch(r"[\w./-]+:[\w.-]+", definition["images"]["base_image"]["name"])  # builder wants a tag
    dependencies = definition["dependencies"]
    # the image runs the jobs with the core the tests pin, not only the collection's minimum
    core = ".".join(ansible_core_version.split(".")[:2])
    assert dependencies["ansible_core"]["package_pip"] == f"ansible-core=={core}.*"
    assert dependencies["ansible_runner"]["package_pip"].startswith("ansible-runner")
    interpreter = dependencies["python_interpreter"]
    version = re.fullmatch(r"/usr/bin/python(3\.\d+)", interpreter["python_path"]).group(1)
    assert f"python{version}" in interpreter["package_system"].split()
    # the collection's Python and system requirements come from the installed collection, never repeated
    # here; the image adds only the optional fast reader (python-ldap) and the headers it compiles with
    assert [re.split(r"[=<>!~ ]", line, maxsplit=1)[0] for line in dependencies["python"]] == ["python-ldap"]
    assert dependencies["system"] == [f"python{version}-devel [platform:rpm compile]"]
    collection_requirements = requirement_lines(REPO_ROOT / "meta" / "ee-requirements.txt")
    required = {re.split(r"[=<>!~ ]", line, maxsplit=1)[0] for line in collection_requirements}
    assert "python-ldap" not in required, "python-ldap is optional for the collection (ldap3 is the fallback)"

    galaxy = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text(encoding="utf-8"))
    tarball = f"{galaxy['namespace']}-{galaxy['name']}-{galaxy['version']}.tar.gz"
    (collection,) = dependencies["galaxy"]["collections"]
    (extra_file,) = definition["additional_build_files"]
    assert collection == {"name": f"{extra_file['dest']}/{tarball}", "type": "file"}
    assert extra_file["src"] == f".build/dist/{tarball}"  # where `make build` writes it

    packages = {}
    for line in requirement_lines(REPO_ROOT / "bindep.txt"):
        match = re.fullmatch(r"([\w.+-]+)(?: \[([\w:! -]+)\])?", line)
        assert match, f"not a bindep line: {line!r}"
        packages[match.group(1)] = (match.group(2) or "").split()
    assert "troubleshoot" not in packages["ca-certificates"]
    assert {"ldap-utils", "openldap-clients"} <= set(packages)
    assert all("troubleshoot" in packages[name] for name in ("ldap-utils", "openldap-clients"))


@pytest.mark.slow
def test_ansible_builder_renders_the_image_awx_runs(tmp_path):
    """ansible-builder (requirements/dev.txt) writes the build context of the image from the root definition."""
    definition = yaml.safe_load(EE_IMAGE.read_text(encoding="utf-8"))
    (extra_file,) = definition["additional_build_files"]
    root = tmp_path / "ee"
    dist = root / Path(extra_file["src"]).parent
    subprocess.run(
        [str(BIN_DIR / "ansible-galaxy"), "collection", "build", "--output-path", str(dist), str(REPO_ROOT)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    shutil.copy(EE_IMAGE, root / "execution-environment.yml")
    created = subprocess.run(
        [
            str(BIN_DIR / "ansible-builder"),
            "create",
            "--file",
            str(root / "execution-environment.yml"),
            "--context",
            str(root / "context"),
            "--output-filename",
            "Containerfile",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=root,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    containerfile = (root / "context" / "Containerfile").read_text()
    dependencies = definition["dependencies"]
    assert f'ARG EE_BASE_IMAGE="{definition["images"]["base_image"]["name"]}"' in containerfile
    refs = f"{dependencies['ansible_core']['package_pip']} {dependencies['ansible_runner']['package_pip']}"
    assert f'ARG ANSIBLE_INSTALL_REFS="{refs}"' in containerfile
    assert "ansible-galaxy collection install" in containerfile and "introspect" in containerfile
    galaxy_requirements = yaml.safe_load((root / "context" / "_build" / "requirements.yml").read_text())
    packed = root / "context" / "_build" / galaxy_requirements["collections"][0]["name"]
    with tarfile.open(packed) as archive:
        manifest = json.load(archive.extractfile("MANIFEST.json"))
        assert "meta/execution-environment.yml" in archive.getnames()  # what introspect reads in the image
    assert manifest["collection_info"]["name"] == "provisioning"

    # bindep: by default the trust store and the libraries python-ldap loads, never a compiler; the
    # compiler and headers only with the compile profile (the builder stage), the LDAP tools only with
    # the troubleshoot profile
    bindep = [str(BIN_DIR / "bindep"), "-f", str(REPO_ROOT / "bindep.txt"), "-l", "newline"]
    default = subprocess.run(bindep, capture_output=True, text=True, check=False)
    tools = subprocess.run([*bindep, "troubleshoot"], capture_output=True, text=True, check=False)
    build = subprocess.run([*bindep, "compile"], capture_output=True, text=True, check=False)
    listed = set(default.stdout.split())
    assert listed in (
        {"ca-certificates", "libldap2-dev", "libsasl2-2"},
        {"ca-certificates", "openldap", "cyrus-sasl-lib"},
    )
    assert "gcc" not in listed, default.stdout
    assert "gcc" in build.stdout.split(), build.stdout + build.stderr
    assert set(tools.stdout.split()) - listed in ({"ldap-utils"}, {"openldap-clients"}), tools.stdout


# -- the job, run by ansible-runner ------------------------------------------------------------


@pytest.mark.slow
def test_sync_job_then_preview_jobs_then_sync_job(fresh_slapd, scim_server, tmp_path, clean_environ):
    credentials = [
        (
            LDAP_TYPE,
            {
                "server_uri": fresh_slapd.ldaps_uri,  # verified with the CA from the credential
                "bind_dn": fresh_slapd.reader_dn,
                "bind_password": fresh_slapd.reader_pw,
                "ca_certificate": Path(fresh_slapd.ca_file).read_text(),
            },
        ),
        (SCIM_TYPE, {"url": scim_server.url, "token": scim_server.token}),
    ]
    first = launch(tmp_path / "job1", "idsync SCIM sync", credentials, survey_answers(SURVEY, sync_max_disables="2"))
    assert first.runner.status == "successful", first.stdout[-3000:]
    assert first.runner.rc == 0
    assert set(first.env) == set(LDAP_TYPE["injectors"]["env"]) | set(SCIM_TYPE["injectors"]["env"])
    assert first.env["SCIM_TOKEN"] == scim_server.token and first.env["LDAP_BIND_PW"] == fresh_slapd.reader_pw
    assert Path(first.env["LDAP_CA_PATH"]).read_text() == Path(fresh_slapd.ca_file).read_text()

    users = {user["userName"]: user for user in scim_server.all("Users")}
    assert sorted(users) == ACTIVE_PEOPLE
    jdoe = users["jdoe"]
    assert jdoe["externalId"] == "idsync:" + PEOPLE_IDS["jdoe"]
    assert jdoe["name"]["givenName"] == "John" and jdoe["name"]["familyName"] == "Doe"
    assert jdoe["displayName"] == "John Doe" and jdoe["active"] is True
    assert [(e["value"], e.get("primary")) for e in jdoe["emails"]] == [("jdoe@example.org", True)]
    assert jdoe["title"] == "Engineer"  # the example template's extra mapping
    assert users["zoe"]["displayName"] == "Zoë Ångström"
    groups = {group["displayName"]: group for group in scim_server.all("Groups")}
    names = {user["id"]: name for name, user in users.items()}
    assert sorted(names[m["value"]] for m in groups["Engineering"]["members"]) == [
        "asmith",
        "bwhite",
        "jdoe",
        "jmuller",
        "jsmith",
    ]
    assert [names[m["value"]] for m in groups["Sales"]["members"]] == ["zoe"]

    report = first.artifacts["idsync_report"]
    assert report["target"] == "scim" and report["preview"] is False
    assert report["counts"]["create_user"] == len(users) == 7
    assert report["counts"]["create_group"] == len(groups) == 3
    assert report["failed"] == 0 and report["failures"] == []
    assert first.secrets_shown(scim_server.token, fresh_slapd.reader_pw) == []

    # the directory changes: one new hire, one user locked
    fresh_slapd.add(
        f"dn: uid=newhire,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: newhire\ncn: New Hire\n"
        "givenName: New\nsn: Hire\nmail: newhire@example.org\n"
    )
    fresh_slapd.modify(
        f"dn: uid=asmith,{PEOPLE}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
    )
    before = server_dump(scim_server)

    # preview from the sync template's survey (what a workflow does) ...
    answers = survey_answers(SURVEY, sync_max_disables="2", sync_preview="true")
    survey_preview = launch(tmp_path / "job2", "idsync SCIM sync", credentials, answers)
    assert survey_preview.runner.status == "successful", survey_preview.stdout[-3000:]
    assert server_dump(scim_server) == before, "the preview wrote to the service"
    planned = survey_preview.artifacts["idsync_report"]
    assert planned["preview"] is True and planned["failed"] == 0
    assert planned["counts"]["create_user"] == 1 and planned["counts"]["disable_user"] == 1

    # ... and from the check-mode preview template: the same plan
    answers = survey_answers(SURVEY, sync_max_disables="2")
    del answers["sync_preview"]  # that template does not ask
    check_preview = launch(tmp_path / "job3", "idsync SCIM preview", credentials, answers)
    assert check_preview.runner.status == "successful", check_preview.stdout[-3000:]
    assert server_dump(scim_server) == before, "the check-mode preview wrote to the service"
    assert check_preview.artifacts["idsync_report"]["preview"] is True
    assert check_preview.artifacts["idsync_report"]["counts"] == planned["counts"]

    # the sync then does what the preview planned (at verbosity 3, which must not show a secret either)
    answers = survey_answers(SURVEY, sync_max_disables="2")
    applied = launch(tmp_path / "job4", "idsync SCIM sync", credentials, answers, verbosity=3)
    assert applied.runner.status == "successful", applied.stdout[-3000:]
    assert applied.artifacts["idsync_report"]["preview"] is False
    assert applied.artifacts["idsync_report"]["counts"] == planned["counts"]
    assert scim_server.user_by_name("newhire")["emails"][0]["value"] == "newhire@example.org"
    assert scim_server.user_by_name("asmith")["active"] is False
    assert applied.secrets_shown(scim_server.token, fresh_slapd.reader_pw) == []


@pytest.mark.slow
def test_bad_token_fails_the_job_with_the_service_message_and_shows_no_secret(
    slapd, scim_server, tmp_path, clean_environ
):
    bad_token = "wrong-" + secrets.token_hex(16)
    credentials = [
        (LDAP_TYPE, {"server_uri": slapd.uri, "bind_dn": slapd.reader_dn, "bind_password": slapd.reader_pw}),
        (SCIM_TYPE, {"url": scim_server.url, "token": bad_token}),
    ]
    job = launch(tmp_path / "job", "idsync SCIM sync", credentials, survey_answers(SURVEY), verbosity=3)
    assert job.env["LDAP_CA_PATH"] == "" and job.env["SCIM_USERNAME"] == ""
    assert job.runner.status == "failed"
    assert job.runner.rc != 0
    failed = [event for event in job.events if event["event"] == "runner_on_failed"]
    assert len(failed) == 1, job.stdout[-3000:]
    message = failed[0]["event_data"]["res"]["msg"]
    assert re.search(r"\b401 Authorization failure\b", message), message  # the service's own words
    assert message in failed[0]["stdout"]
    assert job.secrets_shown(bad_token, slapd.reader_pw) == []
    assert scim_server.all("Users") == [] and scim_server.all("Groups") == []
