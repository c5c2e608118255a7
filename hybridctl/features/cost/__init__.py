"""The cost guard beyond budgets: spend per cloud and service (`cost`), unused billing resources (`leaks`)."""
