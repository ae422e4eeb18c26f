"""The kit's load shape, as a locustfile of its own: add it after your locustfile.

    LOAD_PRESET=load LOAD_USERS=50 LOAD_DURATION=10m locust -f tests/basic_test.py,utils/load_shape.py
    LOAD_STAGES="30s:10,2m:10,30s:0" locust -f tests/basic_test.py,utils/load_shape.py

The helper does this for you with ``--preset`` or ``--stages``. With a shape,
Locust ignores --users, --spawn-rate and --run-time: the stages decide, and the
run ends when the last stage ends. See utils/shapes.py for the presets.
"""

from locust import LoadTestShape

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils import shapes
from utils.config import get_settings


class KitLoadShape(LoadTestShape):
    """Follows LOAD_STAGES, or the stages of LOAD_PRESET scaled to LOAD_USERS and LOAD_DURATION."""

    def __init__(self) -> None:
        super().__init__()
        self.stages = get_settings().stages

    def tick(self):
        return shapes.users_at(self.stages, self.get_run_time())
