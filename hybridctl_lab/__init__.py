"""The local lab: hybridctl's reference network on one Linux machine (docs/lab.md).

An add-on of hybridctl: it may import hybridctl, never the reverse. hybridctl finds its
``hybridctl lab`` commands through the ``hybridctl.plugins`` entry point (``hybridctl_lab.cli``).
"""

from __future__ import annotations

# What the ``lab`` extra installs (moto[server], cryptography) and the lab imports besides
# hybridctl's own dependencies; the ``lab`` command and `lab up` check these first.
PYTHON_MODULES = ("moto", "werkzeug", "cryptography", "boto3")
