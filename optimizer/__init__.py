"""Fleet dispatch optimization with Pyomo and HiGHS (pure: no web, database or chain code)."""
