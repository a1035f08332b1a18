# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attribute mapping: JMESPath expressions compiled once, applied to each source record.

Private to this collection: the names here may change without notice.

A mapping is ``{target_path: expression}``. Each expression is evaluated against the source
record as a dict (``{"id", "dn", "disabled", "attributes": {...}, "groups": [...]}`` for users,
``{"id", "dn", "name", "members"}`` for groups); the result becomes the value of the target
path. One path is the key (``userName``, ``login``, the group name): it must yield a non-empty
string for every record, otherwise that record, and only that record, is reported as an error.

Per-target default mappings live with the targets; this module is the mechanism only.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ansible_collections.idsync.provisioning.plugins.module_utils._model import (
    DesiredGroup,
    DesiredUser,
    ProvisioningError,
    RecordError,
)

try:
    import jmespath
    import jmespath.exceptions
    import jmespath.functions

    HAS_JMESPATH = True
    JMESPATH_IMPORT_ERROR = None
except ImportError:
    HAS_JMESPATH = False
    JMESPATH_IMPORT_ERROR = traceback.format_exc()

if HAS_JMESPATH:

    class _MappingFunctions(jmespath.functions.Functions):
        """Functions mapping authors need beyond JMESPath's own."""

        @jmespath.functions.signature({"types": []})
        def _func_first(self, value):
            # The schema decides whether an attribute is a list (OpenLDAP cn) or a scalar (AD
            # givenName); first() reads either, so one mapping serves both directories.
            if isinstance(value, list):
                return value[0] if value else None
            return value

    _SEARCH_OPTIONS = jmespath.Options(custom_functions=_MappingFunctions())
else:
    _SEARCH_OPTIONS = None

# The group name comes from the directory's group name unless the operator maps it otherwise.
DEFAULT_GROUP_MAPPING = {"name": "name"}
DEFAULT_GROUP_KEY_PATH = "name"


@dataclass(frozen=True)
class Rule:
    """One compiled ``target_path: expression`` pair."""

    path: str
    expression: str
    compiled: Any


@dataclass(frozen=True)
class AttributeMapping:
    """A compiled mapping; ``key_path`` is the target path that identifies an object."""

    key_path: str
    rules: tuple[Rule, ...]

    @property
    def paths(self) -> list[str]:
        return [rule.path for rule in self.rules]

    def values(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Evaluate every rule on ``record``; a failing expression raises naming its path."""
        values: dict[str, Any] = {}
        for rule in self.rules:
            try:
                values[rule.path] = rule.compiled.search(record, options=_SEARCH_OPTIONS)
            except jmespath.exceptions.JMESPathError as exc:
                raise ProvisioningError(
                    f"{_record_name(record)}: mapping for {rule.path!r} ({rule.expression!r}) failed: {exc}"
                ) from exc
        return values


def merge_mapping(defaults: Mapping[str, str], overrides: Mapping[str, str | None] | None) -> dict[str, str]:
    """The default mapping with the user's entries on top.

    An override whose value is None or empty removes that path from the defaults, so an operator
    can stop writing an attribute the default mapping writes.
    """
    merged = dict(defaults)
    for path, expression in (overrides or {}).items():
        if expression is None or (isinstance(expression, str) and not expression.strip()):
            merged.pop(path, None)
        else:
            merged[path] = expression
    return merged


def compile_mapping(mapping: Mapping[str, str], key_path: str) -> AttributeMapping:
    """Compile every expression now, so that a typo fails the task before anything is read."""
    if not HAS_JMESPATH:
        raise ProvisioningError("the jmespath Python library is required for attribute mapping")
    if not isinstance(mapping, Mapping) or not mapping:
        raise ProvisioningError("mapping: expected a non-empty dict of target path -> JMESPath expression")
    if key_path not in mapping:
        raise ProvisioningError(
            f"mapping: the key path {key_path!r} has no expression (mapped paths: {', '.join(sorted(mapping))})"
        )
    rules = []
    for path, expression in mapping.items():
        if not isinstance(path, str) or not path.strip():
            raise ProvisioningError(f"mapping: target path {path!r} must be a non-empty string")
        if not isinstance(expression, str) or not expression.strip():
            raise ProvisioningError(f"mapping for {path!r}: expression {expression!r} must be a non-empty string")
        try:
            compiled = jmespath.compile(expression)
        except jmespath.exceptions.JMESPathError as exc:
            raise ProvisioningError(f"mapping for {path!r}: cannot compile {expression!r}: {exc}") from exc
        rules.append(Rule(path=path, expression=expression, compiled=compiled))
    return AttributeMapping(key_path=key_path, rules=tuple(rules))


def compile_group_mapping(mapping: Mapping[str, str] | None = None) -> AttributeMapping:
    """The group name mapping: ``{"name": "name"}`` with the operator's entries on top."""
    return compile_mapping(merge_mapping(DEFAULT_GROUP_MAPPING, mapping), DEFAULT_GROUP_KEY_PATH)


def map_user(mapping: AttributeMapping, record: Any) -> DesiredUser:
    """A source user (dict or ``SourceUser``) -> ``DesiredUser``; raises for this record only."""
    data = _as_dict(record)
    source_id = _source_id(data)
    values = mapping.values(data)
    key = _key_value(data, mapping.key_path, values[mapping.key_path])
    values[mapping.key_path] = key
    return DesiredUser(source_id=source_id, key=key, attrs=values, disabled=bool(data.get("disabled")))


def map_group(mapping: AttributeMapping, record: Any) -> DesiredGroup:
    """A source group (dict or ``SourceGroup``) -> ``DesiredGroup``; the key path gives its name."""
    data = _as_dict(record)
    source_id = _source_id(data)
    values = mapping.values(data)
    name = _key_value(data, mapping.key_path, values[mapping.key_path])
    members = data.get("members") or []
    return DesiredGroup(source_id=source_id, name=name, members={str(member) for member in members})


def map_users(mapping: AttributeMapping, records: Iterable[Any]) -> tuple[list[DesiredUser], list[RecordError]]:
    """Map every record; the ones that fail are returned as errors instead of stopping the rest."""
    return _map_all(map_user, "user", mapping, records)


def map_groups(mapping: AttributeMapping, records: Iterable[Any]) -> tuple[list[DesiredGroup], list[RecordError]]:
    return _map_all(map_group, "group", mapping, records)


def _map_all(map_one, object_type: str, mapping: AttributeMapping, records: Iterable[Any]):
    desired = []
    errors = []
    for record in records:
        try:
            desired.append(map_one(mapping, record))
        except ProvisioningError as exc:
            data = _as_dict(record)
            source_id = data.get("id")
            errors.append(
                RecordError(
                    object_type=object_type,
                    source_id=str(source_id) if source_id not in (None, "") else None,
                    name=_record_name(data),
                    message=exc.message,
                )
            )
    return desired, errors


def _as_dict(record: Any) -> dict[str, Any]:
    if isinstance(record, Mapping):
        return dict(record)
    if hasattr(record, "as_dict"):
        return record.as_dict()
    raise ProvisioningError(f"source record of type {type(record).__name__} is not a dict")


def _record_name(record: Mapping[str, Any]) -> str:
    return str(record.get("dn") or record.get("id") or "<record without dn or id>")


def _source_id(record: Mapping[str, Any]) -> str:
    # Without a stable id the provisioner could not recognise the object on the next run.
    source_id = record.get("id")
    if source_id is None or str(source_id).strip() == "":
        raise ProvisioningError(f"{_record_name(record)}: the record has no stable id")
    return str(source_id)


def _key_value(record: Mapping[str, Any], key_path: str, value: Any) -> str:
    if isinstance(value, (bool, list, dict)):
        raise ProvisioningError(
            f"{_record_name(record)}: the key {key_path!r} must be a single string, got {value!r}"
            " (for a multi-valued attribute pick one value, e.g. attributes.uid[0])"
        )
    if isinstance(value, (int, float)):
        value = str(value)
    if value is None or not str(value).strip():
        raise ProvisioningError(f"{_record_name(record)}: the key {key_path!r} is missing or empty")
    return str(value).strip()
