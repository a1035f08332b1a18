# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SCIM 2.0 connector (RFC 7643 / RFC 7644): users, groups, memberships.

Private to this collection: the names here may change without notice.

The connector reads ``/ServiceProviderConfig`` once and adapts: PATCH when supported, else PUT
of the full resource (attributes it does not manage preserved); ``/Bulk`` for creates when
supported; the page size bounded by ``filter.maxResults``; ``If-Match`` on writes when ETags
are supported. Ownership markers live in ``externalId``.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ansible_collections.idsync.provisioning.plugins.module_utils._connector import (
    Capabilities,
    Connector,
    MemberFailures,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._http import HttpClient, bearer_auth, paginate
from ansible_collections.idsync.provisioning.plugins.module_utils._kit import (
    Target,
    absent_on_404,
    create_in_batches,
    create_once,
    http_client,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._kit import (
    connection_argument_spec as connection_options,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._model import (
    ProvisioningError,
    TargetGroup,
    TargetUser,
    is_empty,
)

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
SCIM_MEDIA_TYPE = "application/scim+json"
CORE_SCHEMAS = frozenset(s.lower() for s in (USER_SCHEMA, GROUP_SCHEMA))


# -- small SCIM helpers --------------------------------------------------------------------
def filter_literal(value: str) -> str:
    """A SCIM filter string literal (RFC 7644 3.4.2.2: JSON string rules, control characters too)."""
    return json.dumps(str(value), ensure_ascii=False)


def get_ci(node: Any, name: str) -> Any:
    """``node[name]`` with SCIM's case-insensitive attribute names; None when absent."""
    if not isinstance(node, dict):
        return None
    if name in node:
        return node[name]
    lowered = name.lower()
    for key, value in node.items():
        if key.lower() == lowered:
            return value
    return None


def _key_ci(node: dict[str, Any], name: str) -> str:
    """The key already used in ``node`` for ``name`` (any case), else ``name``."""
    lowered = name.lower()
    return next((key for key in node if key.lower() == lowered), name)


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.lower() == right.lower()
    return left == right


_PATH = re.compile(r"^(?P<attr>[A-Za-z$][\w$-]*)(?:\[(?P<filter>[^\]]*)\])?(?:\.(?P<sub>[A-Za-z$][\w$-]*))?$")
_VALUE_FILTER = re.compile(r"^\s*(?P<attr>[A-Za-z$][\w$-]*)\s+eq\s+(?P<literal>.+?)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ScimPath:
    """An attribute path of RFC 7644 3.5.2 (``attrPath`` / ``valuePath [subAttr]``).

    ``urn:...:enterprise:2.0:User:manager.value``, ``name.givenName``,
    ``emails[type eq "work"].value``. Only ``eq`` value filters are understood.
    """

    text: str
    urn: str | None
    attribute: str
    value_filter: tuple[str, Any] | None
    sub_attribute: str | None

    @classmethod
    def parse(cls, path: str) -> ScimPath:
        urn, rest = None, path
        head = path.split("[", 1)[0]
        if head.lower().startswith("urn:"):
            cut = head.rfind(":")
            urn, rest = path[:cut], path[cut + 1 :]
            if urn.lower() in CORE_SCHEMAS:
                urn = None  # a fully qualified core attribute lives at the top level
        match = _PATH.match(rest)
        if not match:
            raise ProvisioningError(f"unsupported SCIM attribute path {path!r}")
        value_filter = None
        if match.group("filter") is not None:
            condition = _VALUE_FILTER.match(match.group("filter"))
            if not condition:
                raise ProvisioningError(f"unsupported filter in SCIM attribute path {path!r}: only 'attr eq value'")
            try:
                literal = json.loads(condition.group("literal"))
            except ValueError:
                raise ProvisioningError(f"bad literal in SCIM attribute path {path!r}") from None
            value_filter = (condition.group("attr"), literal)
        return cls(path, urn, match.group("attr"), value_filter, match.group("sub"))

    @property
    def attribute_path(self) -> str:
        """The path of the whole attribute, without value filter and sub-attribute."""
        return f"{self.urn}:{self.attribute}" if self.urn else self.attribute

    def container(self, resource: dict[str, Any], create: bool = False) -> dict[str, Any] | None:
        if not self.urn:
            return resource
        node = get_ci(resource, self.urn)
        if node is None and create:
            node = resource[self.urn] = {}
            schemas = resource.setdefault("schemas", [])
            if self.urn not in schemas:
                schemas.append(self.urn)
        return node if isinstance(node, dict) else None

    def matching(self, values: Any) -> list[dict[str, Any]]:
        if not isinstance(values, list) or self.value_filter is None:
            return []
        name, literal = self.value_filter
        return [item for item in values if isinstance(item, dict) and _same(get_ci(item, name), literal)]

    def read(self, resource: dict[str, Any]) -> Any:
        value = get_ci(self.container(resource), self.attribute)
        if self.value_filter is not None:
            matches = self.matching(value)
            if not matches:
                return None
            return get_ci(matches[0], self.sub_attribute) if self.sub_attribute else matches[0]
        if self.sub_attribute is None or value is None:
            return value
        if isinstance(value, list):  # "emails.value": the sub-attribute of every value
            return [get_ci(item, self.sub_attribute) for item in value if isinstance(item, dict)]
        return get_ci(value, self.sub_attribute)

    def write(self, resource: dict[str, Any], value: Any) -> None:
        """Set (or, with None, remove) the value in a resource being built or replaced."""
        container = self.container(resource, create=value is not None)
        if container is None:
            return
        key = _key_ci(container, self.attribute)
        if self.value_filter is not None:
            values = container.setdefault(key, [])
            matches = self.matching(values)
            if value is None:
                if self.sub_attribute:
                    for item in matches:
                        item.pop(_key_ci(item, self.sub_attribute), None)
                else:
                    container[key] = [item for item in values if item not in matches]
                return
            if not matches:
                name, literal = self.value_filter
                values.append({name: literal})
                matches = values[-1:]
            for item in matches:
                if self.sub_attribute:
                    item[_key_ci(item, self.sub_attribute)] = value
                elif isinstance(value, dict):
                    item.update(value)
        elif self.sub_attribute:
            if value is None:
                parent = container.get(key)
                if isinstance(parent, dict):
                    parent.pop(_key_ci(parent, self.sub_attribute), None)
                return
            parent = container.setdefault(key, {})
            parent[_key_ci(parent, self.sub_attribute)] = value
        elif value is None:
            container.pop(key, None)
        else:
            container[key] = value


def _boolean(value: Any, default: bool = True) -> bool:
    if value is None:
        return default
    if isinstance(value, str):  # some services send "True"/"false" strings
        return value.strip().lower() == "true"
    return bool(value)


@dataclass(frozen=True)
class ServiceFeatures:
    """What ``/ServiceProviderConfig`` announces, reduced to what the connector uses."""

    patch: bool = True
    bulk: bool = False
    bulk_max_operations: int = 0
    bulk_max_payload: int = 0
    filter: bool = True
    filter_max_results: int | None = None
    etag: bool = False
    announced: bool = True  # False: the service has no readable configuration, these are guesses

    @classmethod
    def from_resource(cls, config: dict[str, Any]) -> ServiceFeatures:
        def feature(name: str) -> dict[str, Any]:
            value = get_ci(config, name)
            return value if isinstance(value, dict) else {}

        def number(section: dict[str, Any], name: str) -> int | None:
            try:
                return int(get_ci(section, name))
            except (TypeError, ValueError):
                return None

        bulk = feature("bulk")
        filter_ = feature("filter")
        return cls(
            patch=_boolean(get_ci(feature("patch"), "supported"), default=False),
            bulk=_boolean(get_ci(bulk, "supported"), default=False),
            bulk_max_operations=number(bulk, "maxOperations") or 0,
            bulk_max_payload=number(bulk, "maxPayloadSize") or 0,
            filter=_boolean(get_ci(filter_, "supported"), default=False),
            filter_max_results=number(filter_, "maxResults"),
            etag=_boolean(get_ci(feature("etag"), "supported"), default=False),
        )


# -- the connector -------------------------------------------------------------------------
class ScimConnector(Connector):
    """A SCIM 2.0 service provider.

    Authentication: ``token`` (bearer) or ``username`` + ``password`` (basic). Feature
    switches left at None follow ``/ServiceProviderConfig``; True/False force them (a service
    that announces PATCH but mishandles it can be driven with ``use_patch=False``).
    Groups are listed with their members where the service returns them (one listing, no read
    per group); ``exclude_members_in_list=True`` asks for lists without them
    (``excludedAttributes=members``) and reads each group's members on its own instead.
    """

    # RFC 7643's names of the engine's fields, for previews and reports (Connector.field_name).
    FIELD_NAMES = {
        "user": {"key": "userName", "enabled": "active", "link": "externalId"},
        "group": {"name": "displayName", "link": "externalId", "members": "members"},
    }

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        *,
        validate_certs: bool = True,
        ca_path: str | None = None,
        timeout: tuple[float, float] | float = (10.0, 60.0),
        retries: int = 5,
        page_size: int = 100,
        member_chunk: int = 100,
        use_patch: bool | None = None,
        use_bulk: bool | None = None,
        bulk_size: int | None = None,
        use_etag: bool | None = None,
        link_attribute: bool = True,
        group_external_id: bool = True,
        exclude_members_in_list: bool = False,
        remove_members_by_value: bool = False,
        users_endpoint: str = "/Users",
        groups_endpoint: str = "/Groups",
        client: HttpClient | None = None,
    ):
        if client is None:
            if token:
                auth: Any = bearer_auth(token)
            elif username:
                auth = (username, password or "")
            else:
                auth = None
            client = HttpClient(
                base_url,
                auth=auth,
                timeout=timeout,
                validate_certs=validate_certs,
                ca_path=ca_path,
                retries=retries,
                json_content_type=SCIM_MEDIA_TYPE,
                default_headers={"Accept": f"{SCIM_MEDIA_TYPE}, application/json"},
                secrets=[s for s in (token, password) if s],
            )
        self.client = client
        self.requested_page_size = max(1, int(page_size))
        self.member_chunk = max(1, int(member_chunk))
        self.use_patch = use_patch
        self.use_bulk = use_bulk
        self.bulk_size = bulk_size
        self.use_etag = use_etag
        self.link_attribute = link_attribute
        self.group_external_id = group_external_id
        self.exclude_members_in_list = exclude_members_in_list
        self.remove_members_by_value = remove_members_by_value
        self.users_endpoint = "/" + users_endpoint.strip("/")
        self.groups_endpoint = "/" + groups_endpoint.strip("/")
        self._features: ServiceFeatures | None = None
        self._features_lock = threading.Lock()  # the engine calls from several threads: read it once

    # -- service configuration -----------------------------------------------------------
    @property
    def features(self) -> ServiceFeatures:
        """``/ServiceProviderConfig``, read once."""
        with self._features_lock:
            if self._features is None:
                self._features = self._read_features()
        return self._features

    def _read_features(self) -> ServiceFeatures:
        try:
            config = self.client.request("GET", "/ServiceProviderConfig", expected=(200,))
        except ProvisioningError as exc:
            if exc.status not in (404, 501):
                raise
            # No readable configuration: assume the common subset (PATCH and filters, no bulk).
            return ServiceFeatures(announced=False)
        return ServiceFeatures.from_resource(config if isinstance(config, dict) else {})

    @property
    def patch_enabled(self) -> bool:
        return self.features.patch if self.use_patch is None else self.use_patch

    @property
    def etag_enabled(self) -> bool:
        return self.features.etag if self.use_etag is None else (self.use_etag and self.features.etag)

    @property
    def bulk_batch(self) -> int:
        """How many creates go into one ``/Bulk`` request; 1 when bulk is not used."""
        features = self.features
        if self.use_bulk is False or not features.bulk or features.bulk_max_operations < 2:
            return 1
        return max(1, min(self.bulk_size or 100, features.bulk_max_operations))

    @property
    def page_size(self) -> int:
        bound = self.features.filter_max_results
        return min(self.requested_page_size, bound) if bound else self.requested_page_size

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]
        return Capabilities(
            user_link="target" if self.link_attribute else "state",
            group_link="target" if self.group_external_id else "state",
            member_chunk=self.member_chunk,
            create_batch=self.bulk_batch,
        )

    # -- reading -------------------------------------------------------------------------
    def _list(self, endpoint: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every resource of an endpoint, with 1-based startIndex/count paging.

        The next index follows what the page held, not what was asked: services may return
        fewer than ``count`` (their own maximum) on any page.
        """
        count = self.page_size

        def fetch(start_index: int) -> tuple[list[dict[str, Any]], int | None]:
            query = dict(params or {}, startIndex=start_index, count=count)
            page = self.client.request("GET", endpoint, params=query, expected=(200,)) or {}
            resources = get_ci(page, "Resources") or []
            total = get_ci(page, "totalResults")
            following = start_index + len(resources)
            if not resources:
                if total is not None and int(total) >= start_index:
                    raise ProvisioningError(
                        f"GET {endpoint}: empty page at startIndex {start_index} although totalResults is {total}"
                    )
                return resources, None
            if total is not None and following > int(total):
                return resources, None
            return resources, following

        seen: set[str] = set()
        for resource in paginate(fetch, first_token=1):
            # A resource shifted across a page boundary by a concurrent change is listed once.
            resource_id = get_ci(resource, "id")
            if resource_id in seen:
                continue
            seen.add(resource_id)
            yield resource

    def _search(self, endpoint: str, filter_text: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        query = dict(params or {}, filter=filter_text)
        page = self.client.request("GET", endpoint, params=query, expected=(200,), path_template=f"{endpoint}?filter")
        return get_ci(page or {}, "Resources") or []

    def to_user(self, resource: dict[str, Any]) -> TargetUser:
        return TargetUser(
            id=str(get_ci(resource, "id")),
            key=get_ci(resource, "userName") or "",
            enabled=_boolean(get_ci(resource, "active"), default=True),
            link=get_ci(resource, "externalId") if self.link_attribute else None,
            resource=resource,
        )

    def to_group(self, resource: dict[str, Any], members_listed: bool = False) -> TargetGroup:
        group = TargetGroup(
            id=str(get_ci(resource, "id")),
            name=get_ci(resource, "displayName") or "",
            link=get_ci(resource, "externalId") if self.group_external_id else None,
            resource=resource,
        )
        if members_listed:
            group.members = _member_ids(resource)
        return group

    def list_users(self) -> Iterator[TargetUser]:
        for resource in self._list(self.users_endpoint):
            yield self.to_user(resource)

    def find_user(self, key: str) -> TargetUser | None:
        """The account whose ``userName`` equals ``key``, case-insensitively (RFC 7643: caseExact false)."""
        if not self.features.filter:
            return next((user for user in self.list_users() if user.key.lower() == key.lower()), None)
        found = [
            resource
            for resource in self._search(self.users_endpoint, f"userName eq {filter_literal(key)}")
            if str(get_ci(resource, "userName") or "").lower() == key.lower()
        ]
        if len(found) > 1:
            ids = ", ".join(str(get_ci(r, "id")) for r in found)
            raise ProvisioningError(f"find user {key}: {len(found)} accounts have this userName ({ids})")
        return self.to_user(found[0]) if found else None

    def find_user_by_link(self, link: str) -> TargetUser | None:
        """The account whose ``externalId`` is ``link`` (exact: externalId is caseExact)."""
        if not self.features.filter:
            return next((user for user in self.list_users() if get_ci(user.resource, "externalId") == link), None)
        found = [
            r
            for r in self._search(self.users_endpoint, f"externalId eq {filter_literal(link)}")
            if get_ci(r, "externalId") == link
        ]
        return self.to_user(found[0]) if found else None

    def get_user(self, user_id: str) -> TargetUser | None:
        resource = self._get_resource(self.users_endpoint, user_id)
        return self.to_user(resource) if resource is not None else None

    def _get_resource(self, endpoint: str, resource_id: str, params: dict[str, Any] | None = None) -> Any:
        location = self._location(endpoint, resource_id)
        return absent_on_404(lambda: self.client.request("GET", location, params=params, expected=(200,)))

    def read_path(self, resource: dict[str, Any], path: str) -> Any:
        return ScimPath.parse(path).read(resource)

    # -- user writes ---------------------------------------------------------------------
    def build_user(self, attrs: dict[str, Any], link: str | None, enabled: bool) -> dict[str, Any]:
        """A SCIM User resource from flat attribute paths."""
        resource: dict[str, Any] = {"schemas": [USER_SCHEMA]}
        for path, value in attrs.items():
            if not is_empty(value):
                ScimPath.parse(path).write(resource, copy.deepcopy(value))
        if link and self.link_attribute:
            resource["externalId"] = link
        resource["active"] = bool(enabled)
        return resource

    def create_user(self, attrs: dict[str, Any], link: str | None, enabled: bool) -> TargetUser:
        resource = self.build_user(attrs, link, enabled)
        key = str(get_ci(resource, "userName") or "")
        if not key:
            raise ProvisioningError("create user: the mapped attributes have no userName")

        def post() -> TargetUser:
            created = self.client.request("POST", self.users_endpoint, json=resource, expected=(200, 201))
            if not isinstance(created, dict) or not get_ci(created, "id"):
                # A service that answers 201 without a body: read back what it made.
                found = self.find_user(key)
                if found is None:
                    raise ProvisioningError(f"POST {self.users_endpoint}: created {key} but cannot find it")
                return found
            return self.to_user(created)

        return create_once(post, lambda: self.find_user(key), f"the account {key}", self._ours(link))

    def _ours(self, link: str | None) -> Any:
        """Whether an account found by key after an ambiguous create is the one this run made."""
        return None if not self.link_attribute else (lambda user: user.link == link)

    def create_users(self, items: list[tuple[dict[str, Any], str | None, bool]]) -> list[TargetUser | Exception]:
        batch = self.bulk_batch
        if batch < 2 or len(items) < 2:
            return super().create_users(items)
        return create_in_batches(items, batch, self._send_bulk, lambda item: self.create_user(*item), self._lookup_one)

    def _send_bulk(self, items: list[tuple[dict[str, Any], str | None, bool]]) -> list[TargetUser | Exception | None]:
        """One /Bulk request: per item its account, its error, or None when the service left it out."""
        results: list[TargetUser | Exception | None] = [None] * len(items)
        operations = []
        for index, (attrs, link, enabled) in enumerate(items):
            try:
                data = self.build_user(attrs, link, enabled)
            except ProvisioningError as exc:
                results[index] = exc
                continue
            operations.append({"method": "POST", "path": self.users_endpoint, "bulkId": f"user{index}", "data": data})
        limit = self.features.bulk_max_payload
        if limit and len(operations) > 1 and len(json.dumps(operations)) > limit * 0.9:
            # Over the announced payload size: halve until it fits (0.9 leaves room for the envelope).
            half = len(items) // 2
            return self._send_bulk(items[:half]) + self._send_bulk(items[half:])
        if not operations:
            return results
        body = {"schemas": [BULK_REQUEST_SCHEMA], "Operations": operations}
        response = self.client.request("POST", "/Bulk", json=body, expected=(200,))
        answered = {
            str(get_ci(answer, "bulkId")): answer
            for answer in get_ci(response or {}, "Operations") or []
            if get_ci(answer, "bulkId")
        }
        for operation in operations:
            answer = answered.get(operation["bulkId"])
            if answer is not None:
                results[int(operation["bulkId"][4:])] = self._bulk_result(operation, answer)
        return results

    def _lookup_one(self, item: tuple[dict[str, Any], str | None, bool]) -> TargetUser | None:
        """After an ambiguous batch: the item's account if the batch made it (and it is ours)."""
        attrs, link, _enabled = item
        key = str(self.build_user(attrs, link, True).get("userName") or "")
        existing = self.find_user(key) if key else None
        ours = self._ours(link)
        return existing if existing is not None and (ours is None or ours(existing)) else None

    def _bulk_result(self, operation: dict[str, Any], answer: dict[str, Any]) -> TargetUser | Exception:
        data = operation["data"]
        key = get_ci(data, "userName")
        try:
            status = int(get_ci(answer, "status") or 0)
        except (TypeError, ValueError):
            status = 0
        if 200 <= status < 300:
            response = get_ci(answer, "response")
            if isinstance(response, dict) and get_ci(response, "id"):
                return self.to_user(response)
            location = str(get_ci(answer, "location") or "")
            resource_id = location.rstrip("/").rsplit("/", 1)[-1] if location else None
            if not resource_id:
                try:
                    return self.find_user(key) or ProvisioningError(f"POST /Bulk: created {key} but cannot find it")
                except ProvisioningError as exc:
                    return exc
            resource = dict(copy.deepcopy(data), id=resource_id)
            resource["meta"] = {"location": location, "version": get_ci(answer, "version")}
            return self.to_user(resource)
        text = self.client.service_text(get_ci(answer, "response")) or "failed"
        return ProvisioningError(
            f"POST {self.users_endpoint} (bulk {operation['bulkId']}, {key}): {status} {text}",
            status or None,
            self.client.masker.mask_value(get_ci(answer, "response")),
        )

    def update_user(self, user: TargetUser, changes: dict[str, Any], link: str | None = None) -> None:
        changes = dict(changes)
        if link is not None and self.link_attribute:
            changes["externalId"] = link
        if not changes:
            return
        self._modify(self.users_endpoint, user, changes)
        if "externalId" in changes and self.link_attribute:
            user.link = link
        new_key = self.read_path(user.resource, "userName")
        if new_key:
            user.key = new_key

    def set_user_enabled(self, user: TargetUser, enabled: bool) -> None:
        self._modify(self.users_endpoint, user, {"active": bool(enabled)})
        user.enabled = bool(enabled)

    def delete_user(self, user: TargetUser) -> None:
        self._delete(self.users_endpoint, user.id)

    # -- groups --------------------------------------------------------------------------
    def list_groups(self) -> Iterator[TargetGroup]:
        """Every group, with its members when the listing carries them (RFC 7643: ``members`` is
        returned by default), so a sync reads no group on its own; see ``_groups_from``."""
        params = {"excludedAttributes": "members"} if self.exclude_members_in_list else None
        yield from self._groups_from(list(self._list(self.groups_endpoint, params)))

    def _groups_from(self, resources: list[dict[str, Any]]) -> list[TargetGroup]:
        """Groups of one listing. A service that returns members in lists shows it on every group
        that has any; a group without the attribute then has none (RFC 7643 2.5: an empty
        multi-valued attribute is left out). When no group of the listing carries members, the
        service may leave them out of lists (as many do): they stay unknown and each group's
        members are read on their own (``group_members``)."""
        listed = not self.exclude_members_in_list and any(get_ci(r, "members") is not None for r in resources)
        return [self.to_group(resource, members_listed=listed) for resource in resources]

    def find_groups(self, name: str) -> list[TargetGroup]:
        """Groups whose displayName equals ``name`` (case-insensitively); services allow several."""
        params = {"excludedAttributes": "members"} if self.exclude_members_in_list else None
        if self.features.filter:
            resources = self._search(self.groups_endpoint, f"displayName eq {filter_literal(name)}", params)
        else:
            resources = list(self._list(self.groups_endpoint, params))
        return self._groups_from([r for r in resources if str(get_ci(r, "displayName") or "").lower() == name.lower()])

    def group_members(self, group: TargetGroup) -> set[str]:
        resource = self._get_resource(self.groups_endpoint, group.id, params={"attributes": "members"})
        if resource is None:
            raise ProvisioningError(f"GET {self.groups_endpoint}/{group.id}: 404 group {group.name} not found", 404)
        group.members = _member_ids(resource)
        return set(group.members)

    def create_group(self, name: str, link: str | None) -> TargetGroup:
        resource: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "displayName": name}
        if link and self.group_external_id:
            resource["externalId"] = link
        marked = bool(link and self.group_external_id)

        def post() -> TargetGroup:
            created = self.client.request("POST", self.groups_endpoint, json=resource, expected=(200, 201))
            if not isinstance(created, dict) or not get_ci(created, "id"):
                raise ProvisioningError(f"POST {self.groups_endpoint}: created group {name} but the answer has no id")
            group = self.to_group(created)
            group.members = _member_ids(created)
            return group

        def ours_by_marker() -> TargetGroup | None:
            # displayName is not unique in SCIM: only a group carrying our marker is ours.
            return next((group for group in self.find_groups(name) if group.link == link), None)

        return create_once(post, ours_by_marker, f"the group {name} (no externalId)", identifiable=marked)

    def update_group(self, group: TargetGroup, name: str | None = None, link: str | None = None) -> None:
        changes: dict[str, Any] = {}
        if name is not None:
            changes["displayName"] = name
        if link is not None and self.group_external_id:
            changes["externalId"] = link
        if not changes:
            return
        self._modify(self.groups_endpoint, group, changes)
        if name is not None:
            group.name = name
        if "externalId" in changes:
            group.link = link

    def delete_group(self, group: TargetGroup) -> None:
        self._delete(self.groups_endpoint, group.id)

    def change_members(self, group: TargetGroup, add: list[str], remove: list[str]) -> MemberFailures:
        # SCIM's PATCH is all or nothing: a refused request raises, so no member fails alone.
        add = list(dict.fromkeys(add))
        adding = set(add)
        remove = [member for member in dict.fromkeys(remove) if member not in adding]
        if not add and not remove:
            return {}
        if not self.patch_enabled:
            self._replace_members(group, add, remove)
        else:
            location = self._location(self.groups_endpoint, group.id)
            # Adds and removes share requests, at most member_chunk ids in each. No If-Match: each
            # operation is self-contained, and a version check would only force re-reads of the
            # (possibly large) member list.
            changes = [("add", member) for member in add] + [("remove", member) for member in remove]
            for start in range(0, len(changes), self.member_chunk):
                self._send_patch(location, self._member_operations(changes[start : start + self.member_chunk]))
        if group.members is not None:
            group.members = (group.members | adding) - set(remove)
        return {}

    def _member_operations(self, changes: list[tuple[str, str]]) -> list[dict[str, Any]]:
        added = [{"value": member} for kind, member in changes if kind == "add"]
        removed = [member for kind, member in changes if kind == "remove"]
        operations: list[dict[str, Any]] = []
        if added:
            operations.append({"op": "add", "path": "members", "value": added})
        if removed and self.remove_members_by_value:
            # The form some services want instead of a filter (RFC 7644 allows both).
            operations.append({"op": "remove", "path": "members", "value": [{"value": m} for m in removed]})
        elif removed:
            operations += [{"op": "remove", "path": f"members[value eq {filter_literal(m)}]"} for m in removed]
        return operations

    def _replace_members(self, group: TargetGroup, add: list[str], remove: list[str]) -> None:
        """PUT fallback: the whole group, members included, under If-Match when possible."""

        removing = set(remove)

        def apply(resource: dict[str, Any]) -> None:
            key = _key_ci(resource, "members")
            current = [m for m in resource.get(key) or [] if get_ci(m, "value") not in removing]
            present = {get_ci(m, "value") for m in current}
            current += [{"value": member} for member in add if member not in present]
            resource[key] = current

        self._put_with(self.groups_endpoint, group, apply, fresh=True)

    # -- write machinery -----------------------------------------------------------------
    @staticmethod
    def _location(endpoint: str, resource_id: str) -> str:
        return f"{endpoint}/{quote(str(resource_id), safe='')}"

    def _delete(self, endpoint: str, resource_id: str) -> None:
        # 404: already gone (e.g. a retried DELETE whose first attempt went through): the goal holds.
        self.client.request("DELETE", self._location(endpoint, resource_id), expected=(200, 204, 404))

    def _modify(self, endpoint: str, target: TargetUser | TargetGroup, changes: dict[str, Any]) -> None:
        if self.patch_enabled:
            self._patch_attributes(endpoint, target, changes)
        else:

            def apply(resource: dict[str, Any]) -> None:
                for path, value in changes.items():
                    ScimPath.parse(path).write(resource, None if is_empty(value) else copy.deepcopy(value))

            # A group listed without members must be re-read, or PUT would empty it.
            self._put_with(endpoint, target, apply, fresh=isinstance(target, TargetGroup))

    def _patch_operations(self, resource: dict[str, Any], changes: dict[str, Any]) -> list[dict[str, Any]]:
        """RFC 7644 3.5.2 operations writing exactly ``changes`` (path -> value; None removes)."""
        operations = []
        for path, value in changes.items():
            parsed = ScimPath.parse(path)
            current = parsed.read(resource)
            if is_empty(value):
                if current is not None:
                    operations.append({"op": "remove", "path": path})
                continue
            if parsed.value_filter is not None and not parsed.matching(
                get_ci(parsed.container(resource), parsed.attribute)
            ):
                # "replace" with a filter that matches nothing is a 400 noTarget: add the value instead.
                name, literal = parsed.value_filter
                item = (
                    {name: literal, parsed.sub_attribute: value}
                    if parsed.sub_attribute
                    else dict(value, **{name: literal})
                )
                operations.append({"op": "add", "path": parsed.attribute_path, "value": [item]})
                continue
            operations.append({"op": "replace", "path": path, "value": value})
        return operations

    def _patch_attributes(self, endpoint: str, target: TargetUser | TargetGroup, changes: dict[str, Any]) -> None:
        location = self._location(endpoint, target.id)
        operations = self._patch_operations(target.resource, changes)
        if not operations:
            return
        try:
            response = self._send_patch(location, operations, self._version(target.resource))
        except ProvisioningError as exc:
            if exc.status != 412:
                raise
            # Changed since we read it: our values still win for the paths we manage; retry on the new version.
            fresh = self._get_resource(endpoint, target.id)
            if fresh is None:
                raise
            target.resource = fresh
            response = self._send_patch(location, self._patch_operations(fresh, changes), self._version(fresh))
        self._after_write(target, response, changes)

    def _send_patch(self, location: str, operations: list[dict[str, Any]], version: str | None = None) -> Any:
        headers = {"If-Match": version} if version and self.etag_enabled else None
        body = {"schemas": [PATCH_OP_SCHEMA], "Operations": operations}
        return self.client.send("PATCH", location, json=body, headers=headers, expected=(200, 204))

    def _put_with(self, endpoint: str, target: TargetUser | TargetGroup, apply: Any, fresh: bool) -> None:
        """PUT the full resource after ``apply`` changed it; attributes we do not manage are kept."""
        location = self._location(endpoint, target.id)
        resource = target.resource if not fresh and self.etag_enabled and self._version(target.resource) else None
        for attempt in range(2):
            if resource is None:
                resource = self._get_resource(endpoint, target.id)
                if resource is None:
                    raise ProvisioningError(f"GET {location}: 404 not found (deleted meanwhile?)", 404)
            body = copy.deepcopy(resource)
            body.pop(_key_ci(body, "meta"), None)
            apply(body)
            version = self._version(resource)
            headers = {"If-Match": version} if version and self.etag_enabled else None
            try:
                response = self.client.send("PUT", location, json=body, headers=headers, expected=(200, 204))
            except ProvisioningError as exc:
                if exc.status == 412 and attempt == 0:
                    resource = None  # changed since read: read again and re-apply
                    continue
                raise
            self._after_write(target, response, None, body)
            return

    def _after_write(
        self,
        target: TargetUser | TargetGroup,
        response: Any,
        changes: dict[str, Any] | None,
        sent: dict[str, Any] | None = None,
    ) -> None:
        """Keep ``target.resource`` current, so a second write in the same run has the right version."""
        body = None
        if response is not None and response.status_code == 200 and response.content:
            try:
                body = response.json()
            except ValueError:
                body = None
        if isinstance(body, dict) and get_ci(body, "id"):
            target.resource = body
        else:
            resource = sent if sent is not None else copy.deepcopy(target.resource)
            for path, value in (changes or {}).items():
                ScimPath.parse(path).write(resource, None if is_empty(value) else copy.deepcopy(value))
            etag = response.headers.get("ETag") if response is not None else None
            if etag:
                resource.setdefault("meta", {})["version"] = etag
            target.resource = resource
        if isinstance(target, TargetUser):
            target.enabled = _boolean(get_ci(target.resource, "active"), default=True)

    @staticmethod
    def _version(resource: dict[str, Any]) -> str | None:
        return get_ci(get_ci(resource, "meta") or {}, "version")


def _member_ids(resource: dict[str, Any]) -> set[str]:
    """User ids among a group's members (nested groups, type "Group", are not users)."""
    members: Iterable[Any] = get_ci(resource, "members") or []
    return {
        str(get_ci(member, "value"))
        for member in members
        if isinstance(member, dict)
        and get_ci(member, "value") is not None
        and str(get_ci(member, "type") or "User").lower() != "group"
    }


# -- what the modules need ------------------------------------------------------------------
USER_KEY = "userName"
PASSWORD_PATH = "password"  # RFC 7643 4.1: writeOnly, returned "never"

# Works for AD (single-valued givenName, sAMAccountName) and OpenLDAP (multi-valued cn, uid).
DEFAULT_USER_MAPPING = {
    "userName": "attributes.sAMAccountName || first(attributes.uid)",
    "name.givenName": "first(attributes.givenName)",
    "name.familyName": "first(attributes.sn)",
    "displayName": "first(attributes.displayName) || first(attributes.cn)",
    "emails": "attributes.mail && [{value: first(attributes.mail), type: 'work', primary: `true`}]",
}


# Which connection options act on which module: every module takes the base options; the others only
# where they change what the module does (ansible-doc lists exactly these, from the doc fragments
# idsync.provisioning.scim, .scim.writes, .scim.members and .scim.sync_only).
OPTION_GROUPS = ("writes", "members", "sync")
SYNC_OPTION_GROUPS = OPTION_GROUPS  # scim_sync takes them all


def connection_argument_spec(*groups: str, auth_aliases: bool = False) -> dict[str, Any]:
    """Connection options of a SCIM module (documented in doc_fragments/scim.py).

    ``groups`` adds option groups to the base connection (url, credentials, TLS, timeout, paging):
    ``writes`` (``use_patch``: modules that write users or groups), ``members`` (``member_chunk``:
    modules that change memberships), ``sync`` (``use_bulk``, ``group_external_id``: the sync).
    ``auth_aliases`` keeps the former names ``username`` / ``password`` of the basic-auth options,
    for modules that have no account option they could be taken for.
    """
    from ansible.module_utils.basic import env_fallback

    unknown = set(groups) - set(OPTION_GROUPS)
    if unknown:
        raise ValueError(f"unknown SCIM option groups: {', '.join(sorted(unknown))}")
    spec = connection_options("SCIM")
    spec.update(
        {
            "token": {"type": "str", "no_log": True, "fallback": (env_fallback, ["SCIM_TOKEN"])},
            "auth_username": {"type": "str", "fallback": (env_fallback, ["SCIM_USERNAME"])},
            "auth_password": {"type": "str", "no_log": True, "fallback": (env_fallback, ["SCIM_PASSWORD"])},
            "page_size": {"type": "int", "default": 100},
        }
    )
    if auth_aliases:
        spec["auth_username"]["aliases"] = ["username"]
        spec["auth_password"]["aliases"] = ["password"]
    if "writes" in groups:
        spec["use_patch"] = {"type": "bool"}
    if "members" in groups:
        spec["member_chunk"] = {"type": "int", "default": 100}
    if "sync" in groups:
        spec["use_bulk"] = {"type": "bool", "default": False}
        spec["group_external_id"] = {"type": "bool", "default": True}
    return spec


def connector_from_params(params: dict[str, Any]) -> ScimConnector:
    """A connector from module parameters; errors name the option.

    Options a module does not take (see ``connection_argument_spec``) keep the connector's defaults.
    """
    if not params.get("url"):
        raise ProvisioningError("url: the SCIM base URL is required (or set SCIM_URL)")
    if params.get("token") and params.get("auth_username"):
        raise ProvisioningError(
            "token and auth_username are mutually exclusive: use a bearer token or basic authentication"
        )
    if params.get("auth_password") and not params.get("auth_username"):
        raise ProvisioningError("auth_password: needs auth_username (or SCIM_USERNAME)")
    for option in ("member_chunk", "page_size"):
        if params.get(option) is not None and params[option] < 1:
            raise ProvisioningError(f"{option}: must be at least 1, got {params[option]}")
    token, username = params.get("token"), params.get("auth_username")
    client = http_client(
        params,
        auth=bearer_auth(token) if token else ((username, params.get("auth_password") or "") if username else None),
        secrets=[token] if token else [],
        json_content_type=SCIM_MEDIA_TYPE,
        default_headers={"Accept": f"{SCIM_MEDIA_TYPE}, application/json"},
    )
    return ScimConnector(
        params["url"],
        client=client,
        page_size=params["page_size"],
        member_chunk=params.get("member_chunk") or 100,
        use_patch=params.get("use_patch"),
        use_bulk=None if params.get("use_bulk") else False,  # None: bulk when the service announces it
        group_external_id=params.get("group_external_id", True),
    )


TARGET = Target(
    name="scim",
    build=connector_from_params,
    connection_spec=lambda: connection_argument_spec(*SYNC_OPTION_GROUPS, auth_aliases=True),
    user_key=USER_KEY,
    default_user_mapping=DEFAULT_USER_MAPPING,
)
