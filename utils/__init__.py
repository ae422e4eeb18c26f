"""Shared pieces the locustfiles in tests/ import: settings, clients, listeners.

Start with ``utils.kit.install()`` in a locustfile: it attaches the kit's
listeners (final results file and, when configured, the others) to Locust.
"""
