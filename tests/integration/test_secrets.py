# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""No secret leaks, on every target (issue 15, item 3).

Per target (SCIM: scim2-server behind an echoing gateway; Box, Dropbox, PingID: their fakes, made
to echo), two ansible-playbook runs at ``-vvvv --diff`` with a log file:

* **working**: every module family (user, user_info, group, group_info, sync) and the role, the
  writers in check mode and for real; the sync reads the real slapd with a bind password;
* **hostile**: the same modules while a seeded quarter of the service's answers are errors that
  echo the request back (its ``Authorization`` header, its body: form posts with client secrets
  and refresh tokens, PingID's signed JWS), then failing runs: a bad token or client secret, a bad
  key or passphrase, a bad bind password, an unreachable directory, an unreachable service.

Every echo carries the request whole, so the secrets do reach the collection. Then stdout,
stderr, the log, the registered results, the state file and every file the runs left under
their directory are searched for each secret (the ones given and the access tokens the service
issued during the run): whole, any 8 consecutive characters, its encodings (base64 of the value
and of ``user:password``, URL-encoded, JSON-escaped), and inside every JWS the output shows,
decoded. TLS: verification is on by default, an untrusted certificate is refused on HTTPS and
on LDAPS, and accepted with ``ca_path``.
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import random
import re
import secrets
import socket
import threading
from pathlib import Path

import pytest
import requests
import yaml
from support.box_fake import BoxApp, BoxFake
from support.dropbox_fake import DropboxApp, DropboxFake
from support.pingid_fake import PingIDFake, PingIDOrg
from support.playbook import run_playbook
from support.scim_server import ScimServer
from support.seed import GROUPS, PEOPLE
from support.slapd import generate_tls
from test_secret_echo import forbidden_forms, leaks
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

FQ = "idsync.provisioning."
SYNC_FRAGMENT = Path(__file__).resolve().parents[2] / "plugins" / "doc_fragments" / "sync.py"
SYNC_OPTIONS = set(re.findall(r"^  (\w+):$", SYNC_FRAGMENT.read_text(), re.MULTILINE))
USER_FILTER = "(|(uid=jdoe)(uid=asmith)(uid=bwhite))"
GROUP_FILTER = "(cn=Engineering)"
ECHO_MARK = "request was:"
# The share of a hostile run's answers that are errors echoing the request (seeded).
HOSTILE_RATE = 0.25
HOSTILE_SEED = 15


def new_secret(prefix: str) -> str:
    # URL-safe random text: 8-character runs of it do not turn up in output by chance.
    return prefix + secrets.token_urlsafe(24)


# -- services that echo the request in their errors ---------------------------------------------------
def echo_into(response: Response, method: str, path: str, headers: dict, body: bytes) -> Response:
    """``response`` (an error) with the request appended: its headers (Authorization too) and body,
    in the message fields of a JSON error and as a JSON object of headers, or after a text body."""
    lines = "\r\n".join(f"{name}: {value}" for name, value in headers.items())
    echo = f"{ECHO_MARK} {method} {path} HTTP/1.1\r\n{lines}\r\n\r\n{body.decode('utf-8', 'replace')}"
    try:
        document = json.loads(response.get_data())
    except ValueError:
        document = None
    kept = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
    if isinstance(document, dict):
        fields = [
            k for k in ("message", "error_summary", "error_description", "detail") if isinstance(document.get(k), str)
        ]
        for name in fields or ["message"]:
            document[name] = (document.get(name) or "") + " " + echo
        document["request_headers"] = dict(headers)
        return Response(json.dumps(document), status=response.status_code, headers=kept, mimetype="application/json")
    # Not JSON (Dropbox's text errors, PingID's signed replies): a debug page with the request, escaped.
    text = html.escape(response.get_data(as_text=True))
    page = f"<html><body><h1>{response.status_code}</h1><p>{text}</p><pre>{html.escape(echo)}</pre></body></html>"
    return Response(page, status=response.status_code, headers=kept, mimetype="text/html")


class EchoErrors:
    """Mixin for a fake (tests/support/fake_service.py): every error answer echoes the request."""

    echo_always = True  # False: only in a hostile run (the errors of a normal run are protocol answers)
    is_hostile = False

    def _answer(self, call, entry):
        response = super()._answer(call, entry)
        if response.status_code < 400 or not (self.echo_always or self.is_hostile):
            return response
        self.echoed = getattr(self, "echoed", 0) + 1
        return echo_into(response, call.method, call.path, dict(call.request.headers), call.raw_body)

    def hostile(self, on: bool) -> None:
        self.is_hostile = on
        if on:
            self.faults.random(HOSTILE_SEED, status=HOSTILE_RATE, status_code=409)
        else:
            self.faults.clear()

    def issued_tokens(self) -> list[str]:
        return list(self.tokens)


class EchoingBox(EchoErrors, BoxFake):
    pass


class EchoingDropbox(EchoErrors, DropboxFake):
    pass


class EchoingPingID(EchoErrors, PingIDFake):
    # PingID answers "no such user" with a signed error the client reads: a normal run keeps it signed.
    echo_always = False


class EchoingGateway:
    """A gateway in front of a real SCIM server: forwards every request; an error answer (the
    server's, or in hostile mode a seeded 409 of its own) echoes the request."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.random: random.Random | None = None
        self.echoed = 0
        self.session = requests.Session()
        self.server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/v2"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.server.shutdown()
        self.session.close()

    def hostile(self, on: bool) -> None:
        self.random = random.Random(HOSTILE_SEED) if on else None

    def issued_tokens(self) -> list[str]:
        return []

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        if self.random is not None and self.random.random() < HOSTILE_RATE:
            answer = Response(json.dumps({"status": "409", "detail": "conflict"}), status=409)
        else:
            path = request.full_path.rstrip("?")
            upstream = self.session.request(
                request.method, self.upstream + path[len("/v2") :], headers=headers, data=body, timeout=30
            )
            answer = Response(
                upstream.content, status=upstream.status_code, content_type=upstream.headers.get("Content-Type")
            )
        if answer.status_code >= 400:
            self.echoed += 1
            answer = echo_into(answer, request.method, request.path, dict(request.headers), body)
        return answer(environ, start_response)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed when the socket is: nothing listens there


# -- the targets -----------------------------------------------------------------------------------------
class Target:
    """What a target's runs need: its service, credentials (good and bad), module arguments."""

    name = ""
    has_groups = True

    def __init__(self, ldap, tmp: Path):
        self.ldap = ldap
        self.tmp = tmp
        self.bind_pw_bad = new_secret("bindbad-")
        self.secrets: dict[str, str] = {"bind password": ldap.reader_pw, "bad bind password": self.bind_pw_bad}
        self.passed: dict[str, str] = {}  # environment variables that carry secrets into the play

    def ref(self, name: str) -> str:
        """The secret ``name`` as a template reading it from the environment: never in the play file."""
        variable = "IDSYNC_TEST_" + re.sub(r"\W", "_", name).upper()
        self.passed[variable] = self.secrets[name]
        return "{{ lookup('ansible.builtin.env', '" + variable + "') }}"

    # the service
    service = None

    def connection(self) -> dict:
        raise NotImplementedError

    def env(self) -> dict:
        return {"LDAP_BIND_DN": self.ldap.reader_dn, "LDAP_BIND_PW": self.ldap.reader_pw} | self.passed

    def bad_credentials(self) -> list[dict]:
        """Connection options that each fail authentication."""
        raise NotImplementedError

    def user(self) -> tuple[str, dict]:
        raise NotImplementedError

    def user_info(self) -> tuple[str, dict]:
        raise NotImplementedError

    def group(self) -> tuple[str, dict]:
        raise NotImplementedError

    def group_info(self) -> tuple[str, dict]:
        raise NotImplementedError

    def sync_options(self) -> dict:
        return {}

    def reading_options(self) -> dict:
        """Sync options that make a run read the target even when nothing changed."""
        return {}

    def source(self, **overrides) -> dict:
        source = {
            "server_uri": [self.ldap.uri],
            "user_base_dn": PEOPLE,
            "user_filter": USER_FILTER,
            "group_base_dn": GROUPS if self.has_groups else None,
            "group_filter": GROUP_FILTER if self.has_groups else None,
        }
        source.update(overrides)
        return {k: v for k, v in source.items() if v is not None}

    def sync(self, **source) -> tuple[str, dict]:
        return f"{self.name}_sync", dict(self.connection(), source=self.source(**source), **self.sync_options())


class Scim(Target):
    name = "scim"

    def __init__(self, ldap, tmp):
        super().__init__(ldap, tmp)
        self.token = new_secret("scimtok-")
        self.secrets |= {
            "token": self.token,
            "bad token": new_secret("scimbad-"),
            # HTML's special characters: a debug page shows them escaped
            "account password": new_secret("Acct<&>'\"-"),
        }

    def start(self):
        self.server = ScimServer(token=self.token, startup_timeout=60).start()
        self.service = EchoingGateway(self.server.url).__enter__()

    def stop(self):
        self.service.__exit__(None, None, None)
        self.server.stop()

    def connection(self):
        return {"url": self.service.url}

    def env(self):
        return super().env() | {"SCIM_TOKEN": self.token}

    def bad_credentials(self):
        return [{"token": self.ref("bad token")}]

    def user(self):
        return "scim_user", {
            "user_name": "secuser",
            "attributes": {"displayName": "Secret Keeper"},
            "password": self.ref("account password"),
        }

    def user_info(self):
        return "scim_user_info", {"user_name": "secuser"}

    def group(self):
        return "scim_group", {"name": "Vault", "members": {"set": ["secuser"]}}

    def group_info(self):
        return "scim_group_info", {"name": "Vault", "include_members": True}


class Box(Target):
    name = "box"

    def __init__(self, ldap, tmp):
        super().__init__(ldap, tmp)
        self.passphrase = new_secret("pass-")
        self.app = BoxApp.with_new_key(client_secret=new_secret("boxcs-"))
        self.pem = self.app.private_key_pem(self.passphrase)
        self.secrets |= {
            "client secret": self.app.client_secret,
            "jwt passphrase": self.passphrase,
            "bad client secret": new_secret("boxbad-"),
            "bad passphrase": new_secret("passbad-"),
        }
        # The private key: each line of its base64 body (the PEM armour is public text).
        for number, line in enumerate(pem_body_lines(self.pem)):
            self.secrets[f"private key line {number}"] = line

    def start(self):
        self.service = EchoingBox(self.app).start()

    def stop(self):
        self.service.stop()

    def connection(self):
        return {"url": self.service.api_url, "token_url": self.service.token_url}

    def sync_options(self):
        return {"state_file": str(self.tmp / "state.json")}

    def env(self):
        app = self.app
        return super().env() | {
            "BOX_CLIENT_ID": app.client_id,
            "BOX_CLIENT_SECRET": app.client_secret,
            "BOX_ENTERPRISE_ID": app.enterprise_id,
            "BOX_JWT_KEY_ID": app.key_id,
            "BOX_JWT_PRIVATE_KEY": self.pem,
            "BOX_JWT_PASSPHRASE": self.passphrase,
        }

    def bad_credentials(self):
        return [
            {"client_secret": self.ref("bad client secret")},
            {"jwt_passphrase": self.ref("bad passphrase")},
        ]

    def user(self):
        return "box_user", {"login": "secuser@example.org", "attributes": {"name": "Secret Keeper"}}

    def user_info(self):
        return "box_user_info", {"login": "secuser@example.org"}

    def group(self):
        return "box_group", {"name": "Vault", "members": {"set": ["secuser@example.org"]}}

    def group_info(self):
        return "box_group_info", {"name": "Vault", "include_members": True}


class Dropbox(Target):
    name = "dropbox"

    def __init__(self, ldap, tmp):
        super().__init__(ldap, tmp)
        self.app = DropboxApp(app_secret=new_secret("dbxsecret-"), refresh_token=new_secret("dbxrefresh-"))
        self.secrets |= {
            "app secret": self.app.app_secret,
            "refresh token": self.app.refresh_token,
            "bad refresh token": new_secret("dbxbad-"),
            "bad app secret": new_secret("dbxbadsecret-"),
        }

    def start(self):
        self.service = EchoingDropbox(app=self.app, added_status="active").start()

    def stop(self):
        self.service.stop()

    def connection(self):
        return {"url": self.service.api_url, "token_url": self.service.token_url}

    def env(self):
        return super().env() | {
            "DROPBOX_APP_KEY": self.app.app_key,
            "DROPBOX_APP_SECRET": self.app.app_secret,
            "DROPBOX_REFRESH_TOKEN": self.app.refresh_token,
        }

    def bad_credentials(self):
        return [{"refresh_token": self.ref("bad refresh token")}, {"app_secret": self.ref("bad app secret")}]

    def user(self):
        return "dropbox_user", {
            "email": "secuser@example.org",
            "attributes": {"given_name": "Secret", "surname": "Keeper"},
        }

    def user_info(self):
        return "dropbox_user_info", {"email": "secuser@example.org"}

    def group(self):
        return "dropbox_group", {"name": "Vault", "members": {"set": ["secuser@example.org"]}}

    def group_info(self):
        return "dropbox_group_info", {"name": "Vault", "include_members": True}


class PingID(Target):
    name = "pingid"
    has_groups = False

    def __init__(self, ldap, tmp):
        super().__init__(ldap, tmp)
        self.org = PingIDOrg(token=new_secret("pingtok-"))
        self.secrets |= {
            "token": self.org.token,
            "use_base64_key": self.org.use_base64_key,
            "bad token": new_secret("pingbad-"),
            "bad key": base64.b64encode(secrets.token_bytes(32)).decode(),
        }

    def start(self):
        self.service = EchoingPingID(self.org).start()

    def stop(self):
        self.service.stop()

    def connection(self):
        return {"url": self.service.idp_url}

    def sync_options(self):
        return {"state_file": str(self.tmp / "state.json")}

    def reading_options(self):
        # With nothing changed, pingid_sync trusts its state file and sends nothing at all.
        return {"full_verification": True}

    def env(self):
        return super().env() | {
            "PINGID_ORG_ALIAS": self.org.org_alias,
            "PINGID_TOKEN": self.org.token,
            "PINGID_USE_BASE64_KEY": self.org.use_base64_key,
            "PINGID_IDP_URL": self.service.idp_url,
        }

    def bad_credentials(self):
        return [{"token": self.ref("bad token")}, {"base64_key": self.ref("bad key")}]

    def user(self):
        return "pingid_user", {"user_name": "secuser", "attributes": {"fname": "Secret", "lname": "Keeper"}}

    def user_info(self):
        return "pingid_user_info", {"user_name": "secuser"}


TARGETS = {"scim": Scim, "box": Box, "dropbox": Dropbox, "pingid": PingID}


def pem_body_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


# -- the plays ----------------------------------------------------------------------------------------------
def module_task(target: Target, module: str, args: dict, check: bool, **extra) -> dict:
    options = dict(target.connection() if module != f"{target.name}_sync" else {}, **args)
    options.update(extra)
    return {"name": f"{module} {'check' if check else 'real'}", FQ + module: options, "check_mode": check}


def role_tasks(target: Target, preview: bool) -> list[dict]:
    connection = target.connection()
    role_vars = {
        "sync_target": target.name,
        "sync_connection": connection,
        "sync_source": target.source(),
        "sync_preview": preview,
        "sync_fail_on_errors": False,
        "sync_report_dir": str(target.tmp / "reports"),
    }
    state = target.sync_options().get("state_file")
    if state:
        role_vars["sync_state_file"] = state
    name = "preview" if preview else "real"
    return [
        {
            "name": f"role {name}",
            "block": [
                {"ansible.builtin.include_role": {"name": FQ + "sync"}, "vars": role_vars},
                {"ansible.builtin.set_fact": {f"role_{name}": "{{ sync_result }}"}},
            ],
            "rescue": [
                {"ansible.builtin.set_fact": {f"role_{name}": {"failed": True, "msg": "{{ ansible_failed_result }}"}}}
            ],
        }
    ]


def working_tasks(target: Target, checks: bool = True) -> list[dict]:
    tasks = []
    families = [target.user(), target.user_info()] + (
        [target.group(), target.group_info()] if target.has_groups else []
    )
    for module, args in families:
        writer = not module.endswith("_info")
        for check in (True, False) if writer and checks else (False,):
            tasks.append(module_task(target, module, args, check))
    for check in (True, False) if checks else (False,):
        module, args = target.sync()
        # Where the collection has them, a saved plan (preview) and a report file (real run) too.
        if check and "save_plan" in SYNC_OPTIONS:
            args["save_plan"] = str(target.tmp / "plan.json")
        if not check and "report_file" in SYNC_OPTIONS:
            args["report_file"] = str(target.tmp / "report.json")
        tasks.append(module_task(target, module, args, check))
    return tasks


def failing_tasks(target: Target) -> list[dict]:
    tasks = []
    module, args = target.user_info()
    for number, bad in enumerate(target.bad_credentials()):
        tasks.append(module_task(target, module, args, False, **bad))
        if number == 0:
            sync_module, sync_args = target.sync()
            sync_args.update(target.reading_options())
            tasks.append(module_task(target, sync_module, dict(sync_args, **bad), False))
    sync_module, sync_args = target.sync(bind_pw=target.ref("bad bind password"))
    tasks.append(module_task(target, sync_module, sync_args, True))
    sync_module, sync_args = target.sync(server_uri=[f"ldap://127.0.0.1:{closed_port()}"])
    tasks.append(module_task(target, sync_module, sync_args, False))
    tasks.append(module_task(target, module, args, False, url=f"http://127.0.0.1:{closed_port()}/api"))
    return tasks


def playbook(tasks: list[dict], roles: list[dict]) -> str:
    body = [dict(item, register=f"r{index}", ignore_errors=True) for index, item in enumerate(tasks)]
    body += roles
    names = [f"'r{i}': r{i}" for i in range(len(tasks))]
    names += [f"'{n}': {n} | default(none)" for n in ("role_preview", "role_real") if roles]
    record = "{{ {" + ", ".join(names) + "} | to_json }}"
    body.append(
        {"ansible.builtin.copy": {"content": record, "dest": "{{ record }}", "mode": "0600"}, "check_mode": False}
    )
    return yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": body}], sort_keys=False)


# -- the search ----------------------------------------------------------------------------------------------
JWS = re.compile(r"eyJ[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*){1,2}")


def decoded_jws(text: str) -> str:
    """The headers and payloads of every JWS in ``text``, decoded (PingID carries its token there)."""
    parts = []
    for match in JWS.finditer(text):
        for segment in match.group(0).split(".")[:2]:
            try:
                parts.append(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)).decode("utf-8", "replace"))
            except ValueError:
                continue
    return "\n".join(parts)


def html_forms(value: str) -> set[str]:
    return {html.escape(value), html.escape(value, quote=False)} - {value}


def files_left(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): path.read_text(errors="replace")
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != "vars.json"  # the test's own input: no secret in it
    }


class Outcome:
    def __init__(self, target: Target, phase: str, result, run_dir: Path, log: Path, tokens: list[str]):
        self.target, self.phase, self.result, self.run_dir, self.log = target, phase, result, run_dir, log
        self.tokens = tokens

    def texts(self) -> dict[str, str]:
        texts = {"stdout": self.result.stdout, "stderr": self.result.stderr, "log": self.log.read_text()}
        texts["registered"] = json.dumps(self.result.output)
        texts.update(files_left(self.target.tmp))
        texts.update({f"JWS decoded in {where}": decoded_jws(text) for where, text in list(texts.items())})
        return texts

    def forms(self) -> dict[str, set[str]]:
        forms = {name: forbidden_forms(value) | html_forms(value) for name, value in self.target.secrets.items()}
        for number, token in enumerate(self.tokens):
            forms[f"access token {number} issued by the service"] = forbidden_forms(token)
        return forms


_runs = itertools.count()


def run(target: Target, phase: str) -> Outcome:
    run_dir = target.tmp / f"{phase}-{next(_runs)}"
    log = target.tmp / f"{phase}.log"
    if phase == "working":
        tasks, roles = working_tasks(target), role_tasks(target, True) + role_tasks(target, False)
    else:
        tasks, roles = working_tasks(target, checks=False) + failing_tasks(target), []
    # after the tasks: they register the environment variables that carry their secrets
    env = target.env() | {"ANSIBLE_LOG_PATH": str(log), "ANSIBLE_REMOTE_TEMP": str(target.tmp / "remote-tmp")}
    target.service.hostile(phase == "hostile")
    try:
        result = run_playbook(run_dir, playbook(tasks, roles), env=env, diff=True, verbosity=4)
    finally:
        target.service.hostile(False)
    assert result.output, result.text[-5000:]
    return Outcome(target, phase, result, run_dir, log, target.service.issued_tokens())


@pytest.fixture(scope="module", params=sorted(TARGETS))
def target(request, slapd, tmp_path_factory):
    made = TARGETS[request.param](slapd, tmp_path_factory.mktemp(f"secrets-{request.param}"))
    made.start()
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture(scope="module")
def outcomes(target):
    return {"working": run(target, "working"), "hostile": run(target, "hostile")}


def results(outcome: Outcome) -> list[dict]:
    count = sum(1 for key in outcome.result.output if re.fullmatch(r"r\d+", key))
    return [outcome.result.output[f"r{i}"] for i in range(count)]


def test_the_working_run_worked(target, outcomes):
    """Every module and the role did its job, so the secrets were in use all along."""
    working = outcomes["working"]
    shown = results(working)
    failed = [(i, r.get("msg")) for i, r in enumerate(shown) if r.get("failed")]
    assert failed == [], failed
    assert any(r.get("changed") for r in shown)
    for name in ("role_preview", "role_real"):
        role = working.result.output[name]
        assert role and not role.get("failed"), role
        assert "report" in role, role


def test_the_hostile_run_reached_the_echo_and_failed_where_it_should(target, outcomes):
    hostile = outcomes["hostile"]
    # each bad credential's refusal, plus the seeded errors in the middle of the working tasks
    assert target.service.echoed >= len(target.bad_credentials()) + 2, target.service.echoed
    shown = results(hostile)
    failures = len(failing_tasks(target))
    # the failing runs (bad credentials, bad bind password, nothing listening) all failed
    assert all(r.get("failed") for r in shown[-failures:]), [r.get("msg") for r in shown[-failures:]]
    messages = " ".join(str(r.get("msg", "")) for r in shown)
    assert "********" in messages or "request was" in messages, messages[:3000]


@pytest.mark.parametrize("phase", ["working", "hostile"])
def test_no_secret_anywhere(target, outcomes, phase):
    outcome = outcomes[phase]
    texts = outcome.texts()
    assert len(texts) > 5
    found = leaks(texts, outcome.forms())
    assert found == [], "\n".join(found)


def test_no_traceback_reaches_the_user(target, outcomes):
    for outcome in outcomes.values():
        assert "Traceback" not in outcome.result.stdout + outcome.result.stderr


def test_messages_of_failing_runs_name_what_failed(target, outcomes):
    shown = results(outcomes["hostile"])
    failures = shown[-len(failing_tasks(target)) :]
    bind, unreachable_ldap, unreachable_service = failures[-3:]
    assert "invalidCredentials" in bind["msg"] or "credentials" in bind["msg"].lower(), bind["msg"]
    assert "127.0.0.1" in unreachable_ldap["msg"], unreachable_ldap["msg"]
    assert "127.0.0.1" in unreachable_service["msg"], unreachable_service["msg"]


# -- TLS ------------------------------------------------------------------------------------------------------
TLS_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: HTTPS with a certificate the system does not trust
      idsync.provisioning.box_user_info: {untrusted}
      register: https_untrusted
      ignore_errors: true
    - name: HTTPS with its CA given
      idsync.provisioning.box_user_info: {trusted}
      register: https_trusted
      ignore_errors: true
    - name: LDAPS with a certificate the system does not trust
      ansible.builtin.set_fact:
        ldaps_untrusted: "{{{{ query('idsync.provisioning.ldap_source', 'users', **ldaps) }}}}"
      register: ldaps_untrusted_result
      ignore_errors: true
    - name: LDAPS with its CA given
      ansible.builtin.set_fact:
        ldaps_trusted: "{{{{ query('idsync.provisioning.ldap_source', 'users', ca_path=ca, **ldaps) }}}}"
      register: ldaps_trusted_result
      ignore_errors: true
    - name: Record
      ansible.builtin.copy:
        content: "{{{{ {{'https_untrusted': https_untrusted, 'https_trusted': https_trusted,
                     'ldaps_untrusted': ldaps_untrusted_result, 'ldaps_trusted': ldaps_trusted_result,
                     'users': ldaps_trusted | default(none)}} | to_json }}}}"
        dest: "{{{{ record }}}}"
        mode: "0600"
"""


def test_tls_is_verified_by_default_on_https_and_ldaps(slapd, slapd_tls_dir, tmp_path):
    ca_file, cert_file, key_file = generate_tls(slapd_tls_dir)
    app = BoxApp(client_secret=new_secret("boxcs-"))
    with BoxFake(app, certfile=cert_file, keyfile=key_file) as fake:
        assert fake.api_url.startswith("https://")
        untrusted = {"url": fake.api_url, "token_url": fake.token_url, "login": "nobody@example.org"}
        trusted = dict(untrusted, ca_path=ca_file)
        ldaps = {
            "server_uri": [slapd.ldaps_uri],
            "bind_dn": slapd.reader_dn,
            "user_base_dn": PEOPLE,
            "user_filter": "(uid=jdoe)",
        }
        env = {
            "BOX_CLIENT_ID": app.client_id,
            "BOX_CLIENT_SECRET": app.client_secret,
            "BOX_ENTERPRISE_ID": app.enterprise_id,
        }
        env["LDAP_BIND_PW"] = slapd.reader_pw
        play = TLS_PLAY.format(untrusted=json.dumps(untrusted), trusted=json.dumps(trusted))
        result = run_playbook(tmp_path, play, {"ldaps": ldaps, "ca": ca_file}, env=env, verbosity=2)
        requests_seen = len(fake.requests)
    out = result.output
    assert out, result.text[-4000:]
    assert out["https_untrusted"]["failed"] is True
    assert "certificate" in out["https_untrusted"]["msg"].lower(), out["https_untrusted"]["msg"]
    assert not out["https_trusted"].get("failed"), out["https_trusted"]
    assert out["https_trusted"]["user"] is None
    assert requests_seen >= 2  # only the trusted run got through TLS
    assert out["ldaps_untrusted"]["failed"] is True
    assert "certificate" in out["ldaps_untrusted"]["msg"].lower(), out["ldaps_untrusted"]["msg"]
    assert not out["ldaps_trusted"].get("failed"), out["ldaps_trusted"]
    assert [user["attributes"]["uid"] for user in out["users"]] == [["jdoe"]]
    assert "Traceback" not in result.stdout + result.stderr
    assert (
        leaks({"output": result.text, "registered": json.dumps(out)}, {"secret": forbidden_forms(app.client_secret)})
        == []
    )
