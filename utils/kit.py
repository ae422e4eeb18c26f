"""One call that wires the kit into a locustfile: ``kit.install()``.

Every locustfile in tests/ calls it once, at import. It does not connect to
anything: it only asks Locust to call ``_on_init`` when the test environment
exists (on the master, on every worker and in a local run), and that function
attaches the kit's listeners to the environment.
"""

from __future__ import annotations

from locust import events

import logging

from utils.results import FinalResultsWriter

log = logging.getLogger(__name__)

_installed = False


def _on_init(environment, **_kwargs) -> None:
    # The exact final figures next to Locust's CSV files (when --csv is given).
    environment.kit_results = FinalResultsWriter(environment).register()


def install() -> None:
    """Attach the kit's listeners to Locust's init event (safe to call twice)."""
    global _installed
    if not _installed:
        events.init.add_listener(_on_init)
        _installed = True
