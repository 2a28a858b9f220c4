"""Security controls on real stacks: API keys, the per-client rate limit and whose address it
counts, CORS, upload names, the /metrics allow-list and the Redis password."""

from __future__ import annotations

import re
import subprocess
import time

import pytest
import redis
import requests

from api import create_app
from api.middleware.client_address import client_address
from api.schemas import ErrorEnvelopeSchema
from api.settings import ApiSettings
from api.store.rate_limits import WINDOW_S
from imgclf_contract import keys
from ml_worker.golden import DIR as GOLDEN_DIR

pytestmark = pytest.mark.integration

KEY = "k3y-for-tests"
ORIGIN = "https://app.example"
REDIS_PASSWORD = "pw-for-tests"
RATE_LIMIT = 5
TIMEOUT = 15


@pytest.fixture(scope="module")
def secured(stack_factory):
    """A hardened deployment: API keys, one CORS origin, a password on Redis."""
    env = {"API_KEYS": f"other-key,{KEY}", "CORS_ORIGINS": ORIGIN, "REDIS_PASSWORD": REDIS_PASSWORD}
    return stack_factory("security-secured", env=env)


@pytest.fixture(scope="module")
def limited(stack_factory):
    return stack_factory("security-ratelimit", env={"RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT)})


def assert_envelope(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text[:300]
    body = response.json()
    assert ErrorEnvelopeSchema().validate(body) == {}
    assert body["error"]["code"] == code
    return body


def classify_coffee(base_url: str, headers: dict[str, str] | None = None) -> requests.Response:
    files = {"image": ("coffee.png", (GOLDEN_DIR / "coffee.png").read_bytes(), "image/png")}
    return requests.post(f"{base_url}/api/v1/predictions", files=files, headers=headers, timeout=TIMEOUT)


# -- API keys -------------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"Authorization": f"Basic {KEY}"}],
                         ids=["missing", "wrong", "not-bearer"])  # fmt: skip
def test_missing_or_wrong_key_is_refused(secured, headers):
    url = secured.config.url
    assert_envelope(requests.get(f"{url}/api/v1/models", headers=headers, timeout=TIMEOUT), 401, "unauthorized")
    assert_envelope(classify_coffee(url, headers), 401, "unauthorized")
    files = {"file": ("coffee.png", (GOLDEN_DIR / "coffee.png").read_bytes(), "image/png")}
    compat = requests.post(f"{url}/predict", files=files, headers=headers, timeout=TIMEOUT)
    assert compat.status_code == 401  # the reference route keeps its own body for every failure
    assert compat.json() == {"success": False, "prediction": None, "score": None}


@pytest.mark.parametrize("headers", [{"X-API-Key": KEY}, {"Authorization": f"Bearer {KEY}"}], ids=["header", "bearer"])
def test_right_key_is_accepted(secured, headers):
    assert requests.get(f"{secured.config.url}/api/v1/models", headers=headers, timeout=TIMEOUT).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/health", "/api/v1/ready", "/api/v1/openapi.json"])
def test_probes_and_docs_need_no_key(secured, path):
    assert requests.get(f"{secured.config.url}{path}", timeout=TIMEOUT).status_code == 200


# -- Redis password -------------------------------------------------------------------------
def test_redis_password_works_end_to_end_and_is_required(secured):
    response = classify_coffee(secured.config.url, {"X-API-Key": KEY})
    assert response.status_code == 200, response.text[:300]
    assert response.json()["predictions"][0]["label"] == "espresso"
    port = str(secured.config.redis_port)
    anonymous = subprocess.run(["redis-cli", "-p", port, "PING"], capture_output=True, text=True, timeout=10)
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=secured.config.redis_port, password="wrong", socket_timeout=2).ping()


# -- CORS -----------------------------------------------------------------------------------
def preflight(base_url: str, origin: str) -> requests.Response:
    headers = {"Origin": origin, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "X-API-Key"}  # fmt: skip
    return requests.options(f"{base_url}/api/v1/predictions", headers=headers, timeout=TIMEOUT)


def test_no_cors_by_default(live_stack):
    url = live_stack.config.url
    simple = requests.get(f"{url}/api/v1/health", headers={"Origin": ORIGIN}, timeout=TIMEOUT)
    assert "Access-Control-Allow-Origin" not in simple.headers
    assert "Access-Control-Allow-Origin" not in preflight(url, ORIGIN).headers


def test_cors_only_for_configured_origin(secured):
    url = secured.config.url
    allowed = preflight(url, ORIGIN)
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    assert "X-API-Key" in allowed.headers["Access-Control-Allow-Headers"]
    simple = requests.get(f"{url}/api/v1/health", headers={"Origin": ORIGIN}, timeout=TIMEOUT)
    assert simple.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in simple.headers["Vary"]
    evil = "https://evil.example"
    for response in (preflight(url, evil), requests.get(f"{url}/api/v1/health", headers={"Origin": evil}, timeout=5)):
        assert "Access-Control-Allow-Origin" not in response.headers


# -- rate limit and client address ------------------------------------------------------------
def wait_for_fresh_window(margin_s: float = 5.0) -> int:
    """The current one-minute window, waiting first if it ends within margin_s (bounded by it)."""
    left = WINDOW_S - time.time() % WINDOW_S
    if left < margin_s:
        time.sleep(left + 0.05)
    return int(time.time() // WINDOW_S)


def test_sixth_request_in_a_minute_is_rate_limited(limited):
    url = f"{limited.config.url}/api/v1/models"
    window = wait_for_fresh_window()
    statuses = [requests.get(url, timeout=TIMEOUT).status_code for _ in range(RATE_LIMIT)]
    assert statuses == [200] * RATE_LIMIT
    # A spoofed X-Real-IP is overwritten by nginx with the real peer, so it buys nothing.
    refused = requests.get(url, headers={"X-Real-IP": "203.0.113.50", "X-Forwarded-For": "203.0.113.50"},
                           timeout=TIMEOUT)  # fmt: skip
    body = assert_envelope(refused, 429, "rate_limited")
    assert body["error"]["details"]["limit_per_minute"] == RATE_LIMIT
    assert 1 <= int(refused.headers["Retry-After"]) <= WINDOW_S
    counted = redis.Redis(port=limited.config.redis_port).get(keys.rate_limit("127.0.0.1", window))
    assert int(counted) == RATE_LIMIT + 1  # keyed on the address nginx forwarded
    # The health probe stays open while the client is limited.
    assert requests.get(f"{limited.config.url}/api/v1/health", timeout=TIMEOUT).status_code == 200


def test_limit_is_keyed_on_forwarded_address(limited):
    """Straight to gunicorn from a trusted peer (127.0.0.1), X-Real-IP names the client."""
    api = f"http://127.0.0.1:{limited.config.api_port}/api/v1/models"
    wait_for_fresh_window()
    statuses = [requests.get(api, headers={"X-Real-IP": "198.51.100.7"}, timeout=TIMEOUT).status_code
                for _ in range(RATE_LIMIT + 1)]  # fmt: skip
    assert statuses == [200] * RATE_LIMIT + [429]
    other = requests.get(api, headers={"X-Real-IP": "198.51.100.8"}, timeout=TIMEOUT)
    assert other.status_code == 200


@pytest.fixture(scope="module")
def proxied_app():
    """The app trusting one proxy address; Redis is never contacted by client_address."""
    return create_app(ApiSettings(trusted_proxies=("10.0.0.1",)))


@pytest.mark.parametrize(("peer", "expected"), [("10.0.0.1", "203.0.113.9"), ("198.51.100.7", "198.51.100.7")],
                         ids=["trusted-proxy", "untrusted-peer"])  # fmt: skip
def test_client_address_trusts_only_configured_proxies(proxied_app, peer, expected):
    spoof = {"X-Real-IP": "203.0.113.9", "X-Forwarded-For": "203.0.113.9"}
    with proxied_app.test_request_context(environ_base={"REMOTE_ADDR": peer}, headers=spoof):
        assert client_address() == expected


# -- upload names and /metrics ----------------------------------------------------------------
def test_upload_name_never_reaches_the_filesystem(live_stack):
    run_dir = live_stack.config.run_dir
    before = {p for p in run_dir.rglob("*") if "passwd" in p.name}
    files = {"image": ("../../etc/passwd", (GOLDEN_DIR / "coffee.png").read_bytes(), "image/png")}
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
