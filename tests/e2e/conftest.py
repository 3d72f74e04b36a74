"""End-to-end tests use the `pipeline` fixture of tests/conftest.py (every service as a process)."""
