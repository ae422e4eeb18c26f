"""Small checks for HTTP responses inside ``catch_response`` / ``rest()`` blocks.

They mark the request failed with a reason a person can act on, and return
True when the response is worth looking into further. Example::

    with self.rest("GET", "/api/products") as resp:
        if expect_status(resp, 200, "product list") and not resp.js.get("products"):
            resp.failure("product list answered 200 but the list is empty")
"""

from __future__ import annotations


def expect_status(resp, expected: int, what: str) -> bool:
    """Fail RESP unless its status is EXPECTED; say why in words. True when it matched."""
    status = resp.status_code
    if status == expected:
        if hasattr(resp, "js") and not isinstance(resp.js, dict | list):
            # rest() could not parse a JSON body (and has said so), or the body is empty.
            if not resp.text:
                resp.failure(f"{what} answered {status} with an empty body, expected JSON")
            return False
        return True
    if not status:
        # No HTTP answer at all: connection refused, timeout, reset.
        resp.failure(f"{what}: no answer from the target ({_short(resp.error)}) - is it running?")
    elif status == 401:
        resp.failure(f"{what}: refused (401) - the login failed or the token expired")
    else:
        resp.failure(f"{what} answered {status}, expected {expected}: {_short(resp.text)}")
    return False


def _short(value, limit: int = 120) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
