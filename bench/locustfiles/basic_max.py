"""The basic scenario's user (tests/basic_test.py) with no think time: its maximum request rate."""

from locust import constant

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

import basic_test


class MaxShopVisitor(basic_test.ShopVisitor):
    wait_time = constant(0)
