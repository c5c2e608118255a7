"""HA virtual IPs moved by route table (reference.md sections 4 and 5), the private EC2 API
endpoint, ``doctor`` and ``iam-policy``. docs/vip.md describes the commands and the OCF agent.

Kept free of imports: :mod:`hybridctl.core.inventory.models` imports :mod:`hybridctl.core.inventory.vips`.
"""
