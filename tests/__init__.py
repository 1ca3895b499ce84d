"""The test suite. A package, so that every test module and the support package have one import name
(`tests.<folder>.<module>`, `tests.support.<module>`), with the repository root on `sys.path`."""
