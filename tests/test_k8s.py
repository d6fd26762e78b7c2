"""The Kubernetes manifests render without a binary, validate offline and say what we mean."""

from __future__ import annotations

import base64
import binascii
import copy
import ipaddress
import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr, ValidationError

from services.registry import DEFAULT_PORTS, SERVICE_NAMES, WITH_MIGRATIONS, settings_class
from services.stack import wiring_env
from shared.settings import ServiceSettings

SERVICES_WITH_MIGRATIONS = tuple(entry.name for entry in WITH_MIGRATIONS)
# Addresses browsers use (the public ones), not service-to-service wiring.
PUBLIC_ADDRESSES = {"REFEX_TOKEN_ISSUER", "REFEX_WEB_PUBLIC_URL", "REFEX_GATEWAY_WEB_REDIRECT_URIS"}
# What the ingress controller publishes: the API (gateway) and the pages for people (web).
PUBLIC_SERVICES = {"gateway", "web"}

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
# The oldest Kubernetes minor still commonly supported, and the newest schemas bundled.
K8S_VERSIONS = ("1.29.0", "1.37.0")
NAMESPACE = "refex"
SECRET_EXAMPLE = K8S / "overlays" / "prod" / "secret.example.yaml"
Manifest = dict[str, Any]

# --- A minimal kustomize: exactly the features deploy/k8s uses, so no binary is needed. ---

SUPPORTED_FIELDS = {
    "apiVersion",
    "kind",
    "namespace",
    "resources",
    "images",
    "replicas",
    "patches",
    "secretGenerator",
    "generatorOptions",
}
# Strategic merge keys of the list fields we patch; other lists are replaced, as kustomize does.
MERGE_KEYS = {
    "containers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}


def load_documents(path: Path) -> list[Manifest]:
    """Return the YAML documents of `path`, skipping empty ones."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kustomize(directory: Path) -> list[Manifest]:
    """Render a kustomization the way `kubectl kustomize` does, for the fields we use."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(spec) - SUPPORTED_FIELDS
    assert not unsupported, f"{directory}: teach tests/test_k8s.py {sorted(unsupported)}"
    objects: list[Manifest] = []
    for entry in spec.get("resources", []):
        path = directory / entry
        objects += kustomize(path) if path.is_dir() else load_documents(path)
    options = spec.get("generatorOptions", {})
    objects += [generated_secret(entry, options) for entry in spec.get("secretGenerator", [])]
    for entry in spec.get("patches", []):
        if "target" in entry:  # a JSON 6902 patch: a list of operations on one target
            index = find_index(objects, entry["target"]["kind"], entry["target"]["name"])
            for operation in yaml.safe_load((directory / entry["path"]).read_text()):
                json_patch(objects[index], operation)
            continue
        for patch in load_documents(directory / entry["path"]):
            index = find_index(objects, patch["kind"], patch["metadata"]["name"])
            objects[index] = strategic_merge(objects[index], patch)
    for image in spec.get("images", []):
        set_image(objects, image)
    for replicas in spec.get("replicas", []):
        objects[find_index(objects, "Deployment", replicas["name"])]["spec"]["replicas"] = replicas[
            "count"
        ]
    for manifest in objects:
        if "namespace" in spec and manifest["kind"] != "Namespace":
            manifest["metadata"]["namespace"] = spec["namespace"]
    return objects


def generated_secret(entry: Manifest, options: Manifest) -> Manifest:
    """A secretGenerator entry as the Secret it makes (literals only, stable names only)."""
    assert options.get("disableNameSuffixHash") is True, "the renderer keeps names as written"
    assert set(entry) == {"name", "literals"}, entry
    data = {}
    for literal in entry["literals"]:
        key, _, value = literal.partition("=")
        data[key] = base64.b64encode(value.encode()).decode()
    metadata = {
        "name": entry["name"],
        **({"labels": options["labels"]} if "labels" in options else {}),
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "data": data,
    }


def find_index(objects: list[Manifest], kind: str, name: str) -> int:
    matches = [
        i for i, o in enumerate(objects) if (o["kind"], o["metadata"]["name"]) == (kind, name)
    ]
    assert len(matches) == 1, f"the patch target {kind}/{name} must exist exactly once"
    return matches[0]


def json_patch(document: Manifest, operation: Manifest) -> None:
    """Apply one RFC 6902 `add` or `replace` operation (the only ones deploy/k8s uses)."""
    assert operation["op"] in {"add", "replace"}, f"teach tests/test_k8s.py {operation['op']}"
    *parents, last = [
        part.replace("~1", "/").replace("~0", "~") for part in operation["path"].split("/")[1:]
    ]
    node: Any = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = copy.deepcopy(operation["value"])
    else:
        assert operation["op"] == "add" or last in node, f"nothing to replace at {operation}"
        node[last] = copy.deepcopy(operation["value"])


def strategic_merge(base: Any, patch: Any, key: str = "") -> Any:
    """Merge `patch` into `base`: maps recursively, keyed lists by their merge key."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for name, value in patch.items():
            merged[name] = strategic_merge(base[name], value, name) if name in base else value
        return merged
    merge_key = MERGE_KEYS.get(key)
    if isinstance(base, list) and isinstance(patch, list) and merge_key:
        merged_list = copy.deepcopy(base)
        for item in patch:
            same = [i for i, old in enumerate(merged_list) if old[merge_key] == item[merge_key]]
            if same:
                merged_list[same[0]] = strategic_merge(merged_list[same[0]], item)
            else:
                merged_list.append(item)
        return merged_list
    return copy.deepcopy(patch)


def set_image(objects: list[Manifest], image: Manifest) -> None:
    for container in all_containers(objects):
        name, _, tag = container["image"].partition(":")
        if name == image["name"]:
            container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"


def all_containers(objects: list[Manifest]) -> list[Manifest]:
    """Every container of every workload in `objects`."""
    pods = [o["spec"]["template"]["spec"] for o in objects if "template" in o.get("spec", {})]
    return [c for pod in pods for c in pod.get("initContainers", []) + pod["containers"]]


@cache
def _rendered(overlay: str) -> tuple[Manifest, ...]:
    return tuple(kustomize(K8S / "overlays" / overlay))


def rendered(overlay: str) -> list[Manifest]:
    """The overlay's objects (a fresh copy for each caller)."""
    return copy.deepcopy(list(_rendered(overlay)))


def objects_of(overlay: str, kind: str) -> dict[str, Manifest]:
    return {o["metadata"]["name"]: o for o in rendered(overlay) if o["kind"] == kind}


def deployment(overlay: str, name: str) -> Manifest:
    return objects_of(overlay, "Deployment")[name]


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def container(overlay: str, name: str) -> Manifest:
    (only,) = pod_spec(deployment(overlay, name))["containers"]
    return dict(only)


def job_container(overlay: str, name: str) -> Manifest:
    job = objects_of(overlay, "Job")["refex-migrate"]
    return next(c for c in pod_spec(job)["containers"] if c["name"] == name)


def canonical(value: Any) -> Any:
    """Order keyed lists by key, so two renderings compare regardless of merge order."""
    if isinstance(value, dict):
        return {key: canonical(item) for key, item in value.items()}
    if isinstance(value, list) and value and all(isinstance(i, dict) for i in value):
        key = next((k for k in ("name", "mountPath") if all(k in i for i in value)), None)
        items = [canonical(i) for i in value]
        return sorted(items, key=lambda i: str(i[key])) if key else items
    return value


def by_identity(objects: list[Manifest]) -> dict[tuple[str, str], Any]:
    """Objects by kind and name, in canonical form (Secret data decoded: kustomize wraps it)."""
    result = {}
    for manifest in copy.deepcopy(objects):
        if manifest["kind"] == "Secret":
            data = manifest.get("data", {})
            manifest["data"] = {k: base64.b64decode("".join(v.split())) for k, v in data.items()}
        result[(manifest["kind"], manifest["metadata"]["name"])] = canonical(manifest)
    return result


def kustomize_command() -> list[str] | None:
    """The real renderer, if installed: `kustomize build` or `kubectl kustomize`."""
    if standalone := shutil.which("kustomize"):
        return [standalone, "build"]
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    return None


KUSTOMIZE = kustomize_command()


class TestRendering:
    @pytest.mark.skipif(KUSTOMIZE is None, reason="needs kubectl or kustomize to compare with")
    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_the_python_renderer_agrees_with_kustomize(self, overlay: str) -> None:
        assert KUSTOMIZE is not None
        output = subprocess.run(
            [*KUSTOMIZE, str(K8S / "overlays" / overlay)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        theirs = [doc for doc in yaml.safe_load_all(output) if doc]
        assert by_identity(rendered(overlay)) == by_identity(theirs)

    @pytest.mark.parametrize("version", K8S_VERSIONS)
    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_every_object_validates_against_the_kubernetes_schemas(
        self, overlay: str, version: str
    ) -> None:
        for manifest in rendered(overlay):
            # strict: an unknown or misspelt field is an error, not silently dropped
            kubernetes_validate.validate(manifest, version, strict=True)

    def test_the_validator_really_rejects_a_broken_object(self) -> None:
        broken = deployment("prod", "gateway")
        container_spec = pod_spec(broken)["containers"][0]
        container_spec["readinessProbe"]["httpGet"]["pathh"] = "/readyz"
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_everything_lives_in_the_refex_namespace(self, overlay: str) -> None:
        for manifest in rendered(overlay):
            if manifest["kind"] == "Namespace":
                assert manifest["metadata"]["name"] == NAMESPACE
            else:
                assert manifest["metadata"]["namespace"] == NAMESPACE, manifest["metadata"]


class TestDeployments:
    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_each_service_runs_refex_serve_from_the_one_image(self, overlay: str) -> None:
        assert set(SERVICE_NAMES) <= set(objects_of(overlay, "Deployment"))
        images = set()
        for name in SERVICE_NAMES:
            spec = container(overlay, name)
            assert spec["args"] == ["serve", name]
            assert "command" not in spec, "keep the image's entrypoint (refex)"
            images.add(spec["image"])
        images |= {
            c["image"] for c in pod_spec(objects_of(overlay, "Job")["refex-migrate"])["containers"]
        }
        assert len(images) == 1

    def test_prod_runs_a_pinned_image_from_a_registry(self) -> None:
        image = container("prod", "gateway")["image"]
        assert re.fullmatch(r"[a-z0-9.-]+\.[a-z]+/refex:\d+\.\d+\.\d+", image), image

    @pytest.mark.parametrize("overlay", OVERLAYS)
    @pytest.mark.parametrize("name", SERVICE_NAMES)
    def test_probes_ask_readyz_and_healthz_on_the_service_port(
        self, overlay: str, name: str
    ) -> None:
        spec = container(overlay, name)
        (port,) = spec["ports"]
        assert port == {"name": "http", "containerPort": DEFAULT_PORTS[name]}
        assert spec["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert spec["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}

    @pytest.mark.parametrize("overlay", OVERLAYS)
    @pytest.mark.parametrize("name", SERVICE_NAMES)
    def test_a_cluster_ip_service_reaches_each_deployment(self, overlay: str, name: str) -> None:
        service = objects_of(overlay, "Service")[name]
        labels = deployment(overlay, name)["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["type"] == "ClusterIP"
        assert service["spec"]["selector"] == labels
        assert deployment(overlay, name)["spec"]["selector"]["matchLabels"] == labels
        assert service["spec"]["ports"] == [
            {"name": "http", "port": DEFAULT_PORTS[name], "targetPort": "http"}
        ]

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_every_container_has_resource_requests_within_its_limits(self, overlay: str) -> None:
        containers = all_containers(rendered(overlay))
        assert len(containers) >= len(SERVICE_NAMES) + len(SERVICES_WITH_MIGRATIONS)
        for spec in containers:
            requests, limits = spec["resources"]["requests"], spec["resources"]["limits"]
            assert set(requests) == set(limits) == {"cpu", "memory"}, spec["name"]
            assert cpu(requests["cpu"]) <= cpu(limits["cpu"])
            assert memory(requests["memory"]) <= memory(limits["memory"])

    @pytest.mark.parametrize("name", SERVICE_NAMES)
    def test_dev_asks_for_less_than_prod(self, name: str) -> None:
        dev = container("dev", name)["resources"]
        prod = container("prod", name)["resources"]
        assert cpu(dev["requests"]["cpu"]) < cpu(prod["requests"]["cpu"])
        assert memory(dev["limits"]["memory"]) < memory(prod["limits"]["memory"])

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_every_pod_runs_locked_down(self, overlay: str) -> None:
        workloads = [o for o in rendered(overlay) if "template" in o.get("spec", {})]
        for workload in workloads:
            pod = pod_spec(workload)
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"]["runAsUser"] > 0
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            assert pod["automountServiceAccountToken"] is False
            for spec in pod["containers"]:
                security = spec["securityContext"]
                assert security["allowPrivilegeEscalation"] is False
                assert security["capabilities"] == {"drop": ["ALL"]}
                assert security.get("privileged", False) is False

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_refex_containers_have_a_read_only_root_and_a_writable_var(self, overlay: str) -> None:
        objects = rendered(overlay)
        for workload in [o for o in objects if "template" in o.get("spec", {})]:
            pod = pod_spec(workload)
            volumes = {v["name"]: v for v in pod.get("volumes", [])}
            for spec in pod["containers"]:
                if not spec["image"].split(":")[0].endswith("refex"):
                    continue
                assert spec["securityContext"]["readOnlyRootFilesystem"] is True
                mounts = {m["mountPath"]: m["name"] for m in spec["volumeMounts"]}
                assert "emptyDir" in volumes[mounts["/app/var"]]
                assert "emptyDir" in volumes[mounts["/tmp"]]

    @pytest.mark.parametrize("name", SERVICE_NAMES)
    def test_prod_runs_at_least_two_replicas_spread_over_nodes(self, name: str) -> None:
        prod = deployment("prod", name)
        assert prod["spec"]["replicas"] >= 2
        keys = {c["topologyKey"] for c in pod_spec(prod)["topologySpreadConstraints"]}
        assert "kubernetes.io/hostname" in keys
        assert deployment("dev", name)["spec"]["replicas"] == 1


def cpu(quantity: str | int) -> float:
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def memory(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    return int(quantity[:-2]) * units[quantity[-2:]]


# --- Environment: every variable is a real setting, secrets only by reference. ---


def settings_fields(cls: type[ServiceSettings]) -> dict[str, str]:
    """Map every environment variable of `cls` to its field name."""
    return {cls.env_name(name): name for name in cls.model_fields}


def is_secret_field(cls: type[ServiceSettings], name: str) -> bool:
    annotation = cls.model_fields[name].annotation
    secret_type = annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())
    # URLs of databases and Redis carry passwords.
    return secret_type or name in {"database_url", "redis_url"}


def env_of(spec: Manifest) -> dict[str, Manifest]:
    return {item["name"]: item for item in spec.get("env", [])}


def resolve(
    spec: Manifest, objects: list[Manifest], secret_values: dict[str, dict[str, str]]
) -> dict[str, str]:
    """The environment a container would get, with references looked up."""
    config = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "ConfigMap"}
    env = {}
    for name, item in env_of(spec).items():
        source = item.get("valueFrom", {})
        if "value" in item:
            env[name] = item["value"]
        elif "configMapKeyRef" in source:
            env[name] = config[source["configMapKeyRef"]["name"]][source["configMapKeyRef"]["key"]]
        else:
            ref = source["secretKeyRef"]
            env[name] = secret_values[ref["name"]][ref["key"]]
    return env


def rendered_secret_values(overlay: str) -> dict[str, dict[str, str]]:
    """Each rendered Secret's values in clear, from `data` or `stringData`."""
    values = {}
    for name, secret in objects_of(overlay, "Secret").items():
        data = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
        values[name] = data | secret.get("stringData", {})
    return values


def example_secrets() -> dict[str, dict[str, str]]:
    return {doc["metadata"]["name"]: doc["stringData"] for doc in load_documents(SECRET_EXAMPLE)}


def realistic(secret: str, key: str) -> str:
    """A value shaped like what an operator puts into the example's `key`."""
    token = secrets.token_urlsafe(24)
    service = secret.removeprefix("refex-")
    if key == "database-url":
        return f"postgresql+asyncpg://{service}:{token}@db.internal.example:5432/{service}"
    if key == "redis-url":
        return f"rediss://:{token}@cache.internal.example:6379/0"
    return token


def filled_example() -> dict[str, dict[str, str]]:
    return {
        name: {key: realistic(name, key) for key in values}
        for name, values in example_secrets().items()
    }


def secret_values(overlay: str) -> dict[str, dict[str, str]]:
    """The Secrets each overlay runs with: rendered in dev, the filled example in prod."""
    return rendered_secret_values("dev") if overlay == "dev" else filled_example()


def refex_containers(overlay: str) -> list[tuple[str, Manifest]]:
    """(service, container) for every Deployment and migration container."""
    pairs = [(name, container(overlay, name)) for name in SERVICE_NAMES]
    return pairs + [(name, job_container(overlay, name)) for name in SERVICES_WITH_MIGRATIONS]


class TestEnvironment:
    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_every_refex_variable_is_a_setting_of_that_service(self, overlay: str) -> None:
        for name, spec in refex_containers(overlay):
            known = settings_fields(settings_class(name))
            unknown = [key for key in env_of(spec) if key not in known]
            assert unknown == [], f"{name} does not read {unknown}"

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_secret_settings_come_only_from_that_services_own_secret(self, overlay: str) -> None:
        for name, spec in refex_containers(overlay):
            cls = settings_class(name)
            fields = settings_fields(cls)
            for key, item in env_of(spec).items():
                reference = item.get("valueFrom", {}).get("secretKeyRef")
                if is_secret_field(cls, fields[key]):
                    assert reference is not None, f"{name}: {key} must come from a Secret"
                if reference is not None:
                    assert reference["name"] == f"refex-{name}", f"{name} reads {reference['name']}"

    @pytest.mark.parametrize("overlay", OVERLAYS)
    @pytest.mark.parametrize("name", SERVICE_NAMES)
    def test_services_find_each_other_by_service_dns_name(self, overlay: str, name: str) -> None:
        env = resolve(container(overlay, name), rendered(overlay), secret_values(overlay))
        known = settings_fields(settings_class(name))
        for key, local_url in wiring_env(DEFAULT_PORTS).items():
            if key not in known or key in PUBLIC_ADDRESSES:
                continue
            if key.endswith("_PORT"):
                assert env[key] == local_url.rsplit(":", 1)[-1]
                continue
            target = next(
                n
                for n, port in DEFAULT_PORTS.items()
                if local_url.endswith(f":{port}") or f":{port}/" in local_url
            )
            host = "127.0.0.1" if target == name else target
            assert env.get(key) == local_url.replace("127.0.0.1", host), key
        assert env[f"REFEX_{name.upper()}_HOST"] == "0.0.0.0"

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_the_token_issuer_is_the_public_address_of_the_ingress(self, overlay: str) -> None:
        objects = rendered(overlay)
        issuers = {
            resolve(container(overlay, name), objects, secret_values(overlay))["REFEX_TOKEN_ISSUER"]
            for name in SERVICE_NAMES
        }
        assert issuers == {public_address(overlay, "gateway")}

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_the_workspace_and_its_callback_are_the_public_address_of_its_ingress(
        self, overlay: str
    ) -> None:
        objects, values = rendered(overlay), secret_values(overlay)
        web = resolve(container(overlay, "web"), objects, values)
        gateway = resolve(container(overlay, "gateway"), objects, values)
        assert web["REFEX_WEB_PUBLIC_URL"] == public_address(overlay, "web")
        assert web["REFEX_WEB_PUBLIC_GATEWAY_URL"] == public_address(overlay, "gateway")
        assert gateway["REFEX_GATEWAY_WEB_REDIRECT_URIS"] == (
            f"{public_address(overlay, 'web')}/auth/callback"
        )

    @pytest.mark.parametrize(
        ("overlay", "environment"), [("dev", "development"), ("prod", "production")]
    )
    def test_the_rendered_environment_is_a_valid_configuration(
        self, overlay: str, environment: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        objects, values = rendered(overlay), secret_values(overlay)
        for name in SERVICE_NAMES:
            for key in [key for key in os.environ if key.startswith("REFEX_")]:
                monkeypatch.delenv(key)
            for key, value in resolve(container(overlay, name), objects, values).items():
                monkeypatch.setenv(key, value)
            settings = settings_class(name)()
            assert settings.environment == environment
            if name in SERVICES_WITH_MIGRATIONS:
                assert settings.database_backend == "postgresql", name

    @pytest.mark.parametrize("name", SERVICES_WITH_MIGRATIONS)
    def test_the_secret_example_unchanged_is_refused_at_start(
        self, name: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for key in [key for key in os.environ if key.startswith("REFEX_")]:
            monkeypatch.delenv(key)
        for key, value in resolve(
            container("prod", name), rendered("prod"), example_secrets()
        ).items():
            monkeypatch.setenv(key, value)
        with pytest.raises(ValidationError):
            settings_class(name)()

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_each_migration_container_gets_only_its_own_database_url(self, overlay: str) -> None:
        for name in SERVICES_WITH_MIGRATIONS:
            spec = job_container(overlay, name)
            assert spec["args"] == ["migrate", "--service", name]
            database_url = settings_class(name).env_name("database_url")
            assert set(env_of(spec)) == {database_url}
            # the very database the service itself uses
            values = secret_values(overlay)
            migrated = resolve(spec, rendered(overlay), values)[database_url]
            assert (
                migrated
                == resolve(container(overlay, name), rendered(overlay), values)[database_url]
            )

    def test_prod_mounts_the_webhook_signing_key_the_referral_service_requires(self) -> None:
        spec = container("prod", "referral")
        path = Path(env_of(spec)["REFEX_REFERRAL_WEBHOOK_SIGNING_KEY_FILE"]["value"])
        (mount,) = [m for m in spec["volumeMounts"] if m["mountPath"] == str(path.parent)]
        assert mount["readOnly"] is True
        volume = next(
            v
            for v in pod_spec(deployment("prod", "referral"))["volumes"]
            if v["name"] == mount["name"]
        )
        assert volume["secret"]["secretName"] == "refex-referral"
        assert volume["secret"]["items"] == [{"key": path.name, "path": path.name}]
        assert path.name in example_secrets()["refex-referral"]


class TestSecrets:
    def test_prod_commits_no_secret(self) -> None:
        assert objects_of("prod", "Secret") == {}

    def test_the_example_lists_exactly_the_keys_the_pods_read(self) -> None:
        wanted: dict[str, set[str]] = {}
        for manifest in rendered("prod"):
            if "template" not in manifest.get("spec", {}):
                continue
            pod = pod_spec(manifest)
            for spec in pod["containers"]:
                for item in spec.get("env", []):
                    if ref := item.get("valueFrom", {}).get("secretKeyRef"):
                        wanted.setdefault(ref["name"], set()).add(ref["key"])
            for volume in pod.get("volumes", []):
                if "secret" in volume:
                    keys = {i["key"] for i in volume["secret"]["items"]}
                    wanted.setdefault(volume["secret"]["secretName"], set()).update(keys)
        assert {name: set(values) for name, values in example_secrets().items()} == wanted

    def test_the_example_holds_no_secret_values(self) -> None:
        for values in example_secrets().values():
            assert set(values.values()) == {"change-me"}

    def test_dev_secrets_are_obviously_development_values(self) -> None:
        values = [v for secret in rendered_secret_values("dev").values() for v in secret.values()]
        assert values
        for value in values:
            assert "dev-only" in readable(value) or not has_credentials(value), value

    def test_no_other_secret_is_committed(self) -> None:
        dev = K8S / "overlays" / "dev"
        for path in K8S.rglob("*.yaml"):
            kinds = {doc.get("kind") for doc in load_documents(path) if isinstance(doc, dict)}
            if "Secret" in kinds:
                assert path in {SECRET_EXAMPLE, dev / "postgres.yaml"}, path
        for secret in [d for d in load_documents(dev / "postgres.yaml") if d["kind"] == "Secret"]:
            assert all(v.startswith("dev-only-") for v in secret["stringData"].values())
        prod = yaml.safe_load((K8S / "overlays" / "prod" / "kustomization.yaml").read_text())
        assert SECRET_EXAMPLE.name not in prod["resources"]

    def test_dev_database_urls_match_the_roles_the_dev_postgresql_creates(self) -> None:
        (init,) = objects_of("dev", "ConfigMap")["postgres-init"]["data"].values()
        loop = re.search(r"for service in ([a-z ]+); do", init)
        assert loop is not None
        assert sorted(loop.group(1).split()) == sorted(SERVICES_WITH_MIGRATIONS)
        assert "CREATE ROLE $service LOGIN PASSWORD 'dev-only-$service-db';" in init
        assert "CREATE DATABASE $service OWNER $service;" in init
        for name in SERVICES_WITH_MIGRATIONS:
            url = rendered_secret_values("dev")[f"refex-{name}"]["database-url"]
            assert url == f"postgresql+asyncpg://{name}:dev-only-{name}-db@postgres:5432/{name}"


def readable(value: str) -> str:
    """The value, and its base64 decoding when it is one (dev keys are encoded text)."""
    try:
        decoded = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return value
    return f"{value} {decoded}"


def has_credentials(value: str) -> bool:
    return "://" not in value or "@" in value.split("://", 1)[1]


class TestScaling:
    @pytest.mark.parametrize("name", SERVICE_NAMES)
    def test_prod_autoscales_each_deployment_on_cpu(self, name: str) -> None:
        hpa = objects_of("prod", "HorizontalPodAutoscaler")[name]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"

    @pytest.mark.parametrize("name", SERVICE_NAMES)
    def test_prod_keeps_a_pod_of_each_service_through_disruptions(self, name: str) -> None:
        pdb = objects_of("prod", "PodDisruptionBudget")[name]
        labels = deployment("prod", name)["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"] == {"matchLabels": labels}
        assert pdb["spec"]["minAvailable"] >= 1
        assert pdb["spec"]["minAvailable"] < deployment("prod", name)["spec"]["replicas"]

    def test_budgets_and_autoscalers_are_for_the_services_only_and_only_in_prod(self) -> None:
        for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget"):
            assert set(objects_of("prod", kind)) == set(SERVICE_NAMES)
            assert objects_of("dev", kind) == {}


PUBLISHED_PATHS = {
    "gateway": ("/api/v1/referrals", "/oauth/token", "/.well-known/jwks.json", "/docs"),
    "web": ("/inbox", "/", "/referrals/x", "/keys", "/auth/callback", "/static/workspace.css"),
}


def other(name: str) -> str:
    """The other public service (each host publishes only its own service's paths)."""
    (found,) = PUBLIC_SERVICES - {name}
    return found


def public_address(overlay: str, name: str) -> str:
    """The base URL browsers reach service `name` at, from its Ingress."""
    ingress = objects_of(overlay, "Ingress")[name]
    (rule,) = ingress["spec"]["rules"]
    scheme = "https" if ingress["spec"].get("tls") else "http"
    return f"{scheme}://{rule['host']}"


class TestIngressAndJob:
    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_only_the_gateway_and_the_workspace_have_an_ingress(self, overlay: str) -> None:
        ingresses = objects_of(overlay, "Ingress")
        assert set(ingresses) == PUBLIC_SERVICES
        for name, ingress in ingresses.items():
            backends = {
                (path["backend"]["service"]["name"], path["backend"]["service"]["port"]["name"])
                for rule in ingress["spec"]["rules"]
                for path in rule["http"]["paths"]
            }
            assert backends == {(name, "http")}
            assert "defaultBackend" not in ingress["spec"]
        hosts = [rule["host"] for i in ingresses.values() for rule in i["spec"]["rules"]]
        assert len(set(hosts)) == len(hosts), "each on its own host"
        published = [
            o
            for o in rendered(overlay)
            if o["kind"] == "Service" and o["spec"].get("type", "ClusterIP") != "ClusterIP"
        ]
        assert published == []

    @pytest.mark.parametrize("overlay", OVERLAYS)
    @pytest.mark.parametrize("name", sorted(PUBLIC_SERVICES))
    def test_metrics_and_readiness_are_not_published(self, overlay: str, name: str) -> None:
        ingress = objects_of(overlay, "Ingress")[name]
        paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]

        def published(url_path: str) -> bool:
            return any(
                url_path == p["path"]
                if p["pathType"] == "Exact"
                else url_path.startswith(p["path"].rstrip("/") + "/") or url_path == p["path"]
                for p in paths
            )

        for internal in ("/metrics", "/readyz", "/info", *PUBLISHED_PATHS[other(name)][:1]):
            assert not published(internal), internal
        for public in PUBLISHED_PATHS[name]:
            assert published(public), public

    @pytest.mark.parametrize("name", sorted(PUBLIC_SERVICES))
    def test_prod_serves_the_gateway_and_the_workspace_over_tls(self, name: str) -> None:
        ingress = objects_of("prod", "Ingress")[name]
        (tls,) = ingress["spec"]["tls"]
        assert tls["hosts"] == [rule["host"] for rule in ingress["spec"]["rules"]]

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_each_browser_stays_on_the_workspace_pod_holding_its_session(
        self, overlay: str
    ) -> None:
        annotations = objects_of(overlay, "Ingress")["web"]["metadata"]["annotations"]
        assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_one_job_migrates_every_database_and_can_be_applied_alone(self, overlay: str) -> None:
        job = objects_of(overlay, "Job")["refex-migrate"]
        names = [c["name"] for c in pod_spec(job)["containers"]]
        assert sorted(names) == sorted(SERVICES_WITH_MIGRATIONS)
        assert pod_spec(job)["restartPolicy"] in {"OnFailure", "Never"}
        # `kubectl apply -l app.kubernetes.io/component=migration` must select the Job only.
        selected = [
            o
            for o in rendered(overlay)
            if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "migration"
        ]
        assert selected == [job]
        # a finished Job is removed, so the next apply can create it with the new image
        assert job["spec"]["ttlSecondsAfterFinished"] > 0


# --- NetworkPolicy: evaluate the rendered policies the way a CNI would (matchLabels only). ---


@dataclass(frozen=True)
class Peer:
    """A pod (namespace and labels) or an address outside the cluster."""

    name: str
    namespace: str | None = NAMESPACE
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    ip: str | None = None


def refex_pod(name: str) -> Peer:
    return Peer(name, labels={"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "refex"})


INGRESS_CONTROLLER = Peer(
    "ingress-controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}
)
IMPOSTOR = Peer("gateway-elsewhere", "default", refex_pod("gateway").labels)
KUBE_DNS = Peer("kube-dns", "kube-system", {"k8s-app": "kube-dns"})
MANAGED_DATABASE = Peer("managed-postgresql", None, ip="198.51.100.7")
PARTNER = Peer("partner-webhook", None, ip="203.0.113.20")
PRIVATE_HOST = Peer("private-host", None, ip="10.20.30.40")
METADATA_SERVER = Peer("cloud-metadata", None, ip="169.254.169.254")
# Who calls whom (docs/architecture.md); every service also asks the gateway for JWKS and tokens.
CALLS = {
    ("gateway", "directory"),
    ("gateway", "consent"),
    ("gateway", "referral"),
    ("referral", "directory"),
    ("referral", "consent"),
    ("consent", "referral"),
    ("consent", "directory"),
    ("directory", "gateway"),
    ("consent", "gateway"),
    ("referral", "gateway"),
    ("web", "gateway"),
}


def selects(selector: Manifest, labels: dict[str, str]) -> bool:
    assert "matchExpressions" not in selector, "the evaluator knows matchLabels only"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def peer_matches(rule_peer: Manifest, peer: Peer) -> bool:
    if "ipBlock" in rule_peer:
        if peer.ip is None:
            return False
        address = ipaddress.ip_address(peer.ip)
        block = rule_peer["ipBlock"]
        inside = address in ipaddress.ip_network(block["cidr"])
        excepted = any(address in ipaddress.ip_network(e) for e in block.get("except", []))
        return inside and not excepted
    if peer.namespace is None:
        return False
    namespace_labels = {"kubernetes.io/metadata.name": peer.namespace}
    if "namespaceSelector" in rule_peer:
        namespace_ok = selects(rule_peer["namespaceSelector"], namespace_labels)
    else:
        namespace_ok = peer.namespace == NAMESPACE
    return namespace_ok and selects(rule_peer.get("podSelector", {}), peer.labels)


def rule_allows(rule: Manifest, side: str, peer: Peer, port: int, protocol: str) -> bool:
    peers = rule.get(side)
    ports = rule.get("ports")
    peer_ok = peers is None or any(peer_matches(p, peer) for p in peers)
    port_ok = ports is None or any(
        p.get("port") == port and p.get("protocol", "TCP") == protocol for p in ports
    )
    return peer_ok and port_ok


def policy_allows(
    policies: list[Manifest], pod: Peer, direction: str, peer: Peer, port: int, protocol: str
) -> bool:
    if pod.namespace != NAMESPACE:
        return True  # only refex's own namespace is governed by these policies
    kind, side = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    governing = [
        p["spec"]
        for p in policies
        if direction in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], pod.labels)
    ]
    if not governing:
        return True
    return any(
        rule_allows(r, side, peer, port, protocol) for p in governing for r in p.get(kind, [])
    )


def connects(overlay: str, source: Peer, target: Peer, port: int, protocol: str = "TCP") -> bool:
    """Whether `source` may open a connection to `target` on `port` under the policies."""
    policies = list(objects_of(overlay, "NetworkPolicy").values())
    egress = source.ip is not None or policy_allows(
        policies, source, "Egress", target, port, protocol
    )
    ingress = target.ip is not None or policy_allows(
        policies, target, "Ingress", source, port, protocol
    )
    return egress and ingress


def refex_pods(overlay: str) -> list[Peer]:
    extra = ["postgres", "redis"] if overlay == "dev" else []
    return [refex_pod(name) for name in [*SERVICE_NAMES, "migrate", *extra]]


class TestNetworkPolicies:
    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_everything_is_denied_unless_allowed(self, overlay: str) -> None:
        deny = objects_of(overlay, "NetworkPolicy")["default-deny"]["spec"]
        assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_services_accept_only_the_callers_the_architecture_needs(self, overlay: str) -> None:
        for source in refex_pods(overlay):
            for target in SERVICE_NAMES:
                expected = (source.name, target) in CALLS
                actual = connects(overlay, source, refex_pod(target), DEFAULT_PORTS[target])
                assert actual == expected, f"{source.name} -> {target}"

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_only_the_public_services_take_traffic_from_the_ingress_controller(
        self, overlay: str
    ) -> None:
        reachable = {
            name
            for name in SERVICE_NAMES
            if connects(overlay, INGRESS_CONTROLLER, refex_pod(name), DEFAULT_PORTS[name])
        }
        assert reachable == PUBLIC_SERVICES
        assert not connects(overlay, INGRESS_CONTROLLER, refex_pod("gateway"), 9090)
        assert not connects(overlay, INGRESS_CONTROLLER, refex_pod("web"), 8000)
        assert not connects(overlay, IMPOSTOR, refex_pod("directory"), DEFAULT_PORTS["directory"])

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_only_the_services_and_the_migration_reach_postgresql(self, overlay: str) -> None:
        database = refex_pod("postgres") if overlay == "dev" else MANAGED_DATABASE
        allowed = {p.name for p in refex_pods(overlay) if connects(overlay, p, database, 5432)}
        assert allowed == {*SERVICES_WITH_MIGRATIONS, "migrate"}

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_only_the_gateway_reaches_redis(self, overlay: str) -> None:
        redis = (
            refex_pod("redis")
            if overlay == "dev"
            else Peer("managed-redis", None, ip="198.51.100.8")
        )
        assert {p.name for p in refex_pods(overlay) if connects(overlay, p, redis, 6379)} == {
            "gateway"
        }

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_only_referral_reaches_partner_webhooks_and_never_private_addresses(
        self, overlay: str
    ) -> None:
        assert {p.name for p in refex_pods(overlay) if connects(overlay, p, PARTNER, 443)} == {
            "referral"
        }
        referral = refex_pod("referral")
        assert not connects(overlay, referral, PARTNER, 80)
        assert not connects(overlay, referral, PRIVATE_HOST, 443)
        assert not connects(overlay, referral, METADATA_SERVER, 443)

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_every_pod_resolves_names_through_cluster_dns_only(self, overlay: str) -> None:
        for pod in refex_pods(overlay):
            assert connects(overlay, pod, KUBE_DNS, 53, "UDP")
            assert connects(overlay, pod, KUBE_DNS, 53, "TCP")
            assert not connects(overlay, pod, Peer("public-dns", None, ip="192.0.2.53"), 53, "UDP")
