"""tests/redis_test.py run for real: headless, against a private redis-server and the demo target."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

import gevent
import pytest
import redis

from selftests.conftest import (
    PYTHON,
    assert_no_traceback,
    free_port,
    helper,
    http_json,
    run,
    run_folder,
    start_demo,
)
from selftests.redis_fixtures import started_redis
from utils import redis_pubsub as rp

SUMMARY_RE = re.compile(r"Redis Pub/Sub summary: (.*)")
USERS = ["RoomListener", "RoomPublisher"]
REDIS_ONLY = ["AuditListener", "RoomListener", "RoomPublisher"]


@pytest.fixture(scope="module")
def server():
    yield from started_redis()


@pytest.fixture(scope="module")
def chat_demo(server):
    target = start_demo("--redis-url", server.url)
    yield target
    target.process.terminate()
    target.process.wait(timeout=10)


def summary(output: str) -> dict[str, int]:
    match = SUMMARY_RE.search(output)
    assert match, output
    return {k: int(v) for k, v in (part.split("=") for part in match.group(1).split())}


def final_rows(folder) -> dict:
    data = json.loads((folder / "final_stats.json").read_text())
    return {f"{r['type']} {r['name']}": r for r in data["rows"]}


def test_locustfile_lists_its_users():
    result = run([PYTHON, "-m", "locust", "-f", "tests/redis_test.py", "--list"], timeout=60)
    assert result.returncode == 0, result.output
    for user in ["AuditListener", "RoomListener", "RoomPublisher", "ChatPoster"]:
        assert user in result.output


def test_headless_run_receives_every_message_and_loses_none(server, chat_demo):
    # 9 users: 1 auditor (fixed), then 6 listeners, 1 publisher, 1 poster; 2 rooms of 3 listeners.
    result = helper(
        "run", "redis", "--users", "9", "--spawn-rate", "9", "--duration", "6s", "--host", chat_demo.url,
        "--", "--stop-timeout", "5",
        env={"REDIS_URL": server.url},
    )  # fmt: skip
    assert_no_traceback(result)
    assert result.returncode == 0, result.output
    rows = final_rows(run_folder(result.stdout))
    for room in ("chat:room-0", "chat:room-1"):
        assert rows[f"PUBLISH {room}"]["count"] > 5 and rows[f"PUBLISH {room}"]["failures"] == 0
        assert rows[f"RECEIVE {room}"]["count"] > 15
        assert rows[f"SUBSCRIBE {room}"]["count"] == 3
    assert rows["RECEIVE chat:room-*"]["count"] > 10
    assert rows["POST /api/chat"]["count"] > 2 and rows["POST /api/chat"]["failures"] == 0
    assert not [name for name in rows if name.split()[0] in ("LOST", "DUPLICATE", "OUT_OF_ORDER", "MALFORMED")]

    figures = summary(result.output)
    posted = rows["POST /api/chat"]["count"]
    published = figures["published"]
    assert published == sum(rows[f"PUBLISH chat:room-{n}"]["count"] for n in (0, 1))
    # Every message (published directly or by the app) reached 3 room listeners + the auditor.
    assert figures["receivers"] == 4 * (published + posted)
    # Exact, but for one message at most: on a busy machine a POST still on its way when the
    # stop timeout ends can reach the listeners without its answer being recorded.
    assert figures["receivers"] <= figures["received"] <= figures["receivers"] + 4
    receive_rows = sum(r["count"] for name, r in rows.items() if name.startswith("RECEIVE "))
    assert receive_rows == figures["received"]
    assert figures["lost"] == figures["duplicates"] == figures["malformed"] == 0


def test_redis_down_at_start_counts_failures_and_ends_on_time(tmp_path):
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = helper(
        "run", "redis", "--users", "3", "--spawn-rate", "3", "--duration", "4s", "--reports-dir", str(tmp_path),
        "--", *REDIS_ONLY,
        env={"REDIS_URL": url},
    )  # fmt: skip
    assert_no_traceback(result)
    assert result.returncode == 4, result.output
    assert "is not reachable" in result.output
    assert "did not stop on time" not in result.output
    rows = final_rows(run_folder(result.stdout))
    subscribe = [r for name, r in rows.items() if name.startswith("SUBSCRIBE ")]
    assert subscribe and all(r["failures"] == r["count"] > 0 for r in subscribe)
    publish = [r for name, r in rows.items() if name.startswith("PUBLISH ")]
    assert all(r["failures"] == r["count"] for r in publish)


@pytest.mark.parametrize(
    "url, needle",
    [
        ("http://127.0.0.1:6379/0", "redis://, rediss:// or unix://"),
        ("redis://127.0.0.1:99999/0", "port"),
    ],
)
def test_bad_redis_url_is_one_line_and_exit_2(url, needle):
    result = run(
        [PYTHON, "-m", "locust", "-f", "tests/redis_test.py", "--headless", "-t", "2s"],
        env={"REDIS_URL": url},
        timeout=60,
    )
    assert result.returncode == 2, result.output
    assert_no_traceback(result)
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: REDIS_URL=") and needle in line


def test_wrong_password_fails_every_redis_operation_and_hides_it(tmp_path):
    password = "right-horse-battery"
    wrong = "wrong-horse-battery"
    gen = started_redis(password)
    server = next(gen)
    try:
        url = f"redis://:{wrong}@127.0.0.1:{server.port}/0"
        result = helper(
            "run", "redis", "--users", "2", "--spawn-rate", "2", "--duration", "3s", "--reports-dir", str(tmp_path),
            "--", "RoomListener", "RoomPublisher",
            env={"REDIS_URL": url},
        )  # fmt: skip
    finally:
        gen.close()
    assert_no_traceback(result)
    assert result.returncode == 4, result.output
    assert wrong not in result.output and password not in result.output
    assert "AuthenticationError" in result.output
    folder = run_folder(result.stdout)
    for path in folder.iterdir():
        assert wrong not in path.read_text(errors="replace")


def _login(url: str) -> dict:
    status, body = http_json("POST", f"{url}/api/login", {"username": "demo", "password": "demo-password"})
    assert status == 200, body
    return {"Authorization": f"Bearer {body['token']}"}


def _post(url: str, payload: dict, headers: dict | None = None):
    request = urllib.request.Request(
        f"{url}/api/chat",
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_demo_chat_publishes_the_measurable_format(server, chat_demo, demo):
    client = redis.Redis.from_url(server.url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("chat:format-check")
    headers = _login(chat_demo.url)
    before = time.time()
    status, body = _post(chat_demo.url, {"channel": "chat:format-check", "text": "hi"}, headers)
    assert status == 200 and body["receivers"] == 1 and body["seq"] >= 1, body
    message = None
    deadline = time.monotonic() + 5
    while message is None and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.5)
    pubsub.close()
    sent = json.loads(message["data"])
    assert sent["publisher"].startswith("demo-") and sent["seq"] == body["seq"]
    assert before <= sent["sent_at"] <= time.time() and sent["text"] == "hi" and sent["user"] == "demo"
    # The kit's subscriber reads exactly these fields.
    assert rp.decode_message(message["data"])[:2] == (sent["publisher"], sent["seq"])
    # Next message on the same channel: the next sequence number.
    assert _post(chat_demo.url, {"channel": "chat:format-check", "text": "again"}, headers)[1]["seq"] == body["seq"] + 1
    # Bad input, no token, and a demo without Redis.
    assert _post(chat_demo.url, {"channel": "bad channel!", "text": "x"}, headers)[0] == 400
    assert _post(chat_demo.url, {"channel": "chat:x", "text": ""}, headers)[0] == 400
    assert _post(chat_demo.url, {"channel": "chat:x", "text": "x"})[0] == 401
    status, body = _post(demo.url, {"channel": "chat:x", "text": "x"}, _login(demo.url))
    assert status == 503 and "--redis-url" in body["error"]
    # The GraphQL mutation publishes the same way.
    query = 'mutation { postMessage(channel: "chat:gql", text: "hey") { channel receivers } }'
    request = urllib.request.Request(
        f"{chat_demo.url}/graphql",
        data=json.dumps({"query": query}).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        answer = json.loads(response.read())
    assert answer.get("data", {}).get("postMessage") == {"channel": "chat:gql", "receivers": 0}, answer


def test_redis_restart_during_a_run_is_survived_and_the_gap_counted(tmp_path):
    gen = started_redis()
    private = next(gen)

    def outage():
        gevent.sleep(3.5)
        private.kill()
        gevent.sleep(1.5)
        private.start()  # the same port

    try:
        restarter = gevent.spawn(outage)
        # 2 users, 1 room: one listener, one publisher.
        result = helper(
            "run", "redis", "--users", "2", "--spawn-rate", "2", "--duration", "10s", "--reports-dir", str(tmp_path),
            "--", "RoomListener", "RoomPublisher", "--rooms", "1", "--stop-timeout", "5",
            "--config-users", json.dumps([{"user_class_name": n, "fixed_count": 1} for n in USERS]),
            env={"REDIS_URL": private.url},
        )  # fmt: skip
        restarter.join(timeout=10)
    finally:
        gen.close()
    assert_no_traceback(result)
    assert result.returncode == 3, result.output  # some requests failed, most passed
    assert "not reachable" not in result.output and "did not stop on time" not in result.output
    assert "restored" in result.output
    rows = final_rows(run_folder(result.stdout))
    assert rows["SUBSCRIBE chat:room-0"]["failures"] >= 1  # the dropped subscription
    assert rows["SUBSCRIBE chat:room-0"]["count"] - rows["SUBSCRIBE chat:room-0"]["failures"] == 2
    publish = rows["PUBLISH chat:room-0"]
    assert publish["failures"] > 0 and publish["count"] > publish["failures"]
    # Every message published during the outage (refused, or while nobody was
    # subscribed yet) is lost for the one listener: exactly as many.
    assert rows["LOST chat:room-0"]["failures"] == publish["failures"]
    figures = summary(result.output)
    assert figures["lost"] == figures["publish_failures"] == publish["failures"]
    assert rows["RECEIVE chat:room-0"]["count"] == publish["count"] - publish["failures"]
