"""The hostile-use suite runs on the whole running stack (the session `pipeline` fixture of tests/conftest.py)."""
