# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one rule for keeping secrets out of what a run prints, returns or writes.

Private to this collection: the names here may change without notice.

A service may echo a request back in an error (debug pages, some gateways): the
``Authorization`` header, a form body with ``client_secret=``, a JSON body with a password.
Secrets are masked in two ways, always before any text is cut to a length limit:

* by value: every secret the run knows (module ``no_log`` values, tokens obtained at run time,
  passwords) in every form it takes on the wire (raw, base64 of ``user:password`` and of the
  value, URL-encoded, JSON-escaped, HTML-escaped), and any run of 8 or more characters of such a form, so a
  secret cut by someone else's limit is still masked;
* by pattern: the whole value of an ``Authorization`` header of any scheme, ``Bearer``/``Basic``
  credentials, JWS/JWT compact tokens, secret-named form fields and JSON members, PEM private
  keys; these need no knowledge of the value.

``shared_masker()`` is the masker of the running module (one module run is one process); the
HTTP layer, the token sources and the module runner register into it and mask through it.
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from ansible_collections.idsync.provisioning.plugins.module_utils._model import REDACTED

# A fragment this long of a secret is treated as the secret (the tests check 8 consecutive characters).
FRAGMENT = 8
# Field names whose values are secret in form bodies, query strings and JSON.
_SECRET_FIELDS = (
    r"client_secret|refresh_token|access_token|id_token|assertion|client_assertion|password|passphrase|"
    r"secret|secret_?key|token|api_?key|private_?key|use_base64_key|code_verifier|authorization"
)
_PATTERNS = (
    # The whole value of an Authorization header, whatever the scheme, as text, JSON or a repr.
    re.compile(
        r"(?i)(\b(?:proxy-)?authorization\\?[\"']?\s*[:=]\s*\\?[\"']?)((?:[A-Za-z][\w.-]*[ \t]+)?[^\s\"',;}&<>\\]+)",
    ),
    # Credentials after a scheme name, wherever they stand (a header quoted without its name).
    re.compile(r"(?i)(\b(?:bearer|basic|token|ssws|negotiate|digest)\s+)((?=[^\s\"'<>]*[0-9+/=._~-])[^\s\"'<>,;]{8,})"),
    # JWS / JWT compact serialisation: the header is base64url of '{"', which starts "eyJ".
    re.compile(r"()(\beyJ[A-Za-z0-9_-]{6,}(?:\.[A-Za-z0-9_-]*){0,2})"),
    # Form bodies and query strings: client_secret=..., refresh_token=..., assertion=...
    re.compile(rf"(?i)(\b(?:{_SECRET_FIELDS})=)([^&\s\"'<>]+)"),
    # JSON members (possibly escaped inside another JSON string, possibly cut before the closing quote).
    re.compile(rf"(?i)(\\?\"(?:{_SECRET_FIELDS})\\?\"\s*:\s*\\?\")((?:\\\\|\\[^\"]|[^\"\\])*)"),
    # PEM private keys, whole or cut.
    re.compile(r"()(-----BEGIN [A-Z ]*PRIVATE KEY-----(?:.*?-----END [A-Z ]*PRIVATE KEY-----|.*))", re.DOTALL),
)


def wire_forms(value: str) -> set[str]:
    """The forms a secret takes in requests and in the echoes of them."""
    raw = value.encode("utf-8")
    forms = {
        value,
        quote(value, safe=""),
        quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        base64.b64encode(raw).decode("ascii").rstrip("="),
        base64.urlsafe_b64encode(raw).decode("ascii").rstrip("="),
        # an HTML error page (a debug page, a gateway) shows an echoed request escaped
        html.escape(value),
        html.escape(value, quote=False),
        html.escape(value).replace("&#x27;", "&#39;"),
    }
    return {form for form in forms if form}


def credential_forms(user: str, password: str) -> set[str]:
    """The forms of ``user:password`` (HTTP basic authentication, OAuth client authentication)."""
    # Only the base64 forms: the plain pair's fragments would mask the (public) user name.
    # Clients may URL-encode each half first (RFC 6749 2.3.1).
    pairs = {f"{user}:{password}".encode(), f"{quote_plus(user)}:{quote_plus(password)}".encode()}
    return {
        encode(pair).decode("ascii").rstrip("=")
        for pair in pairs
        for encode in (base64.b64encode, base64.urlsafe_b64encode)
    }


class SecretMasker:
    """Secret values (in all their forms) and the patterns; ``mask`` applies both."""

    def __init__(self, secrets: Iterable[str] = ()):
        self._lock = threading.Lock()
        self._forms: set[str] = set()
        self._fragments: set[str] = set()
        self._ordered: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: Any) -> None:
        """Register a secret (a token obtained at run time, a password); short or empty values are ignored."""
        if secret is None:
            return
        text = str(secret)
        if len(text) < 4:  # "a", "yes": masking those would mangle every message
            return
        self._add_forms(wire_forms(text))

    def add_credentials(self, user: str | None, password: str | None) -> None:
        """Register a basic-auth pair: its password and the base64 of ``user:password``."""
        if not password:
            return
        self.add(password)
        self._add_forms(credential_forms(user or "", password))

    def merge(self, other: SecretMasker) -> None:
        self._add_forms(other.forms())

    def forms(self) -> set[str]:
        with self._lock:
            return set(self._forms)

    def _add_forms(self, forms: Iterable[str]) -> None:
        with self._lock:
            new = [form for form in forms if form not in self._forms]
            if not new:
                return
            self._forms.update(new)
            for form in new:
                self._fragments.update(form[i : i + FRAGMENT] for i in range(len(form) - FRAGMENT + 1))
            # Longest first, so a form that contains another is replaced whole.
            self._ordered = sorted(self._forms, key=len, reverse=True)

    # -- masking ---------------------------------------------------------------------------
    def mask(self, text: Any, fragments: bool = True) -> str:
        """``text`` with every known secret, any fragment of one, and every pattern masked.

        ``fragments=False`` skips the fragment scan (a pure Python pass over every character):
        for large results whose secret-bearing parts were already masked fragment by fragment.
        """
        text = str(text)
        with self._lock:
            ordered, grams = self._ordered, self._fragments
        for form in ordered:
            if form in text:
                text = text.replace(form, REDACTED)
        text = mask_patterns(text)
        if fragments and grams and len(text) >= FRAGMENT:
            text = _mask_fragments(text, grams)
        return text

    def cut(self, text: Any, limit: int) -> str:
        """Masked first, then cut: a secret across the limit cannot survive in part."""
        masked = self.mask(text)
        return masked if len(masked) <= limit else masked[:limit].rstrip() + "..."

    def mask_value(self, value: Any, fragments: bool = True) -> Any:
        """Strings anywhere in a nested structure (dict keys included) masked."""
        if isinstance(value, str):
            return self.mask(value, fragments)
        if isinstance(value, dict):
            return {self.mask_value(k, fragments): self.mask_value(v, fragments) for k, v in value.items()}
        if isinstance(value, (list, tuple, set)):
            return [self.mask_value(item, fragments) for item in value]
        return value


def mask_patterns(text: str) -> str:
    """Only the patterns: what is secret by its shape, whoever's it is."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda match: match.group(1) + REDACTED, text)
    return text


def _mask_fragments(text: str, grams: set[str]) -> str:
    covered = bytearray(len(text))
    found = False
    for start in range(len(text) - FRAGMENT + 1):
        if text[start : start + FRAGMENT] in grams:
            covered[start : start + FRAGMENT] = b"\x01" * FRAGMENT
            found = True
    if not found:
        return text
    pieces: list[str] = []
    index = 0
    while index < len(text):
        if covered[index]:
            while index < len(text) and covered[index]:
                index += 1
            pieces.append(REDACTED)
        else:
            pieces.append(text[index])
            index += 1
    return "".join(pieces)


_SHARED = SecretMasker()


def shared_masker() -> SecretMasker:
    """The masker of this process: one module run, so every part of it masks the same secrets."""
    return _SHARED
