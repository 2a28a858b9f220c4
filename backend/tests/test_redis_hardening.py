"""Redis as `make up` runs it (issue #12 items 2-4): crops of uploads never reach the disk, every
file the stack writes is its owner's alone, no Redis answers without a password (generated once,
kept owner-only), each client gets only the commands and keys it needs, and memory is capped
with eviction allowed for the cache alone."""

from __future__ import annotations

import io
import stat
import time

import numpy as np
import pytest
import redis
import requests
from PIL import Image

from imgclf_contract import keys
from imgclf_contract.preprocess import preprocess
from scripts.stack import Stack, StackConfig

pytestmark = pytest.mark.integration

ROLES = ("store", "queue", "cache")


def noise_png(seed: int) -> bytes:
    """An image nobody else uploads: its crop is a byte pattern we can look for on disk."""
    pixels = np.random.default_rng(seed).integers(0, 256, (300, 300, 3), np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def files_holding(root, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and not p.is_socket() and needle in p.read_bytes()]


def admin(stack, role: str) -> redis.Redis:
    return redis.Redis.from_url(stack.redis_url(role), socket_timeout=5)


def test_crops_of_uploads_never_reach_the_disk(live_stack):
    """The 150 kB tensor of every job was in the AOF (mode 0644): anyone could rebuild uploads."""
    data = noise_png(12)
    crop = preprocess(data, 40_000_000).tensor.tobytes()
    response = requests.post(
        f"{live_stack.config.url}/api/v1/predictions", files={"image": ("n.png", data, "image/png")}, timeout=30
    )
    assert response.status_code == 200, response.text
    store = admin(live_stack, "store")
    store.bgrewriteaof()  # the rewritten AOF holds a snapshot of everything the store has
    deadline = time.monotonic() + 20
    while store.info("persistence")["aof_rewrite_in_progress"] and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)  # appendfsync everysec
    needle = crop[len(crop) // 2 : len(crop) // 2 + 4096]
    assert files_holding(live_stack.config.run_dir, needle) == []
    queue_dir = live_stack.config.run_dir / "redis-queue"
    assert [p.name for p in queue_dir.iterdir() if not p.is_socket()] == ["redis.conf"]


def test_every_file_and_directory_the_stack_writes_is_owner_only(live_stack):
    requests.post(
        f"{live_stack.config.url}/api/v1/predictions",
        files={"image": ("n.png", noise_png(13), "image/png")},
        timeout=30,
    )
    run_dir = live_stack.config.run_dir
    readable = [
        f"{p} {stat.filemode(p.lstat().st_mode)}"
        for p in [run_dir, *run_dir.rglob("*")]
        if not p.is_symlink() and p.lstat().st_mode & 0o077
    ]
    assert readable == []


@pytest.mark.parametrize("role", ROLES)
def test_no_redis_answers_without_a_password(live_stack, role: str):
    """Any local process could read or delete feedback and forge cache entries."""
    anonymous = redis.Redis(port=live_stack.config.redis_port_of(role), socket_timeout=5)
    with pytest.raises(redis.AuthenticationError):
        anonymous.get(keys.FEEDBACK_INDEX)
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=live_stack.config.redis_port_of(role), password="guess", socket_timeout=5).ping()


def test_passwords_are_generated_once_and_kept_owner_only(live_stack):
    secrets = live_stack.config.run_dir / "secrets"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    secret = secrets / "redis.secret"
    assert [p.name for p in secrets.iterdir()] == ["redis.secret"]
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(secret.read_text()) >= 32
    before = secret.read_text(), {user: live_stack.redis_password(user) for user in ("admin", "api", "worker")}
    assert len(set(before[1].values())) == 3 and before[0] not in before[1].values()
    live_stack.up()  # a second `up` (and a restart) keeps them
    assert (secret.read_text(), {user: live_stack.redis_password(user) for user in before[1]}) == before
    api_env = live_stack.service_env()
    assert api_env["REDIS_PASSWORD"] == before[1]["api"]  # the API gets its own password, not the secret
    assert "@" in api_env["REDIS_URL"] and before[1]["api"] not in api_env["REDIS_URL"]


@pytest.mark.parametrize("role", ROLES)
def test_the_services_reach_redis_through_its_owner_only_socket(live_stack, role: str):
    """Co-located services skip loopback TCP (#15); the socket admits its owner alone, and still
    asks for a password."""
    socket_path = live_stack.config.redis_socket_of(role)
    assert socket_path is not None, "the test stack's run directory should be short enough for a socket"
    mode = socket_path.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o700
    env = live_stack.service_env()
    url = env[{"store": "REDIS_URL", "queue": "QUEUE_REDIS_URL", "cache": "CACHE_REDIS_URL"}[role]]
    assert url == f"unix://api@{socket_path}?db=0"
    assert redis.Redis.from_url(url, password=env["REDIS_PASSWORD"], socket_timeout=5).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(unix_socket_path=str(socket_path), socket_timeout=5).get(keys.FEEDBACK_INDEX)


def test_redis_elsewhere_or_a_socket_path_too_long_means_tcp(tmp_path):
    assert StackConfig(run_dir=tmp_path).redis_socket_of("queue") == tmp_path / "redis-queue" / "redis.sock"
    assert StackConfig(run_dir=tmp_path, redis_host="198.18.0.2").redis_socket_of("queue") is None
    deep = StackConfig(run_dir=tmp_path / ("d" * 100), port=9100)
    assert deep.redis_socket_of("store") is None
    assert Stack(deep).service_env()["REDIS_URL"] == "redis://api@127.0.0.1:9102/0"


def _as(stack, role: str, user: str) -> redis.Redis:
    return redis.Redis(
        port=stack.config.redis_port_of(role), username=user, password=stack.redis_password(user), socket_timeout=5
    )


@pytest.mark.parametrize(
    "command", [("FLUSHALL",), ("KEYS", "*"), ("CONFIG", "GET", "requirepass"), ("CLIENT", "KILL", "ID", "1")]
)
def test_the_api_user_cannot_flush_list_or_reconfigure(live_stack, command):
    for role in ROLES:
        with pytest.raises(redis.exceptions.NoPermissionError):
            _as(live_stack, role, "api").execute_command(*command)


def test_the_api_user_is_confined_to_our_keys(live_stack):
    api = _as(live_stack, "store", "api")
    with pytest.raises(redis.exceptions.NoPermissionError):
        api.get("someone-elses:key")
    assert api.get(keys.feedback("no-such-id")) is None


def test_a_worker_reaches_the_queue_and_only_reads_heads_in_the_store(live_stack):
    """A worker's password opens the job stream and its replies, not feedback or the cache; in the
    store it may read a custom head (HGETALL) and nothing else: no write, no other key, no other command."""
    with pytest.raises(redis.AuthenticationError):
        _as(live_stack, "cache", "worker").ping()
    worker = _as(live_stack, "queue", "worker")
    assert worker.xlen(keys.jobs("efficientnet_lite0", "1")) >= 0
    for key in (keys.feedback("x"), keys.prediction("x"), keys.cache("m", "1", "x"), keys.rate_limit("1.2.3.4", 1)):
        with pytest.raises(redis.exceptions.NoPermissionError):
            worker.get(key)
    with pytest.raises(redis.exceptions.NoPermissionError):
        worker.flushall()
    admin(live_stack, "store").hset(keys.head("acl-probe", "1"), mapping={"shape": "1x2"})
    store = _as(live_stack, "store", "worker")
    assert store.hgetall(keys.head("acl-probe", "1")) == {b"shape": b"1x2"}
    refused = [
        lambda: store.hset(keys.head("acl-probe", "1"), "shape", "9x9"),  # read-only even on heads
        lambda: store.delete(keys.head("acl-probe", "1")),
        lambda: store.hgetall(keys.dataset_embeddings("x")),  # only head keys
        lambda: store.hgetall(keys.feedback("x")),
        lambda: store.get(keys.head("acl-probe", "1")),  # only HGETALL
        lambda: store.flushall(),
    ]
    for command in refused:
        with pytest.raises(redis.exceptions.NoPermissionError):
            command()
    assert admin(live_stack, "store").hget(keys.head("acl-probe", "1"), "shape") == b"1x2"
    admin(live_stack, "store").delete(keys.head("acl-probe", "1"))


def test_memory_is_capped_and_only_the_cache_may_evict(live_stack):
    policies = {role: admin(live_stack, role).config_get("maxmemory*") for role in ROLES}
    assert all(int(p["maxmemory"]) > 0 for p in policies.values()), policies
    assert {role: p["maxmemory-policy"] for role, p in policies.items()} == {
        "store": "noeviction",
        "queue": "noeviction",
        "cache": "allkeys-lru",
    }
    persistence = {role: admin(live_stack, role).config_get("appendonly")["appendonly"] for role in ROLES}
    assert persistence == {"store": "yes", "queue": "no", "cache": "no"}
