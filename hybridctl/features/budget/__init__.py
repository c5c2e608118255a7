"""Spend alarms in AWS and Azure, declared once in the inventory's ``budgets:`` section (docs/budgets.md).

The ``budgets:`` section itself (models, rules, presets) is part of the inventory, in
:mod:`hybridctl.core.inventory.budgets`; this package reads and writes the clouds' budgets.
"""
