"""Use cases: one function each, keyword arguments, the only code that opens transactions."""
