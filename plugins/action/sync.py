# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of ``idsync.provisioning.sync``: runs ``idsync.provisioning.<target>_sync``.

It lets one task (the sync role's) serve every target without templating a task's arguments,
which Ansible warns against: the target module's own argument spec checks the options.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

TARGETS = ("box", "dropbox", "pingid", "scim")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("target", "connection", "options"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        target = args.get("target")
        if target not in TARGETS:
            raise AnsibleActionFail(f"target: expected one of {', '.join(TARGETS)}, got {target!r}")
        connection = args.get("connection") or {}
        options = args.get("options") or {}
        for name, value in (("connection", connection), ("options", options)):
            if not isinstance(value, dict):
                raise AnsibleActionFail(f"{name}: expected a dictionary of {target}_sync options")
        both = sorted(set(connection) & set(options))
        if both:
            raise AnsibleActionFail(f"connection: {', '.join(both)} is not a connection option here (set in options)")
        result.update(
            self._execute_module(
                module_name=f"idsync.provisioning.{target}_sync",
                module_args={**connection, **options},
                task_vars=task_vars,
            )
        )
        return result
