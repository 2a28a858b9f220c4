"""Security controls: API keys, the per-client rate limit and whose address it counts, CORS
(fast tier); what only a real stack shows: nginx's X-Real-IP, the /metrics allow-list, the
Redis password and upload names never reaching the filesystem."""

from __future__ import annotations

import io
import re
import subprocess
import time

import pytest
import redis
import requests

from api import create_app
from api.middleware.client_address import client_address
from api.settings import ApiSettings
from api.store.rate_limits import WINDOW_S
from imgclf_contract import keys
from ml_worker.golden import DIR as GOLDEN_DIR
from testsupport.envelope import assert_envelope

KEY = "k3y-for-tests"
ORIGIN = "https://app.example"
REDIS_PASSWORD = "pw-for-tests"
RATE_LIMIT = 5
TIMEOUT = 15
COFFEE = (GOLDEN_DIR / "coffee.png").read_bytes()
COMPAT_FAILURE = {"success": False, "prediction": None, "score": None}


def upload(field: str = "image") -> dict:
    return {field: (io.BytesIO(COFFEE), "coffee.png", "image/png")}


@pytest.fixture
def keyed(make_app):
    """An API with keys and one CORS origin."""
    return make_app(api_keys=("other-key", KEY), cors_origins=(ORIGIN,)).test_client()


@pytest.fixture
def limited(make_app):
    return make_app(rate_limit_per_minute=RATE_LIMIT).test_client()


# -- API keys -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers", [{}, {"X-API-Key": "wrong"}, {"Authorization": f"Basic {KEY}"}], ids=["missing", "wrong", "not-bearer"]
)
def test_missing_or_wrong_key_is_refused(keyed, headers):
    assert_envelope(keyed.get("/api/v1/models", headers=headers), 401, "unauthorized")
    assert_envelope(keyed.post("/api/v1/predictions", data=upload(), headers=headers), 401, "unauthorized")
    compat = keyed.post("/predict", data=upload("file"), headers=headers)
    assert compat.status_code == 401  # the reference route keeps its own body for every failure
    assert compat.json == COMPAT_FAILURE


@pytest.mark.parametrize("headers", [{"X-API-Key": KEY}, {"Authorization": f"Bearer {KEY}"}], ids=["header", "bearer"])
def test_right_key_is_accepted(keyed, worker, headers):
    assert keyed.get("/api/v1/models", headers=headers).status_code == 200
    response = keyed.post("/api/v1/predictions", data=upload(), headers=headers)
    assert response.status_code == 200 and response.json["predictions"][0]["label"] == "espresso"


@pytest.mark.parametrize("path", ["/api/v1/health", "/api/v1/ready", "/api/v1/openapi.json", "/api/v1/docs"])
def test_probes_and_docs_need_no_key(keyed, worker, path):
    assert keyed.get(path).status_code == 200


# -- CORS -----------------------------------------------------------------------------------
def preflight(client, origin: str):
    headers = {"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "X-API-Key"}
    return client.options("/api/v1/predictions", headers=headers)


def test_no_cors_by_default(client):
    simple = client.get("/api/v1/health", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in simple.headers
    assert "Access-Control-Allow-Origin" not in preflight(client, ORIGIN).headers


def test_cors_only_for_configured_origin(keyed):
    allowed = preflight(keyed, ORIGIN)
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    assert "X-API-Key" in allowed.headers["Access-Control-Allow-Headers"]
    simple = keyed.get("/api/v1/health", headers={"Origin": ORIGIN})
    assert simple.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in simple.headers["Vary"]
    evil = "https://evil.example"
    for response in (preflight(keyed, evil), keyed.get("/api/v1/health", headers={"Origin": evil})):
        assert "Access-Control-Allow-Origin" not in response.headers


# -- rate limit and client address ------------------------------------------------------------
def wait_for_fresh_window(margin_s: float = 5.0) -> int:
    """The current one-minute window, waiting first if it ends within margin_s (bounded by it)."""
    left = WINDOW_S - time.time() % WINDOW_S
    if left < margin_s:
        time.sleep(left + 0.05)
    return int(time.time() // WINDOW_S)


def test_sixth_request_in_a_minute_is_rate_limited(limited, worker, redis_db):
    """From a trusted peer (the test client is 127.0.0.1), X-Real-IP names the client."""
    window = wait_for_fresh_window()
    client_a = {"X-Real-IP": "198.51.100.7"}
    statuses = [limited.get("/api/v1/models", headers=client_a).status_code for _ in range(RATE_LIMIT)]
    assert statuses == [200] * RATE_LIMIT
    body = assert_envelope(limited.get("/api/v1/models", headers=client_a), 429, "rate_limited")
    assert body["error"]["details"]["limit_per_minute"] == RATE_LIMIT
    assert 1 <= int(limited.get("/api/v1/models", headers=client_a).headers["Retry-After"]) <= WINDOW_S
    assert int(redis_db.get(keys.rate_limit("198.51.100.7", window))) == RATE_LIMIT + 2
    assert limited.get("/api/v1/models", headers={"X-Real-IP": "198.51.100.8"}).status_code == 200  # another client
    assert limited.get("/api/v1/health", headers=client_a).status_code == 200  # probes stay open


def test_api_key_guesses_are_rate_limited_too(make_app):
    guarded = make_app(api_keys=(KEY,), rate_limit_per_minute=RATE_LIMIT).test_client()
    wait_for_fresh_window()
    statuses = [guarded.get("/api/v1/models", headers={"X-API-Key": "guess"}).status_code for _ in range(7)]
    assert statuses == [401] * RATE_LIMIT + [429, 429]


@pytest.fixture(scope="module")
def proxied_app():
    """The app trusting one proxy address; Redis is never contacted by client_address."""
    return create_app(ApiSettings(trusted_proxies=("10.0.0.1",)))


@pytest.mark.parametrize(
    ("peer", "expected"),
    [("10.0.0.1", "203.0.113.9"), ("198.51.100.7", "198.51.100.7")],
    ids=["trusted-proxy", "untrusted-peer"],
)
def test_client_address_trusts_only_configured_proxies(proxied_app, peer, expected):
    spoof = {"X-Real-IP": "203.0.113.9", "X-Forwarded-For": "203.0.113.9"}
    with proxied_app.test_request_context(environ_base={"REMOTE_ADDR": peer}, headers=spoof):
        assert client_address() == expected


# -- on a real stack ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def secured(stack_factory):
    """A hardened deployment: API keys and a password on Redis."""
    return stack_factory("security-secured", env={"API_KEYS": KEY, "REDIS_PASSWORD": REDIS_PASSWORD})


def test_redis_password_works_end_to_end_and_is_required(secured):
    files = {"image": ("coffee.png", COFFEE, "image/png")}
    headers = {"X-API-Key": KEY}
    response = requests.post(f"{secured.config.url}/api/v1/predictions", files=files, headers=headers, timeout=TIMEOUT)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["predictions"][0]["label"] == "espresso"
    port = str(secured.config.redis_port)
    anonymous = subprocess.run(["redis-cli", "-p", port, "PING"], capture_output=True, text=True, timeout=10)
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=secured.config.redis_port, password="wrong", socket_timeout=2).ping()


def test_nginx_overwrites_a_spoofed_client_address(stack_factory):
    """Through nginx, X-Real-IP is the real peer: a spoofed one buys no fresh rate-limit budget."""
    limited_stack = stack_factory("security-ratelimit", env={"RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT)})
    url = f"{limited_stack.config.url}/api/v1/models"
    window = wait_for_fresh_window()
    spoofed = [{"X-Real-IP": f"203.0.113.{i}", "X-Forwarded-For": f"203.0.113.{i}"} for i in range(RATE_LIMIT + 1)]
    statuses = [requests.get(url, headers=h, timeout=TIMEOUT).status_code for h in spoofed]
    assert statuses == [200] * RATE_LIMIT + [429]
    counted = limited_stack.redis("queue").get(keys.rate_limit("127.0.0.1", window))
    assert int(counted) == RATE_LIMIT + 1  # keyed on the address nginx forwarded


def test_upload_name_never_reaches_the_filesystem(live_stack):
    run_dir = live_stack.config.run_dir
    before = {p for p in run_dir.rglob("*") if "passwd" in p.name}
    files = {"image": ("../../etc/passwd", COFFEE, "image/png")}
    response = requests.post(f"{live_stack.config.url}/api/v1/predictions", files=files, timeout=TIMEOUT)
    assert response.status_code == 200
    assert "passwd" not in response.text
    assert set(response.json()["image"]) == {"sha256", "format", "width", "height", "bytes"}
    assert {p for p in run_dir.rglob("*") if "passwd" in p.name} == before == set()


def test_metrics_open_to_localhost_only(live_stack):
    response = requests.get(f"{live_stack.config.url}/metrics", timeout=TIMEOUT)
    assert response.status_code == 200
    assert "imgclf_http_requests_total" in response.text
    rendered = (live_stack.config.run_dir / "nginx" / "locations.conf").read_text()
    block = re.search(r"location = /metrics \{(.*?)\}", rendered, re.S)
    assert block is not None
    lines = [line.strip() for line in block.group(1).splitlines() if line.strip()]
    assert lines.index("allow 127.0.0.1;") < lines.index("deny all;") < lines.index("proxy_pass http://api;")
