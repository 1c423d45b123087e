"""Plain helpers and factories shared by the test folders: import them from here.

Fixtures live in ``tests/conftest.py`` and in the plugin modules under ``tests/fixtures/``
(listed in its ``pytest_plugins``); request them by name.
"""
