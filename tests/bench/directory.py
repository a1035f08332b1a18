# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bench directory: N people and G groups of realistic sizes, loaded offline with slapadd.

Group sizes follow a Zipf-like spread (a few large groups, a long tail of small ones): group k
has ``ceil(largest / (k + 1))`` members, at least 2, where the largest has 20,000 members when N
allows (N >= 40,000) and N / 2 otherwise. Members are drawn with a fixed seed, so every run of
the same N and G has the same directory. The 1% change (``change_ldif``) gives 1% of the people
a new surname and common name, and swaps 1% of the members of the two largest groups; ``revert_ldif``
undoes it, so every target starts from the same directory.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path

BASE = "dc=example,dc=org"
PEOPLE = f"ou=people,ou=bench,{BASE}"
GROUPS = f"ou=groups,ou=bench,{BASE}"
BIG_GROUP = 20000


@dataclass
class BenchDirectory:
    users: int
    groups: int = 500
    seed: int = 16
    sizes: list[int] = field(default_factory=list)
    members: list[list[int]] = field(default_factory=list)  # per group: user numbers

    def __post_init__(self) -> None:
        largest = BIG_GROUP if self.users >= 2 * BIG_GROUP else max(2, self.users // 2)
        self.sizes = [min(self.users, max(2, math.ceil(largest / (k + 1)))) for k in range(self.groups)]
        chooser = random.Random(self.seed)
        population = range(self.users)
        self.members = [sorted(chooser.sample(population, size)) for size in self.sizes]

    # -- names -----------------------------------------------------------------------------
    @staticmethod
    def uid(n: int) -> str:
        return f"u{n:06d}"

    def user_dn(self, n: int) -> str:
        return f"uid={self.uid(n)},{PEOPLE}"

    @staticmethod
    def group_name(k: int) -> str:
        return f"g{k:03d}"

    def group_dn(self, k: int) -> str:
        return f"cn={self.group_name(k)},{GROUPS}"

    @property
    def memberships(self) -> int:
        return sum(self.sizes)

    def groups_up_to(self, size: int) -> list[int]:
        """Group numbers of the groups with at most ``size`` members (Box pages no further than 10,000)."""
        return [k for k, n in enumerate(self.sizes) if n <= size]

    # -- LDIF ------------------------------------------------------------------------------
    def write_ldif(self, path: Path) -> Path:
        with path.open("w", encoding="utf-8") as out:
            out.write(f"dn: ou=bench,{BASE}\nobjectClass: organizationalUnit\nou: bench\n\n")
            out.write(f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n")
            out.write(f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n\n")
            for n in range(self.users):
                uid = self.uid(n)
                out.write(
                    f"dn: {self.user_dn(n)}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: Bench User{n}\n"
                    f"sn: User{n}\ngivenName: Bench\nmail: {uid}@example.org\ntitle: Engineer\n\n"
                )
            for k, members in enumerate(self.members):
                out.write(f"dn: {self.group_dn(k)}\nobjectClass: groupOfNames\ncn: {self.group_name(k)}\n")
                out.writelines(f"member: {self.user_dn(n)}\n" for n in members)
                out.write("\n")
        return path

    def changed_users(self) -> list[int]:
        """The 1% of people the change run renames (every 100th, at least one)."""
        return list(range(0, self.users, 100)) or [0]

    SWAPPED_GROUPS = (0, 1)  # the two largest groups (Box pages groups of at most 10,000 members)

    def swapped_members(self, k: int) -> tuple[list[int], list[int]]:
        """(removed, added) members of group ``k`` in the change run: 1% of it each way."""
        current = self.members[k]
        count = max(1, len(current) // 100)
        inside = set(current)
        outside = [n for n in range(self.users) if n not in inside]
        return current[:: max(1, len(current) // count)][:count], outside[k * count : (k + 1) * count]

    def change_ldif(self, revert: bool = False) -> str:
        parts = []
        for n in self.changed_users():
            sn, cn = (f"User{n}", f"Bench User{n}") if revert else (f"Changed{n}", f"Bench Changed{n}")
            parts.append(
                f"dn: {self.user_dn(n)}\nchangetype: modify\nreplace: sn\nsn: {sn}\n-\nreplace: cn\ncn: {cn}\n"
            )
        for k in self.SWAPPED_GROUPS:
            removed, added = self.swapped_members(k)
            if revert:
                removed, added = added, removed
            changes = [f"delete: member\nmember: {self.user_dn(n)}\n" for n in removed]
            changes += [f"add: member\nmember: {self.user_dn(n)}\n" for n in added]
            parts.append(f"dn: {self.group_dn(k)}\nchangetype: modify\n" + "-\n".join(changes))
        return "\n".join(parts)

    def changes(self, groups: list[int] | None = None) -> dict[str, int]:
        """What the change run changes: user updates, and per group the members added and removed."""
        scope = set(range(self.groups) if groups is None else groups)
        members = {}
        for k in self.SWAPPED_GROUPS:
            if k in scope:
                removed, added = self.swapped_members(k)
                members[self.group_name(k)] = (len(added), len(removed))
        return {"user_updates": len(self.changed_users()), "members": members}
