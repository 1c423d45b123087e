"""deploy/compose.yaml, deploy/Caddyfile, deploy/kubernetes/ and the Dockerfile are not run
here, so they are checked against the code they start: every command is one `leadflow`
accepts, every LEADFLOW_* variable is a setting, the ports they probe and balance to are the
ones the API listens on, the probe paths are routes that answer, the migration runs before the
API and the workers, the production settings are accepted, and no secret is committed.

Rename a command, a setting or a health route and these tests name the file that still uses
the old one.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from leadflow.cli import build_parser
from leadflow.config import Settings
from leadflow.kit.doctor import Status, check_settings
from leadflow.kit.secrets import Keyring, SecretKeyError, generate_key

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
CADDYFILE = DEPLOY / "Caddyfile"
KUBERNETES = DEPLOY / "kubernetes"
DOCKERFILE = ROOT / "Dockerfile"

ENV_PREFIX = str(Settings.model_config.get("env_prefix", ""))
# Every variable leadflow reads, from the settings themselves: a renamed field drops its old name.
SETTING_NAMES = {f"{ENV_PREFIX}{name}".upper() for name in Settings.model_fields}
PLACEHOLDER = "REPLACE_ME"
# In a container the API must listen on every interface, or neither proxy nor probe reaches it.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
# What the roles must be in both deployments.
REPLICAS = {"api": 2, "worker": 2}


# --- reading the files -------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def manifest_files() -> list[Path]:
    """The Kubernetes objects (kustomization.yaml is kustomize's own file)."""
    return sorted(p for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in manifest_files():
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                docs.append((path, doc))
    return docs


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _path, doc in manifests() if doc.get("kind") == kind]


def dockerfile_env() -> dict[str, str]:
    """The ENV of the Dockerfile (``KEY=value`` pairs, continued lines joined)."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def dockerfile_cmd() -> list[str]:
    match = re.search(r"^CMD\s+(\[.*\])\s*$", DOCKERFILE.read_text(encoding="utf-8"), re.M)
    assert match, "the Dockerfile has no exec-form CMD"
    command: list[str] = yaml.safe_load(match.group(1))
    return command


# --- commands ----------------------------------------------------------------------------


def parse_command(command: list[str], where: str) -> argparse.Namespace:
    """``command`` as leadflow's own parser reads it; a clear failure when it does not."""
    assert command and command[0] == "leadflow", f"{where}: {command} does not run leadflow"
    try:
        return build_parser().parse_args(command[1:])
    except SystemExit:
        pytest.fail(f"{where}: `{' '.join(command)}` is not a command leadflow accepts")


def is_leadflow(service: dict[str, Any]) -> bool:
    return "build" in service or str(service.get("image", "")).startswith("leadflow")


def compose_role(name: str, service: dict[str, Any]) -> str:
    command = service.get("command") or dockerfile_cmd()
    if isinstance(command, str):
        command = shlex.split(command)
    return str(parse_command(command, f"compose service {name}").command)


def compose_replicas(service: dict[str, Any]) -> int:
    return int(service.get("deploy", {}).get("replicas", 1))


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"]["template"]["spec"]
    found: list[dict[str, Any]] = spec.get("initContainers", []) + spec["containers"]
    return found


def main_container(doc: dict[str, Any]) -> dict[str, Any]:
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    return container


def kube_role(container: dict[str, Any], where: str) -> str:
    command = [*container.get("command", []), *container.get("args", [])] or dockerfile_cmd()
    return str(parse_command(command, where).command)


def deployment_file(role: str) -> tuple[Path, dict[str, Any]]:
    found = [
        (path, doc)
        for path, doc in manifests()
        if doc["kind"] == "Deployment"
        and kube_role(main_container(doc), doc["metadata"]["name"]) == role
    ]
    assert len(found) == 1, f"deploy/kubernetes/ has {len(found)} Deployments running `{role}`"
    return found[0]


def deployment_for(role: str) -> dict[str, Any]:
    return deployment_file(role)[1]


def test_the_image_runs_a_real_command():
    parse_command(dockerfile_cmd(), "Dockerfile CMD")


def test_compose_runs_real_commands_with_two_apis_and_two_workers():
    counts: dict[str, int] = {}
    for name, service in services().items():
        if is_leadflow(service):
            role = compose_role(name, service)
            counts[role] = counts.get(role, 0) + compose_replicas(service)
    assert counts == {"migrate": 1, **REPLICAS}, counts


def test_kubernetes_runs_real_commands_with_a_deployment_per_role():
    for path, doc in manifests():
        if doc["kind"] in ("Deployment", "Job"):
            for container in containers(doc):
                kube_role(container, f"{path.name} container {container['name']}")
    for role, replicas in REPLICAS.items():
        assert deployment_for(role)["spec"]["replicas"] == replicas, role
    (job,) = of_kind("Job")
    assert [kube_role(c, "migrate Job") for c in containers(job)] == ["migrate"]
    assert job["spec"].get("parallelism", 1) == 1  # two migrations at once would conflict


# --- settings ----------------------------------------------------------------------------


def compose_environments() -> Iterator[tuple[str, dict[str, str]]]:
    for name, service in services().items():
        if is_leadflow(service):
            environment = service.get("environment", {})
            if isinstance(environment, list):
                environment = dict(item.partition("=")[::2] for item in environment)
            yield name, {key: str(value) for key, value in environment.items()}


def kube_variables() -> Iterator[tuple[str, str]]:
    """(where, name) of every variable the manifests set."""
    for path, doc in manifests():
        if doc["kind"] == "ConfigMap":
            for key in doc.get("data", {}):
                yield f"{path.name} ConfigMap", key
        elif doc["kind"] == "Secret":
            for key in {**doc.get("stringData", {}), **doc.get("data", {})}:
                yield f"{path.name} Secret", key
        elif doc["kind"] in ("Deployment", "Job"):
            for container in containers(doc):
                for variable in container.get("env", []):
                    yield f"{path.name} container {container['name']}", variable["name"]


def unknown(variables: Iterator[tuple[str, str]]) -> list[str]:
    return sorted(
        f"{where}: {name}"
        for where, name in variables
        if name.startswith(ENV_PREFIX) and name not in SETTING_NAMES
    )


def test_every_leadflow_variable_is_a_setting():
    variables = [
        *((f"compose service {svc}", key) for svc, env in compose_environments() for key in env),
        *kube_variables(),
        *(("Dockerfile ENV", key) for key in dockerfile_env()),
    ]
    assert len(variables) > 20, "the deploy files were not read"
    assert unknown(iter(variables)) == [], "not fields of leadflow.config.Settings (renamed?)"


INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")
# What an operator puts in deploy/.env (see deploy/.env.example).
OPERATOR_ENV = {
    "POSTGRES_PASSWORD": "pw0123456789",
    "LEADFLOW_SECRET_KEY": generate_key(),
    "LEADFLOW_ADMIN_TOKEN": "a" * 32,
}


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}``."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if kind and kind.endswith("?"):
            assert name in env, f"compose requires {name}, which deploy/.env.example lacks"
            return env[name]
        return env.get(name, rest or "")

    return INTERPOLATION.sub(one, value)


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as a process started with exactly ``env`` reads them."""
    with monkeypatch.context() as patch:
        for name in SETTING_NAMES:
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        return Settings()


def env_example() -> dict[str, str]:
    lines = (DEPLOY / ".env.example").read_text(encoding="utf-8").splitlines()
    return dict(
        line.partition("=")[::2] for line in lines if "=" in line and not line.startswith("#")
    )


def test_compose_secrets_come_from_the_operator_and_production_accepts_them(monkeypatch):
    example = env_example()
    for name, env in compose_environments():
        for secret in ("LEADFLOW_SECRET_KEY", "LEADFLOW_DATABASE_URL", "LEADFLOW_ADMIN_TOKEN"):
            if secret in env:
                # Required from the operator (`${VAR:?…}`): no value, no default, in the file.
                required = [m[0] for m in INTERPOLATION.findall(env[secret]) if m[1] == ":?"]
                assert required, f"compose service {name}: {secret} is not taken from deploy/.env"
                assert all(var in example for var in required), (name, required)
        resolved = {key: interpolate(value, OPERATOR_ENV) for key, value in env.items()}
        settings = settings_from(resolved, monkeypatch)  # refuses insecure production settings
        assert settings.environment == "production", name
        assert make_url(settings.database_url).get_backend_name() == "postgresql", name
    # The example leaves every secret empty, which compose refuses.
    assert {example[name] for name in OPERATOR_ENV} == {""}


def secret_values() -> dict[str, str]:
    (secret,) = of_kind("Secret")
    assert "data" not in secret, "the Secret template holds encoded values"
    values: dict[str, str] = secret["stringData"]
    return values


def config_values() -> dict[str, str]:
    (config,) = of_kind("ConfigMap")
    return {key: str(value) for key, value in config["data"].items()}


def test_kubernetes_secret_is_a_template_that_leadflow_refuses(monkeypatch):
    values = secret_values()
    assert {"LEADFLOW_SECRET_KEY", "LEADFLOW_DATABASE_URL"} <= set(values)
    for name, value in values.items():
        assert PLACEHOLDER in value, f"Secret {name} holds a value, not a placeholder"
        # Nothing key-like beside the placeholders: no long random-looking token.
        for token in re.findall(r"[A-Za-z0-9+/=_-]{20,}", value.replace(PLACEHOLDER, " ")):
            pytest.fail(f"Secret {name} holds {token[:6]}…, which looks like a real secret")
    with pytest.raises(SecretKeyError):
        Keyring.from_text(values["LEADFLOW_SECRET_KEY"])
    assert make_url(values["LEADFLOW_DATABASE_URL"]).password == PLACEHOLDER
    # Applied as it is, production refuses to start (a too short admin token).
    if "LEADFLOW_ADMIN_TOKEN" in values:
        with pytest.raises(ValidationError):
            settings_from({**config_values(), **values}, monkeypatch)


def test_kubernetes_settings_filled_in_are_accepted_in_production(monkeypatch):
    filled = {
        **secret_values(),
        "LEADFLOW_SECRET_KEY": generate_key(),
        "LEADFLOW_ADMIN_TOKEN": "a" * 32,
    }
    settings = settings_from({**config_values(), **filled}, monkeypatch)
    assert settings.environment == "production"
    assert make_url(settings.database_url).get_backend_name() == "postgresql"
    # And `leadflow doctor` (the workers' init container) finds nothing unsafe in them.
    assert [c.line() for c in check_settings(settings) if c.status == Status.FAIL] == []


def test_kubernetes_references_its_own_config_and_secret():
    names = {(doc["kind"], doc["metadata"]["name"]) for _path, doc in manifests()}
    for path, doc in manifests():
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        for container in containers(doc):
            sources = container.get("envFrom", [])
            refs = {
                ("ConfigMap", s["configMapRef"]["name"]) for s in sources if "configMapRef" in s
            }
            refs |= {("Secret", s["secretRef"]["name"]) for s in sources if "secretRef" in s}
            assert len(refs) == 2 and refs <= names, (path.name, container["name"], refs)


def test_kustomization_lists_every_manifest_but_the_secret_template():
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert all((KUBERNETES / name).is_file() for name in listed), listed
    # Applying the template at each release would put placeholders over the real values.
    expected = {p.name for p in manifest_files()} - {"secret.yaml"}
    assert listed == expected


# --- ports, probes and the proxy ---------------------------------------------------------


def api_port_and_host(command: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Where ``leadflow api`` listens: its --port/--host, else LEADFLOW_PORT/LEADFLOW_HOST
    (the image's included), else the settings' defaults, as cli._serve decides."""
    args = parse_command(command, "api")
    env = {**dockerfile_env(), **env}
    fields = Settings.model_fields
    port = args.port or int(env.get(f"{ENV_PREFIX}PORT") or fields["port"].default)
    host = args.host or env.get(f"{ENV_PREFIX}HOST") or fields["host"].default
    return port, str(host)


def url_in(check: list[str]) -> tuple[int, str]:
    match = re.search(r"http://127\.0\.0\.1:(\d+)(/[\w/]*)", " ".join(check))
    assert match, f"healthcheck {check} requests no local URL"
    return int(match.group(1)), match.group(2)


def compose_api_services() -> dict[str, tuple[int, dict[str, Any]]]:
    found = {}
    environments = dict(compose_environments())
    for name, service in services().items():
        if is_leadflow(service) and compose_role(name, service) == "api":
            port, host = api_port_and_host(service["command"], environments[name])
            assert host == ALL_INTERFACES, f"compose service {name} listens on {host}: unreachable"
            found[name] = (port, service)
    return found


def caddy_directive(name: str) -> list[list[str]]:
    text = CADDYFILE.read_text(encoding="utf-8")
    lines = [line.split("#", 1)[0].split() for line in text.splitlines()]
    return [line[1:] for line in lines if line and line[0] == name]


def compose_probe_paths() -> set[str]:
    paths = set()
    for name, (port, service) in compose_api_services().items():
        check_port, path = url_in(service["healthcheck"]["test"])
        assert check_port == port, f"compose {name} checks port {check_port}, listens on {port}"
        paths.add(path)
    paths |= {args[0] for args in caddy_directive("health_uri")}
    return paths


def test_the_proxy_balances_to_every_api_replica_on_its_port():
    apis = compose_api_services()
    (proxy,) = caddy_directive("reverse_proxy")
    upstreams = [arg for arg in proxy if arg != "{"]
    expected = {f"{name}:{port}" for name, (port, _s) in apis.items()}
    assert set(upstreams) == expected, f"the proxy balances to {upstreams}, not {expected}"
    assert len(upstreams) == REPLICAS["api"]
    mounts = services()["proxy"]["volumes"]
    assert any(m.startswith("./Caddyfile:") for m in mounts), mounts
    assert {"api-1", "api-2"} <= set(services()["proxy"]["depends_on"])


def test_compose_workers_send_to_the_mail_catcher_and_use_the_database_service():
    all_services = services()
    postgres = all_services["postgres"]["environment"]
    for name, env in compose_environments():
        url = make_url(interpolate(env["LEADFLOW_DATABASE_URL"], OPERATOR_ENV))
        assert (url.host, url.port or 5432) == ("postgres", 5432), name
        assert (url.username, url.database) == (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"])
        if compose_role(name, all_services[name]) == "worker":
            smtp = urlsplit(env["LEADFLOW_SMTP_URL"])
            assert smtp.hostname in all_services, f"{name} sends mail to {smtp.hostname}"
            assert "mailpit" in all_services[smtp.hostname]["image"]
            assert smtp.port == 1025  # Mailpit's SMTP port


def test_compose_metrics_port_is_the_one_checked_and_exposed():
    for name, env in compose_environments():
        if compose_role(name, services()[name]) == "worker":
            port = int(env[f"{ENV_PREFIX}METRICS_PORT"])
            check = " ".join(services()[name]["healthcheck"]["test"])
            assert f"'127.0.0.1', {port}" in check, check
            assert str(port) in services()[name]["expose"]


def grace_seconds(env: dict[str, str]) -> float:
    value = env.get(f"{ENV_PREFIX}SHUTDOWN_GRACE_SECONDS")
    return float(value) if value else float(Settings.model_fields["shutdown_grace_seconds"].default)


def test_compose_migration_runs_before_the_api_and_the_workers():
    all_services = services()
    migrations = [
        n for n, s in all_services.items() if is_leadflow(s) and compose_role(n, s) == "migrate"
    ]
    assert migrations == ["migrate"]
    assert all_services["migrate"]["restart"] == "no"  # one-shot
    assert all_services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in all_services["postgres"]
    for name, service in all_services.items():
        if is_leadflow(service) and compose_role(name, service) in REPLICAS:
            depends = service["depends_on"]
            assert depends["migrate"]["condition"] == "service_completed_successfully", name
            assert depends["postgres"]["condition"] == "service_healthy", name
            # A stopped worker finishes its sends within the grace before it is killed.
            stop = int(str(service["stop_grace_period"]).rstrip("s"))
            assert stop > grace_seconds(dict(compose_environments())[name]), name


def resolve_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    return int(number)


def test_kubernetes_probes_services_and_ports_meet_where_the_api_listens():
    api = deployment_for("api")
    container = main_container(api)
    env = {**config_values(), **{v["name"]: v["value"] for v in container.get("env", [])}}
    port, host = api_port_and_host(container["command"] + container.get("args", []), env)
    assert host == ALL_INTERFACES, f"the API listens on {host}: unreachable"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        probed = resolve_port(container, container[probe]["httpGet"]["port"])
        assert probed == port, f"{probe} on port {probed}, the API listens on {port}"
    # Readiness gates traffic on the database (and the migration); liveness never does.
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", "liveness"
    selector = api["spec"]["selector"]["matchLabels"]
    services_to_api = [
        s for s in of_kind("Service") if s["spec"]["selector"].items() <= selector.items()
    ]
    assert services_to_api, "no Service selects the API pods"
    for service in services_to_api:
        for p in service["spec"]["ports"]:
            target = resolve_port(container, p["targetPort"])
            assert target == port, f"Service {service['metadata']['name']} targets port {target}"
    assert api["spec"]["template"]["metadata"]["labels"].items() >= selector.items()


def test_kubernetes_metrics_port_is_declared_annotated_and_probed():
    port = int(config_values()[f"{ENV_PREFIX}METRICS_PORT"])
    for role in REPLICAS:
        deployment = deployment_for(role)
        container = main_container(deployment)
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", role
        assert int(annotations["prometheus.io/port"]) == port, role
        assert resolve_port(container, "metrics") == port, role
    worker = main_container(deployment_for("worker"))
    assert resolve_port(worker, worker["livenessProbe"]["tcpSocket"]["port"]) == port


def test_kubernetes_migration_comes_before_the_workers_take_work():
    """The Job migrates; an API pod is not ready before the schema is at its head (/readyz,
    tests/api/test_health.py), and a worker waits in an init container that checks it."""
    worker = deployment_for("worker")
    init = worker["spec"]["template"]["spec"].get("initContainers", [])
    assert [kube_role(c, "worker init container") for c in init] == ["doctor"]
    grace = grace_seconds(config_values())
    termination = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert termination > grace, f"killed after {termination} s, its sends may take {grace} s"


def test_kubernetes_resources_are_requested_and_sized_from_the_benchmarks():
    for path, doc in manifests():
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        for container in containers(doc):
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), (path.name, container)
            assert "memory" in resources.get("limits", {}), (path.name, container["name"])
    for role in REPLICAS:
        path, _doc = deployment_file(role)
        assert "bench/RESULTS.md" in path.read_text(), f"{path.name}: where do its sizes come from?"


def test_compose_and_kubernetes_hold_no_secret_value():
    for name, env in compose_environments():
        for key, value in env.items():
            literal = INTERPOLATION.sub(" ", value)
            for token in re.findall(r"[A-Za-z0-9+/=_-]{24,}", literal):
                pytest.fail(f"compose service {name} {key} holds {token[:6]}…: a secret?")
    for path in [*manifest_files(), DOCKERFILE, CADDYFILE, DEPLOY / ".env.example"]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\b(lf|whsec)_[A-Za-z0-9_-]{8,}", text), path.name


async def test_every_probe_path_answers_on_a_migrated_database(client):
    kube_paths = {
        probe["httpGet"]["path"]
        for _path, doc in manifests()
        if doc["kind"] == "Deployment"
        for container in containers(doc)
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
        if "httpGet" in (probe := container.get(kind, {}))
    }
    paths = compose_probe_paths() | kube_paths
    assert {"/healthz", "/readyz"} <= paths
    for path in sorted(paths):
        response = await client.get(path)
        assert response.status_code == 200, f"probe path {path}: {response.status_code}"
