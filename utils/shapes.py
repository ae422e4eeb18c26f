"""Load shapes: how many users run at each moment, as a list of stages (like k6).

A stage is ``DURATION:USERS``: over DURATION the user count moves in a straight
line from where it was to USERS. ``LOAD_STAGES="30s:10,2m:10,30s:0"`` ramps up to
10 users in 30 s, holds them for 2 minutes, and ramps down to 0 in 30 s. When the
last stage ends, the run ends by itself.

Presets build the stages for you from a peak user count (``--users`` /
``LOAD_USERS``) and a total length (``--duration`` / ``LOAD_DURATION``):

========  ==============================================================
smoke     at most 2 users for the whole duration: does the script work?
load      ramp up (10%), hold the peak (80%), ramp down (10%): a normal busy day
stress    steps to 1/3, 2/3 and all of the peak, held, then down: where does it break?
spike     a small baseline (1/10 of the peak), a sudden jump to the peak, back down
soak      ramp up (5%), hold the peak for a long time (90%), down: leaks, slow decay
========  ==============================================================

Use one with the helper (``--preset load`` or ``--stages ...``), or with plain
Locust by adding the shape file: ``LOAD_PRESET=load locust -f tests/basic_test.py,utils/load_shape.py``.
"""

from __future__ import annotations

import math
import re

from utils.config import ConfigError, format_duration, parse_duration

PRESETS = {
    "smoke": "at most 2 users for the whole duration: does the script work at all?",
    "load": "ramp up (10%), hold the peak (80%), ramp down (10%): a normal busy day",
    "stress": "steps to 1/3, 2/3 and all of the peak, each held, then down: where does it break?",
    "spike": "a baseline of 1/10 of the peak, a sudden jump to the peak, back to the baseline",
    "soak": "ramp up (5%), hold the peak for a long time (90%), ramp down: leaks and slow decay",
}

Stage = tuple[int, int]  # (seconds, target users)


def parse_stages(text: str, name: str = "LOAD_STAGES") -> list[Stage]:
    """'30s:10,2m:10,30s:0' -> [(30, 10), (120, 10), (30, 0)]. One-line ConfigError when wrong."""
    example = f"{name}=30s:10,2m:10,30s:0"
    stages = []
    parts = [p.strip() for p in str(text).split(",")]
    if not any(parts):
        raise ConfigError(
            f"{name}={text!r} is not valid: at least one stage DURATION:USERS is needed, for example {example}"
        )
    for part in parts:
        match = re.fullmatch(r"([^:\s]+)\s*:\s*(\d+)", part)
        if not match:
            raise ConfigError(
                f"{name}={text!r} is not valid: stage {part!r} is not DURATION:USERS, for example {example}"
            )
        try:
            seconds = parse_duration(match.group(1), name)
        except ConfigError:
            raise ConfigError(
                f"{name}={text!r} is not valid: {match.group(1)!r} is not a duration (30s, 5m, 1h30m), "
                f"for example {example}"
            ) from None
        stages.append((seconds, int(match.group(2))))
    if max(users for _, users in stages) == 0:
        raise ConfigError(f"{name}={text!r} is not valid: no stage has any user, for example {example}")
    return stages


def preset_stages(preset: str, users: int, duration_seconds: int) -> list[Stage]:
    """The stages of a preset, scaled to USERS at the peak and DURATION_SECONDS in all."""
    if preset not in PRESETS:
        raise ConfigError(
            f"LOAD_PRESET={preset!r} is not valid: use one of {', '.join(PRESETS)}, for example LOAD_PRESET=load"
        )
    peak = max(1, users)
    third, two_thirds, base = max(1, round(peak / 3)), max(1, round(peak * 2 / 3)), max(1, round(peak / 10))
    plans = {
        "smoke": [(0.1, min(peak, 2)), (0.9, min(peak, 2))],
        "load": [(0.1, peak), (0.8, peak), (0.1, 0)],
        "stress": [
            (0.1, third),
            (0.15, third),
            (0.1, two_thirds),
            (0.15, two_thirds),
            (0.1, peak),
            (0.3, peak),
            (0.1, 0),
        ],
        "spike": [(0.1, base), (0.3, base), (0.05, peak), (0.2, peak), (0.05, base), (0.2, base), (0.1, 0)],
        "soak": [(0.05, peak), (0.9, peak), (0.05, 0)],
    }
    fractions = plans[preset]
    seconds = [max(1, math.floor(duration_seconds * f)) for f, _ in fractions]
    seconds[-1] = max(1, duration_seconds - sum(seconds[:-1]))  # the stages add up to the duration
    if sum(seconds) != duration_seconds or any(math.floor(duration_seconds * f) < 1 for f, _ in fractions):
        shortest = math.ceil(max(1 / f for f, _ in fractions))
        raise ConfigError(
            f"LOAD_DURATION={duration_seconds}s is too short for the {preset} preset: "
            f"at least {shortest}s is needed, for example LOAD_DURATION=5m"
        )
    return [(s, u) for s, (_, u) in zip(seconds, fractions, strict=True)]


def total_seconds(stages: list[Stage]) -> int:
    return sum(seconds for seconds, _ in stages)


def describe(stages: list[Stage]) -> str:
    """[(30, 10), (120, 10)] -> '30s:10,2m:10' (the LOAD_STAGES form)."""
    return ",".join(f"{format_duration(s)}:{u}" for s, u in stages)


def users_at(stages: list[Stage], elapsed: float, start_users: int = 0) -> tuple[int, float] | None:
    """(target users, spawn rate) at ELAPSED seconds; None once the last stage is over.

    Locust moves the user count toward the target at the spawn rate; the rate is
    chosen so that it gets there when the stage ends: a straight-line ramp.
    """
    begin, users = 0.0, start_users
    for seconds, target in stages:
        if elapsed < begin + seconds:
            rate = abs(target - users) / seconds if target != users else 1.0
            return target, max(rate, 0.01)
        begin += seconds
        users = target
    return None
