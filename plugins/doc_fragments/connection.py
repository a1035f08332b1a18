# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The connection options every target shares (``module_utils/_kit.py``, ``connection_argument_spec``).

Each target's own fragment documents ``url`` (its default and environment variable) and its
credentials; this one documents TLS, the timeout and the proxy, the same everywhere.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  validate_certs:
    description:
      - Verify the service's TLS certificate. Only set to V(false) for a test service.
    type: bool
    default: true
  ca_path:
    description:
      - A PEM file of CA certificates to verify the service with, instead of the system trust store.
      - May come from the environment variable named after the target (for example E(BOX_CA_PATH)).
    type: path
  timeout:
    description: Seconds to wait for each answer of the service (connecting waits at most 10 of them).
    type: int
    default: 60
  proxy_url:
    description:
      - An HTTP(S) proxy for every request, for example V(http://proxy.example.com:3128).
      - Without it the standard E(HTTPS_PROXY) and E(NO_PROXY) environment variables apply.
    type: str
"""
