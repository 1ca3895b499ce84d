"""deploy/k8s rendered offline (tests/support/kustomize.py, cross-checked with `kubectl kustomize` when
installed) and every resource validated against the Kubernetes OpenAPI schemas bundled in
kubernetes-validate; KEDA's custom resources and the wiring between resources are checked by hand."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from classroom_contract import keys

from tests.support.kustomize import identity, load_documents, render, split_image

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33.0"  # schemas bundled in kubernetes-validate; any cluster >= 1.30 works
TARGETS = ["base", "overlays/example"]
WORKLOADS = {"Deployment", "StatefulSet"}
SECRET_NAME = "classroom-secrets"
PLACEHOLDER = "REPLACE_ME"


@pytest.fixture(scope="module", params=TARGETS)
def rendered(request) -> tuple[str, list[dict]]:
    return request.param, render(K8S / request.param)


def by_kind(resources: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in resources if doc["kind"] == kind}


def pod_spec(doc: dict) -> dict:
    return doc["spec"]["template"]["spec"]


def secret_example() -> dict:
    (doc,) = load_documents(K8S / "secret.example.yaml")
    return doc


def every_kustomization() -> list[Path]:
    return sorted(p.parent for p in K8S.rglob("kustomization.yaml"))


# --- rendering -----------------------------------------------------------------------------------------


def test_layout_is_base_components_and_overlays_without_copies():
    assert (K8S / "base" / "kustomization.yaml").is_file()
    assert (K8S / "components" / "keda-autoscaling" / "kustomization.yaml").is_file()
    assert (K8S / "components" / "redis-statefulset" / "kustomization.yaml").is_file()
    assert (K8S / "README.md").is_file()
    # Overlays only reference and patch: no manifest files of their own.
    for overlay in (K8S / "overlays").iterdir():
        assert {p.name for p in overlay.iterdir()} <= {"kustomization.yaml", "secrets.env"}, overlay


@pytest.mark.parametrize("target", TARGETS)
def test_kubectl_kustomize_renders_the_same(target):
    """Keeps the test's kustomize honest wherever the real one is installed."""
    kubectl, kustomize = shutil.which("kubectl"), shutil.which("kustomize")
    if not (kubectl or kustomize):
        pytest.skip("neither kubectl nor kustomize is installed; rendered with tests/support/kustomize.py only")
    command = [kustomize, "build"] if kustomize else [kubectl, "kustomize"]
    result = subprocess.run([*command, str(K8S / target)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    theirs = {identity(doc): doc for doc in yaml.safe_load_all(result.stdout) if doc}
    ours = {identity(doc): doc for doc in render(K8S / target)}
    assert theirs.keys() == ours.keys()
    for key, doc in ours.items():
        assert doc == theirs[key], key


def test_every_namespaced_resource_of_the_overlay_is_in_the_namespace():
    for doc in render(K8S / "overlays/example"):
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "classroom", identity(doc)


def test_overlay_uses_both_components_and_pushes_images_to_a_registry():
    resources = render(K8S / "overlays/example")
    assert "redis" in by_kind(resources, "StatefulSet")
    assert "worker" in by_kind(resources, "ScaledObject")
    for doc in resources:
        if doc["kind"] in WORKLOADS:
            for container in pod_spec(doc)["containers"]:
                name, _, _ = split_image(container["image"])
                assert not name.startswith("classroom/"), f"{container['image']}: set the registry in images:"


# --- schemas -------------------------------------------------------------------------------------------


def validate(doc: dict) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_every_resource_matches_the_kubernetes_schema(rendered):
    _, resources = rendered
    assert resources
    for doc in resources:
        if doc["apiVersion"].startswith(("keda.sh/", "gateway.networking.k8s.io/")):
            continue  # CRDs, not in the bundled schemas: checked by hand in test_keda_* and test_gateway_*
        try:
            validate(doc)
        except kubernetes_validate.SchemaNotFoundError:
            pytest.fail(f"{identity(doc)}: {doc['apiVersion']} is not a Kubernetes {KUBERNETES_VERSION} API")
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{identity(doc)}: {'.'.join(map(str, error.path))}: {error.message}")


def test_schema_validation_rejects_a_broken_deployment():
    doc = next(d for d in render(K8S / "base") if d["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(doc))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)
    broken = yaml.safe_load(yaml.safe_dump(doc))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}  # strict: unknown field
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


def test_secret_example_is_valid_and_holds_placeholders_only():
    doc = secret_example()
    validate(doc)
    assert doc["metadata"]["name"] == SECRET_NAME
    assert "data" not in doc and doc["stringData"], "a template with readable placeholders"
    assert set(doc["stringData"].values()) == {PLACEHOLDER}
    for directory in every_kustomization():
        spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
        listed = [*spec.get("resources", []), *spec.get("components", [])]
        assert not any("secret.example" in entry for entry in listed), "the template must never be applied"


# --- workloads -----------------------------------------------------------------------------------------


def test_workloads_have_probes_resources_and_a_non_root_security_context(rendered):
    _, resources = rendered
    workloads = [doc for doc in resources if doc["kind"] in WORKLOADS]
    assert {"api", "worker", "dashboard", "tfserving"} <= {doc["metadata"]["name"] for doc in workloads}
    for doc in workloads:
        name = doc["metadata"]["name"]
        pod = pod_spec(doc)
        context = pod.get("securityContext", {})
        assert context.get("runAsNonRoot") is True and context.get("runAsUser", 0) != 0, name
        assert context.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        for container in pod["containers"]:
            assert "readinessProbe" in container and "livenessProbe" in container, f"{name}: probes"
            requests, limits = container["resources"].get("requests", {}), container["resources"].get("limits", {})
            assert {"cpu", "memory"} <= requests.keys() and {"cpu", "memory"} <= limits.keys(), name
            security = container.get("securityContext", {})
            assert security.get("allowPrivilegeEscalation") is False, name
            assert security.get("capabilities", {}).get("drop") == ["ALL"], name
            assert security.get("readOnlyRootFilesystem") is True, name
            _, tag, digest = split_image(container["image"])
            assert digest or (tag and tag != "latest"), f"{name}: pin {container['image']}"
            port_names = {port["name"] for port in container.get("ports", [])}
            for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
                probe = container.get(probe_name, {})
                for handler in ("httpGet", "tcpSocket"):
                    if handler in probe:
                        assert probe[handler]["port"] in port_names, f"{name}.{probe_name}: unknown port"


def test_images_and_commands_match_the_dockerfiles_and_compose():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    base = {doc["metadata"]["name"]: doc for doc in render(K8S / "base") if doc["kind"] in WORKLOADS}
    for name in ("api", "worker", "dashboard"):
        container = pod_spec(base[name])["containers"][0]
        k8s_image, _, _ = split_image(container["image"])
        assert k8s_image == compose[name]["image"].split(":")[0], name
        assert container.get("command") == compose[name].get("command"), name
        assert pod_spec(base[name])["securityContext"]["runAsUser"] == 10001  # USER in services/*/Dockerfile
    tfserving = pod_spec(base["tfserving"])
    assert tfserving["securityContext"]["runAsUser"] == 65534  # USER in deploy/tfserving/Dockerfile
    args = tfserving["containers"][0]["args"]
    assert "--enable_batching" in args and "--batching_parameters_file=/config/batching_parameters.txt" in args


def test_env_references_resolve(rendered):
    """$(VAR) expansions, ConfigMap keys and Secret keys that the containers use all exist."""
    _, resources = rendered
    configmaps = by_kind(resources, "ConfigMap")
    secret_keys = set(secret_example()["stringData"])
    for doc in resources:
        if doc["kind"] not in WORKLOADS:
            continue
        for container in pod_spec(doc)["containers"]:
            defined: set[str] = set()
            for source in container.get("envFrom", []):
                configmap = configmaps[source["configMapRef"]["name"]]
                defined |= set(configmap["data"])
            for variable in container.get("env", []):
                if "value" in variable:
                    for reference in re.findall(r"\$\((\w+)\)", variable["value"]):
                        assert reference in defined, f"{doc['metadata']['name']}: $({reference}) is undefined"
                    if re.search(r"PASSWORD|SECRET|TOKEN|KEY", variable["name"]):
                        pytest.fail(f"{variable['name']} must come from the Secret, not a literal value")
                else:
                    ref = variable["valueFrom"].get("secretKeyRef") or variable["valueFrom"].get("configMapKeyRef")
                    if "secretKeyRef" in variable["valueFrom"]:
                        assert ref["name"] == SECRET_NAME and ref["key"] in secret_keys, variable
                    else:
                        assert ref["key"] in configmaps[ref["name"]]["data"], variable
                defined.add(variable["name"])
            for arg in container.get("args", []):
                for reference in re.findall(r"\$\((\w+)\)", arg):
                    assert reference in defined, f"{doc['metadata']['name']}: $({reference}) in args is undefined"


def test_no_secret_values_are_rendered(rendered):
    _, resources = rendered
    for doc in resources:
        assert doc["kind"] != "Secret", "secrets are created out of band (see secret.example.yaml)"
    text = yaml.safe_dump_all(resources)
    assert not re.search(r"(password|secret_key)\s*[:=]\s*['\"]?[A-Za-z0-9+/]{16,}", text, re.IGNORECASE)


# --- services and ingress ------------------------------------------------------------------------------


def test_services_select_pods_and_named_ports(rendered):
    _, resources = rendered
    workloads = [doc for doc in resources if doc["kind"] in WORKLOADS]
    for name, service in by_kind(resources, "Service").items():
        selector = service["spec"]["selector"]
        matches = [w for w in workloads if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert len(matches) == 1, f"service {name} selects {len(matches)} workloads"
        ports = {p["name"] for c in pod_spec(matches[0])["containers"] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"service {name}: targetPort {port['targetPort']}"


GATEWAY_API = "gateway.networking.k8s.io/v1"


def test_no_ingress_nginx_left(rendered):
    """ingress-nginx is retired upstream (no security fixes since March 2026): the Gateway API serves."""
    _, resources = rendered
    assert not by_kind(resources, "Ingress")
    for doc in resources:
        assert not any("nginx.ingress" in key for key in doc["metadata"].get("annotations", {})), identity(doc)


def test_gateway_terminates_tls_and_routes_api_and_dashboard(rendered):
    _, resources = rendered
    (gateway,) = by_kind(resources, "Gateway").values()
    routes = by_kind(resources, "HTTPRoute")
    services = by_kind(resources, "Service")
    assert gateway["apiVersion"] == GATEWAY_API and all(r["apiVersion"] == GATEWAY_API for r in routes.values())
    assert gateway["spec"]["gatewayClassName"]
    listeners = {listener["name"]: listener for listener in gateway["spec"]["listeners"]}
    https = listeners["https"]
    assert https["protocol"] == "HTTPS" and https["port"] == 443 and https["tls"]["mode"] == "Terminate"
    assert https["tls"]["certificateRefs"] == [{"kind": "Secret", "name": "classroom-tls"}]
    paths = {}
    for route in routes.values():
        for parent in route["spec"]["parentRefs"]:
            assert parent["name"] == gateway["metadata"]["name"] and parent["sectionName"] in listeners
            assert route["spec"]["hostnames"] == [listeners[parent["sectionName"]]["hostname"]]
        for rule in route["spec"]["rules"]:
            for backend in rule.get("backendRefs", []):
                ports = {p["port"] for p in services[backend["name"]]["spec"]["ports"]}
                assert backend["port"] in ports, f"{backend} has no such Service port"
                for match in rule["matches"]:
                    assert match["path"]["type"] in {"PathPrefix", "Exact"}
                    paths[match["path"]["value"]] = backend["name"]
            if route["spec"]["parentRefs"][0]["sectionName"] == "http":
                assert rule["filters"] == [
                    {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}
                ], "plain HTTP only redirects"
                assert "backendRefs" not in rule
    assert paths == {"/v1": "api", "/healthz": "api", "/readyz": "api", "/join": "api", "/": "dashboard"}
    assert "/metrics" not in paths, "metrics stay inside the cluster"


def test_overlay_sets_its_own_host_and_gateway_class():
    resources = render(K8S / "overlays/example")
    (gateway,) = by_kind(resources, "Gateway").values()
    hosts = {listener["hostname"] for listener in gateway["spec"]["listeners"]}
    hosts |= {h for route in by_kind(resources, "HTTPRoute").values() for h in route["spec"]["hostnames"]}
    assert hosts == {"classroom.example.edu"}
    assert gateway["spec"]["gatewayClassName"] != "classroom"


def test_dashboard_trusts_one_proxy_hop(rendered):
    _, resources = rendered
    (container,) = pod_spec(by_kind(resources, "Deployment")["dashboard"])["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TRUSTED_PROXY_HOPS"] == "1"


def test_crop_store_is_in_memory_private_and_wired_to_api_and_workers(rendered):
    _, resources = rendered
    deployments = by_kind(resources, "Deployment")
    crop_store = pod_spec(deployments["crop-store"])
    (container,) = crop_store["containers"]
    script = " ".join(container["args"])
    assert '--save ""' in script and "--appendonly no" in script and "requirepass" in script
    assert "CROP_STORE_PASSWORD" not in " ".join(container.get("command", [])) + script.split("<<")[0]
    (data,) = [v for v in crop_store["volumes"] if v["name"] == "data"]
    assert data["emptyDir"]["medium"] == "Memory"
    assert not by_kind(resources, "PersistentVolumeClaim")
    policy = by_kind(resources, "NetworkPolicy")["crop-store"]
    assert policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]["values"] == [
        "api",
        "worker",
        "dashboard",
    ]
    for name in ("api", "worker", "dashboard"):
        env = {e["name"]: e for e in pod_spec(deployments[name])["containers"][0]["env"]}
        assert env["CROP_STORE_URL"]["value"] == "redis://:$(CROP_STORE_PASSWORD)@crop-store:6379/0"
        assert env["CROP_STORE_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "CROP_STORE_PASSWORD"
        assert name == "dashboard" or "SECRET_KEY" not in env, f"{name} must not receive the dashboard's key"


def test_namespace_enforces_restricted_pod_security():
    (namespace,) = by_kind(render(K8S / "base"), "Namespace").values()
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# --- KEDA and Redis ------------------------------------------------------------------------------------


def test_keda_scales_the_workers_on_the_rq_queue():
    resources = render(K8S / "overlays/example")
    scaled = by_kind(resources, "ScaledObject")["worker"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    worker = by_kind(resources, "Deployment")[spec["scaleTargetRef"]["name"]]
    container = pod_spec(worker)["containers"][0]
    assert container["command"] == ["classroom-worker"]
    assert "replicas" not in worker["spec"], "KEDA owns the worker's replica count"
    assert 0 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "redis"
    metadata = trigger["metadata"]
    assert metadata["listName"] == f"rq:queue:{keys.INFERENCE_QUEUE}"
    assert all(isinstance(value, str) for value in metadata.values()), "KEDA metadata values are strings"
    assert int(metadata["listLength"]) > 0
    config = by_kind(resources, "ConfigMap")["classroom-config"]["data"]
    for field in ("hostFromEnv", "portFromEnv"):
        assert metadata[field] in config, f"{field}: the worker has no {metadata[field]}"
    # KEDA's operator resolves the host from its own namespace: it must be fully qualified.
    assert config["REDIS_HOST"].endswith(f".{worker['metadata']['namespace']}.svc.cluster.local")
    auth = by_kind(resources, "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    assert auth["apiVersion"] == "keda.sh/v1alpha1"
    (secret_ref,) = auth["spec"]["secretTargetRef"]
    assert secret_ref["parameter"] == "password" and secret_ref["name"] == SECRET_NAME
    assert secret_ref["key"] in secret_example()["stringData"]


def test_redis_statefulset_is_persistent_private_and_behind_the_configured_host():
    resources = render(K8S / "overlays/example")
    redis = by_kind(resources, "StatefulSet")["redis"]
    service = by_kind(resources, "Service")[redis["spec"]["serviceName"]]
    assert service["spec"]["clusterIP"] == "None"
    config = by_kind(resources, "ConfigMap")["classroom-config"]["data"]
    assert config["REDIS_HOST"].split(".")[0] == service["metadata"]["name"]
    assert config["REDIS_PORT"] == str(service["spec"]["ports"][0]["port"])
    container = pod_spec(redis)["containers"][0]
    args = container["args"]
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    assert {m["name"]: m["mountPath"] for m in container["volumeMounts"]}[claim["metadata"]["name"]] == "/data"
    compose_redis = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["redis"]["image"]
    assert container["image"] == compose_redis
    policy = by_kind(resources, "NetworkPolicy")["redis"]
    assert policy["spec"]["podSelector"]["matchLabels"] == redis["spec"]["selector"]["matchLabels"]
