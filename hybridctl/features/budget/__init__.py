"""Spend alarms in AWS and Azure, declared once in the inventory's ``budgets:`` section (docs/budgets.md).

Kept empty on purpose: :mod:`hybridctl.core.inventory.models` imports :mod:`hybridctl.features.budget.models`,
so importing this package must not pull in the cloud adapters (or anything that imports the
inventory models back).
"""
