"""Helpers the test suites of every package share (importable because pytest.ini sets
``pythonpath = .``): free ports, a session Redis server, the in-process worker and
server of the fast tier, one error-envelope assertion, process figures, and the
bad-input corpus."""
