"""Static checks of docker-compose.yml, the Dockerfile and .dockerignore (no Docker engine needed).

The compose file is parsed with PyYAML and validated against the Compose Specification JSON schema;
then the pieces are checked against each other and against the project: services named in
`depends_on` exist and can satisfy their condition, built services use the Dockerfile that exists and
run real `encore` subcommands, published ports do not collide, named volumes are declared, only
ENCORE_* settings that encore/settings.py names are used and they point at services of the file.
The production extras are checked the same way: API replicas sit behind the nginx proxy, whose
config forwards to them; Prometheus scrapes what the services serve (every API replica, each flow
process's Bytewax port); Grafana is provisioned with Prometheus and the dashboard; every config file
mounted from the repository exists. The hardening is checked too: every long-running service has a
healthcheck, published ports bind loopback unless the operator opts in (ENCORE_PUBLISH_ADDR), every
image is pinned to an exact version, the secrets (API keys, Grafana's password, the scrape key)
are compose secrets kept out of git, and Alertmanager receives the alert rules.

Schema: $ENCORE_COMPOSE_SCHEMA if set (it must exist), else ../shared/data/compose-spec/ next to the
repository, else the copy vendored in tests/fixtures/ (see tests/fixtures/README.md).
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import importlib.util
import json
import os
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema  # the dev extra
import pytest
import yaml  # PyYAML, the dev extra

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
PYPROJECT = REPO_ROOT / "pyproject.toml"

SCHEMA_ENV = "ENCORE_COMPOSE_SCHEMA"
SHARED_SCHEMA = REPO_ROOT.parent / "shared" / "data" / "compose-spec" / "compose-spec.json"
VENDORED_SCHEMA = REPO_ROOT / "tests" / "fixtures" / "compose-spec.json"

ENTRYPOINT = "encore"
BASE_IMAGE = "python:3.11.11-slim-bookworm"

# The subcommands of encore/cli.py, mirrored here: a name maps to its own subcommands (empty when it
# takes none). Used only when encore.cli cannot be imported or has no build_parser().
FALLBACK_SUBCOMMANDS: dict[str, dict] = {
    "topics": {"create": {}},
    "flow": {},
    "serve": {},
    "catalog": {"load": {}},
    "up": {},
    "simulate": {},
}

# The settings Encore reads from the environment, mirrored from encore/settings.py (the one module
# that names them); used only when that file cannot be found.
FALLBACK_SETTINGS = frozenset(
    {
        "ENCORE_KAFKA_BOOTSTRAP",
        "ENCORE_REDIS_URL",
        "ENCORE_NAMESPACE",
        "ENCORE_PARTITIONS",
        "ENCORE_DATA_DIR",
        "ENCORE_LOG_LEVEL",
    }
)

COMPOSE_ONLY_VARIABLES = frozenset({"ENCORE_PUBLISH_ADDR"})
"""ENCORE_* names that only docker-compose.yml interpolates (never a process's setting)."""

LOOPBACK_ADDRESSES = frozenset({"127.0.0.1", "::1", "[::1]", "localhost"})
PINNED_IMAGE = re.compile(r"^[\w./-]+(:v?\d+\.\d+\.\d+(?:[-.][\w.-]+)?)?(@sha256:[0-9a-f]{64})?$")
"""An image named by an exact version (major.minor.patch, maybe with a variant) or a digest."""

SECRETS_DIR = REPO_ROOT / "deploy" / "secrets"
ALERTMANAGER_FILE = REPO_ROOT / "deploy" / "alertmanager.yml"

# `encore up` starts its own embedded broker and redis-server: local development only.
LOCAL_ONLY_SUBCOMMANDS = frozenset({"up"})

_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?[-?+](?P<default>[^}]*))?\}")
_ENCORE_VARIABLE = re.compile(r"\$\{?(ENCORE_[A-Z0-9_]+)")


# ---- loading -------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys in one mapping, as Compose does (merge keys allowed)."""


def _construct_mapping_without_duplicates(loader: _StrictLoader, node: Any) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping_without_duplicates
)


@functools.cache
def _compose_text() -> str:
    return COMPOSE_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    document = yaml.load(_compose_text(), Loader=_StrictLoader)  # a SafeLoader subclass
    assert isinstance(document, dict), "docker-compose.yml must be a mapping"
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose.get("services")
    assert isinstance(found, dict) and found, "docker-compose.yml defines no services"
    return found


def schema_path() -> Path:
    override = os.environ.get(SCHEMA_ENV)
    if override:
        path = Path(override).expanduser()
        assert path.is_file(), f"{SCHEMA_ENV}={override!r} does not name a file"
        return path
    return SHARED_SCHEMA if SHARED_SCHEMA.is_file() else VENDORED_SCHEMA


# ---- the Dockerfile ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int  # index of the FROM this instruction belongs to; -1 before the first FROM


@functools.cache
def dockerfile_instructions() -> tuple[Instruction, ...]:
    """The Dockerfile as instructions: continuations joined, comments and directives dropped."""
    assert DOCKERFILE.is_file(), f"{DOCKERFILE} is missing"
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("#") or (not pending and not line):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        keyword, _, arguments = pending.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, arguments.strip(), stage))
        pending = ""
    assert not pending, "the Dockerfile ends inside a line continuation"
    return tuple(instructions)


def final_stage() -> list[Instruction]:
    instructions = dockerfile_instructions()
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def exec_form(instruction: Instruction) -> list[str]:
    value = json.loads(instruction.arguments)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), instruction
    return value


def only(keyword: str, instructions: list[Instruction]) -> Instruction:
    found = [i for i in instructions if i.keyword == keyword]
    assert found, f"the Dockerfile's final stage has no {keyword}"
    return found[-1]  # the last one wins, as in Docker


def image_healthcheck() -> Instruction | None:
    found = [i for i in final_stage() if i.keyword == "HEALTHCHECK"]
    if not found or found[-1].arguments.upper() == "NONE":
        return None
    return found[-1]


def resolve_from(arguments: str) -> str:
    """The image of a FROM line, its ${ARG}s replaced by the defaults of the global ARGs."""
    defaults = {}
    for instruction in dockerfile_instructions():
        if instruction.keyword == "ARG" and instruction.stage == -1:
            name, _, default = instruction.arguments.partition("=")
            defaults[name.strip()] = default.strip().strip("\"'")
    words = [w for w in arguments.split() if not w.startswith("--")]
    image = words[0]
    return re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), image)


@functools.cache
def known_settings() -> tuple[frozenset[str], str]:
    """The ENCORE_* names encore/settings.py mentions, else FALLBACK_SETTINGS; and the source."""
    try:
        spec = importlib.util.find_spec("encore.settings")
    except ImportError:
        spec = None
    if spec is not None and spec.origin and Path(spec.origin).is_file():
        names = frozenset(re.findall(r"\b(ENCORE_[A-Z0-9_]+)\b", Path(spec.origin).read_text()))
        if names:
            return names, spec.origin
    return FALLBACK_SETTINGS, "the fallback constant"


# ---- the CLI -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cli:
    tree: dict[str, dict]
    parser: argparse.ArgumentParser | None
    source: str


def _subcommand_tree(parser: argparse.ArgumentParser) -> dict[str, dict]:
    tree: dict[str, dict] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                tree[name] = _subcommand_tree(subparser)
    return tree


@functools.cache
def encore_cli() -> Cli:
    """Subcommands from `encore.cli.build_parser()` when it exists, else FALLBACK_SUBCOMMANDS."""
    try:
        from encore import cli as cli_module
    except ImportError as exc:
        return Cli(FALLBACK_SUBCOMMANDS, None, f"fallback constant (encore.cli: {exc})")
    build_parser = getattr(cli_module, "build_parser", None)
    if build_parser is None:
        return Cli(FALLBACK_SUBCOMMANDS, None, "fallback constant (no encore.cli.build_parser)")
    parser = build_parser()
    assert isinstance(parser, argparse.ArgumentParser), "build_parser() must return an ArgumentParser"
    tree = _subcommand_tree(parser)
    assert tree, "encore.cli.build_parser() has no subcommands"
    return Cli(tree, parser, "encore.cli.build_parser()")


def subcommand_path(argv: list[str]) -> list[str]:
    """The subcommand words at the front of argv (e.g. ["topics", "create"])."""
    node = encore_cli().tree
    path: list[str] = []
    for word in argv:
        if not node or word.startswith("-"):
            break
        assert word in node, (
            f"`encore {shlex.join(argv)}`: {word!r} is not a subcommand of "
            f"{shlex.join(['encore', *path])!r}; known: {sorted(node)} (from {encore_cli().source})"
        )
        path.append(word)
        node = node[word]
    assert path, f"`encore {' '.join(argv)}` names no subcommand"
    assert not node, f"`encore {' '.join(argv)}` stops before a subcommand of {path}: {sorted(node)}"
    return path


def check_encore_command(argv: list[str], where: str) -> list[str]:
    """Fail unless argv (the words after `encore`) is a command encore accepts; return its path."""
    path = subcommand_path(argv)
    parser = encore_cli().parser
    if parser is not None:
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"{where}: `encore {shlex.join(argv)}` is refused by encore.cli ({exc})")
    return path


def option_value(argv: list[str], option: str) -> str | None:
    for index, word in enumerate(argv):
        if word == option and index + 1 < len(argv):
            return argv[index + 1]
        if word.startswith(option + "="):
            return word.split("=", 1)[1]
    return None


# ---- compose helpers -----------------------------------------------------------------------------


def builds(service: dict[str, Any]) -> bool:
    return "build" in service


def command_words(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(w) for w in command]


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, None) for item in env)
        return {k: v for k, v in pairs}
    return {str(k): (None if v is None else str(v)) for k, v in env.items()}


def interpolate_defaults(value: str) -> str:
    """The value Compose gives `${NAME:-default}` when NAME is not set in the shell."""
    return _INTERPOLATION.sub(lambda m: m.group("default") or "", value)


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def healthcheck_disabled(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck") or {}
    return check.get("disable") in (True, "true") or check.get("test") in (["NONE"], "NONE")


def has_healthcheck(service: dict[str, Any]) -> bool:
    if healthcheck_disabled(service):
        return False
    if (service.get("healthcheck") or {}).get("test"):
        return True
    return builds(service) and image_healthcheck() is not None


def published_ports(service: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(host_ip, published, target, protocol) of each port the service publishes on the host."""
    found = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            if port.get("published") is not None:
                found.append(
                    (
                        str(port.get("host_ip", "")),
                        str(port["published"]),
                        str(port["target"]),
                        str(port.get("protocol", "tcp")),
                    )
                )
            continue
        spec, _, protocol = str(port).partition("/")
        parts = spec.rsplit(":", 2)
        if len(parts) == 1:  # container port only: Docker picks a free host port
            continue
        host_ip = parts[0] if len(parts) == 3 else ""
        found.append((host_ip, parts[-2], parts[-1], protocol or "tcp"))
    return found


def volume_mounts(service: dict[str, Any]) -> list[tuple[str | None, str]]:
    """(named volume or None for binds/anonymous, target) of each mount."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            named = volume.get("source") if volume.get("type", "volume") == "volume" else None
            mounts.append((named, volume["target"]))
            continue
        parts = str(volume).split(":")
        if len(parts) == 1:
            mounts.append((None, parts[0]))
            continue
        source = parts[0]
        is_named = not source.startswith((".", "/", "~", "$"))
        mounts.append((source if is_named else None, parts[1]))
    return mounts


def bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    """(repository path, target) of each bind mount of a file or directory of this repository."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                mounts.append((COMPOSE_FILE.parent / volume["source"], volume["target"]))
            continue
        parts = str(volume).split(":")
        if len(parts) > 1 and parts[0].startswith("."):
            mounts.append((COMPOSE_FILE.parent / parts[0], parts[1]))
    return mounts


def mounted_file(service: dict[str, Any], target: str) -> Path | None:
    """The repository file mounted at `target` (directly, or inside a mounted directory)."""
    for source, mount_target in bind_mounts(service):
        if target == mount_target:
            return source
        if target.startswith(mount_target.rstrip("/") + "/"):
            return source / target[len(mount_target.rstrip("/")) + 1:]
    return None


def proxy_upstreams(services: dict[str, dict[str, Any]]) -> set[str]:
    """`host:port` of every upstream server in an nginx config some service mounts."""
    found: set[str] = set()
    for service in services.values():
        config = mounted_file(service, "/etc/nginx/nginx.conf")
        if config is not None and config.is_file():
            found |= set(re.findall(r"^\s*server\s+([\w.-]+:\d+)", config.read_text(), re.MULTILINE))
    return found


def encore_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    built = {name: s for name, s in services.items() if builds(s)}
    assert built, "no service is built from the Dockerfile"
    return built


# ---- the compose file ----------------------------------------------------------------------------


def test_compose_has_no_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose, "the Compose Specification has no top-level `version:`"


def test_compose_matches_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    path = schema_path()
    schema = json.loads(path.read_text(encoding="utf-8"))
    # The spec declares draft-07 as "https://json-schema.org/draft-07/schema", a spelling jsonschema
    # does not look up (it would warn and fall back to its latest draft).
    if "draft-07" in schema.get("$schema", ""):
        validator_class = jsonschema.Draft7Validator
    else:
        validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, f"docker-compose.yml does not match {path}:\n" + "\n".join(
        f"  at {'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors
    )


def test_expected_services(services: dict[str, dict[str, Any]]) -> None:
    assert {"kafka", "redis", "topics", "flow", "api"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["redis"]["image"].startswith("redis:")


def test_depends_on_targets_exist_and_can_satisfy_their_condition(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            assert target in services, f"{name} depends on {target!r}, which is not a service"
            assert target != name, f"{name} depends on itself"
            if condition == "service_healthy":
                assert has_healthcheck(services[target]), (
                    f"{name} waits for {target} to be healthy, but {target} has no healthcheck"
                )
            if condition == "service_completed_successfully":
                assert services[target].get("restart", "no") == "no", (
                    f"{name} waits for {target} to complete, so {target} must not restart"
                )


def test_depends_on_has_no_cycle(services: dict[str, dict[str, Any]]) -> None:
    done: set[str] = set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        assert name not in trail, f"depends_on cycle: {' -> '.join((*trail, name))}"
        if name in done:
            return
        for target in depends_on(services.get(name, {})):
            visit(target, (*trail, name))
        done.add(name)

    for name in services:
        visit(name, ())


def test_built_services_use_the_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    for name, service in encore_services(services).items():
        build = service["build"]
        if isinstance(build, str):
            context, dockerfile = build, "Dockerfile"
        else:
            context, dockerfile = build.get("context", "."), build.get("dockerfile", "Dockerfile")
        context_dir = (COMPOSE_FILE.parent / context).resolve()
        assert context_dir.is_dir(), f"{name}: build context {context!r} is not a directory"
        assert (context_dir / dockerfile).resolve() == DOCKERFILE.resolve(), (
            f"{name}: builds {context_dir / dockerfile}, not the project's Dockerfile"
        )
        assert "entrypoint" not in service, f"{name}: keep the image's ENTRYPOINT [{ENTRYPOINT!r}]"


def test_built_services_run_encore_subcommands(services: dict[str, dict[str, Any]]) -> None:
    for name, service in encore_services(services).items():
        argv = command_words(service)
        assert argv, f"{name}: say which `encore` subcommand it runs"
        path = check_encore_command(argv, f"service {name}")
        assert path[0] not in LOCAL_ONLY_SUBCOMMANDS, f"{name}: `encore {path[0]}` is local-only"


def test_the_expected_commands(services: dict[str, dict[str, Any]]) -> None:
    assert command_words(services["topics"])[:2] == ["topics", "create"]
    assert command_words(services["flow"])[:1] == ["flow"]
    assert command_words(services["api"])[:1] == ["serve"]
    assert services["topics"].get("restart", "no") == "no"
    assert services["flow"].get("restart") == "unless-stopped"
    assert services["api"].get("restart") == "unless-stopped"
    assert depends_on(services["topics"]) == {"kafka": "service_healthy"}
    assert depends_on(services["flow"]) == {
        "topics": "service_completed_successfully",
        "redis": "service_healthy",
    }
    assert depends_on(services["api"]) == {"redis": "service_healthy", "kafka": "service_healthy"}


def test_only_the_api_keeps_the_images_http_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    """The image's HEALTHCHECK calls /healthz: a service that does not serve HTTP must turn it off."""
    if image_healthcheck() is None:
        pytest.skip("the image has no HEALTHCHECK")
    for name, service in encore_services(services).items():
        serves = subcommand_path(command_words(service))[0] == "serve"
        own_test = (service.get("healthcheck") or {}).get("test")
        if not serves and not own_test:
            assert healthcheck_disabled(service), (
                f"{name} runs no HTTP server: disable the image's /healthz healthcheck"
            )


def test_serving_ports_agree(services: dict[str, dict[str, Any]]) -> None:
    """`serve --port` = the published container port (or the port the proxy forwards to) = the port
    the image's healthcheck calls."""
    check = image_healthcheck()
    check_port = re.search(r":(\d+)/healthz", check.arguments).group(1) if check else None
    for name, service in encore_services(services).items():
        argv = command_words(service)
        if subcommand_path(argv)[0] != "serve":
            continue
        port = option_value(argv, "--port")
        assert port, f"{name}: give `serve` an explicit --port"
        targets = {target for _, _, target, _ in published_ports(service)}
        proxied = f"{name}:{port}" in proxy_upstreams(services)
        assert port in targets or proxied, (
            f"{name}: serves on {port} but neither publishes it ({sorted(targets)}) nor sits behind "
            "the proxy")
        if check_port and not (service.get("healthcheck") or {}).get("test"):
            assert port == check_port, f"{name}: serves on {port}, healthcheck calls {check_port}"
        assert option_value(argv, "--host") == "0.0.0.0", f"{name}: bind 0.0.0.0 in a container"


def test_published_ports_are_unique(services: dict[str, dict[str, Any]]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for name, service in services.items():
        for _, published, _, protocol in published_ports(service):
            key = (published, protocol)
            assert key not in seen, f"{name} and {seen[key]} both publish {published}/{protocol}"
            seen[key] = name
    assert ("8000", "tcp") in seen, "the API is published on 8000"


def test_named_volumes_are_declared(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in services.items():
        for volume, _ in volume_mounts(service):
            if volume is not None:
                assert volume in declared, f"{name} mounts volume {volume!r}, not declared"
                used.add(volume)
    assert declared <= used, f"declared but unused volumes: {sorted(declared - used)}"
    for name in ("kafka", "redis", "flow"):
        assert any(v for v, _ in volume_mounts(services[name])), f"{name} keeps no named volume"


def test_encore_settings_are_known(services: dict[str, dict[str, Any]]) -> None:
    used = set(_ENCORE_VARIABLE.findall(_compose_text()))
    for service in services.values():
        used |= {key for key in environment(service) if key.startswith("ENCORE_")}
    for instruction in dockerfile_instructions():
        if instruction.keyword in ("ENV", "ARG"):
            used |= set(re.findall(r"\b(ENCORE_[A-Z0-9_]+)\b", instruction.arguments))
    known, source = known_settings()
    unknown = used - known - COMPOSE_ONLY_VARIABLES
    assert not unknown, f"unknown ENCORE_* settings: {sorted(unknown)} (known from {source})"
    for name, service in services.items():
        misplaced = COMPOSE_ONLY_VARIABLES & set(environment(service))
        assert not misplaced, f"{name}: {sorted(misplaced)} are compose interpolation only, not settings"


def test_encore_settings_point_inside_the_stack(services: dict[str, dict[str, Any]]) -> None:
    for name, service in encore_services(services).items():
        env = {k: interpolate_defaults(v or "") for k, v in environment(service).items()}
        for required in ("ENCORE_KAFKA_BOOTSTRAP", "ENCORE_REDIS_URL"):
            assert env.get(required), f"{name}: {required} is not set"

        for address in env["ENCORE_KAFKA_BOOTSTRAP"].split(","):
            host, _, port = address.strip().rpartition(":")
            assert host in services, f"{name}: Kafka bootstrap host {host!r} is not a service"
            advertised = environment(services[host]).get("KAFKA_ADVERTISED_LISTENERS") or ""
            assert f"//{host}:{port}" in advertised, (
                f"{name}: {address} is not a listener {host} advertises ({advertised})"
            )

        redis_url = urlsplit(env["ENCORE_REDIS_URL"])
        assert redis_url.scheme in ("redis", "rediss"), env["ENCORE_REDIS_URL"]
        assert redis_url.hostname in services, f"{name}: Redis host {redis_url.hostname!r}"

        if "ENCORE_PARTITIONS" in env:
            assert env["ENCORE_PARTITIONS"].isdigit() and int(env["ENCORE_PARTITIONS"]) > 0

    flow_env = environment(services["flow"])
    data_dir = flow_env.get("ENCORE_DATA_DIR")
    assert data_dir, "flow: ENCORE_DATA_DIR is not set"
    targets = {target for volume, target in volume_mounts(services["flow"]) if volume}
    assert interpolate_defaults(data_dir) in targets, (
        f"flow: ENCORE_DATA_DIR={data_dir} is not on a named volume ({sorted(targets)})"
    )


def test_kafka_is_a_single_kraft_node(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node_id = env["KAFKA_NODE_ID"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{node_id}@")
    assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"]
    assert "PLAINTEXT://:9092" in env["KAFKA_LISTENERS"]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    log_dirs = env.get("KAFKA_LOG_DIRS")
    assert log_dirs in {t for v, t in volume_mounts(services["kafka"]) if v}, (
        "kafka: KAFKA_LOG_DIRS must be on the named volume"
    )
    test = services["kafka"]["healthcheck"]["test"]
    assert "kafka-topics.sh --bootstrap-server localhost:9092 --list" in " ".join(test)


def test_redis_persists(services: dict[str, dict[str, Any]]) -> None:
    assert command_words(services["redis"])[-2:] == ["--appendonly", "yes"]
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])


# ---- the Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_base_image() -> None:
    for instruction in dockerfile_instructions():
        if instruction.keyword == "FROM":
            image = resolve_from(instruction.arguments)
            assert image == BASE_IMAGE, f"FROM {instruction.arguments} resolves to {image}"


def test_dockerfile_entrypoint_is_encore() -> None:
    assert exec_form(only("ENTRYPOINT", final_stage())) == [ENTRYPOINT]


def test_dockerfile_default_command_is_a_real_subcommand() -> None:
    argv = exec_form(only("CMD", final_stage()))
    path = check_encore_command(argv, "Dockerfile CMD")
    assert path == ["serve"], "the image serves the API by default"


def test_dockerfile_installs_the_project_with_pip_and_no_extras() -> None:
    runs = [i.arguments for i in dockerfile_instructions() if i.keyword == "RUN"]
    project_install = re.compile(r"\bpip install\b(?:\s+-{1,2}[\w-]+(?:=\S+)?)*\s+\.(?=\s|$|;|&)")
    assert any(project_install.search(run) for run in runs), "no `pip install .` in the Dockerfile"
    for run in runs:
        assert not re.search(r"pip install\b[^;&]*\s['\"]?\.\[", run), (
            f"the image takes runtime dependencies only, not an extra: {run}"
        )


def test_dockerfile_runs_as_a_non_root_user() -> None:
    user = only("USER", final_stage()).arguments.split(":")[0]
    assert user not in ("root", "0"), "the image must not run as root"


def test_dockerfile_healthcheck_uses_python_and_healthz() -> None:
    check = image_healthcheck()
    assert check is not None, "the image has no HEALTHCHECK"
    assert "/healthz" in check.arguments
    assert re.search(r"\bCMD\s+\[\s*\"python", check.arguments), "use the Python stdlib"
    assert not re.search(r"\b(curl|wget)\b", check.arguments), "slim images have no curl or wget"
    exposes = [i.arguments for i in final_stage() if i.keyword == "EXPOSE"]
    exposed = {port.split("/")[0] for ports in exposes for port in ports.split()}
    port = re.search(r":(\d+)/healthz", check.arguments).group(1)
    assert port in exposed, f"the healthcheck calls port {port}, the image exposes {exposed}"
    cmd_port = option_value(exec_form(only("CMD", final_stage())), "--port")
    assert cmd_port == port, f"CMD serves on {cmd_port}, the healthcheck calls {port}"


def test_dockerignore_keeps_what_pip_install_needs() -> None:
    assert DOCKERIGNORE.is_file(), ".dockerignore is missing"
    patterns = [
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#") and not line.startswith("!")
    ]
    pyproject = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    needed = {"pyproject.toml", str(pyproject["project"].get("readme", "README.md"))}
    needed |= {p.rstrip("*").rstrip(".") for p in packages}
    for name in sorted(needed):
        excluded = [p for p in patterns if fnmatch.fnmatch(name, p.removeprefix("/"))]
        assert not excluded, f".dockerignore drops {name} (pattern {excluded}), `pip install .` needs it"
    for name in (".git", ".venv"):
        assert any(fnmatch.fnmatch(name, p) for p in patterns), f".dockerignore should drop {name}"


def test_cli_source() -> None:
    """Reports where the subcommand names came from; skips while encore.cli cannot tell."""
    cli = encore_cli()
    if cli.parser is None:
        pytest.skip(f"subcommands checked against {cli.source}")
    assert {"topics", "flow", "serve"} <= set(cli.tree)


# ---- the production extras: proxy, Prometheus, Grafana ---------------------------------------------

FLOW_METRICS_BASE_PORT = 3030
"""Bytewax's dataflow API port of process 0; process i serves on base + i (encore/bytewax_api.py)."""


def test_bind_mounted_files_exist_in_the_repository(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for source, target in bind_mounts(service):
            assert source.exists(), f"{name} mounts {source.relative_to(REPO_ROOT)} at {target}: missing"


def test_api_replicas_sit_behind_one_proxy_port(services: dict[str, dict[str, Any]]) -> None:
    api = services["api"]
    replicas = (api.get("deploy") or {}).get("replicas", 1)
    assert replicas >= 2, "run more than one API replica"
    assert not published_ports(api), "replicas cannot share a published host port: publish the proxy"
    assert "container_name" not in api, "a container_name allows one replica only"
    assert "api:8000" in proxy_upstreams(services)
    proxies = [n for n, s in services.items() if mounted_file(s, "/etc/nginx/nginx.conf")]
    assert proxies == ["proxy"]
    proxy = services["proxy"]
    assert [p[1:3] for p in published_ports(proxy)] == [("8000", "8000")]
    assert depends_on(proxy) == {"api": "service_healthy"}
    config = mounted_file(proxy, "/etc/nginx/nginx.conf").read_text()
    assert re.search(r"^\s*listen\s+8000;", config, re.MULTILINE)
    assert "proxy_pass http://encore_api;" in config and "upstream encore_api" in config
    assert "/nginx-health" in " ".join(proxy["healthcheck"]["test"]) and "/nginx-health" in config


def _flow_processes(services: dict[str, dict[str, Any]]) -> int:
    raw = interpolate_defaults(environment(services["flow"]).get("ENCORE_FLOW_PROCESSES") or "1")
    assert raw.isdigit() and int(raw) >= 1, f"ENCORE_FLOW_PROCESSES={raw!r}"
    return int(raw)


def test_prometheus_scrapes_what_the_services_serve(services: dict[str, dict[str, Any]]) -> None:
    prometheus = services["prometheus"]
    config_path = mounted_file(prometheus, "/etc/prometheus/prometheus.yml")
    assert config_path is not None and config_path.resolve() == (REPO_ROOT / "deploy" / "prometheus.yml")
    config = yaml.safe_load(config_path.read_text())
    for rule_file in config["rule_files"]:
        assert mounted_file(prometheus, f"/etc/prometheus/{rule_file}") is not None, rule_file
    assert any(v == "prometheus-data" for v, _ in volume_mounts(prometheus))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}

    # Every API replica, found by DNS: the service name and the port `serve` binds.
    api_port = option_value(command_words(services["api"]), "--port")
    (api_sd,) = jobs["encore-api"]["dns_sd_configs"]
    assert api_sd["names"] == ["api"] and api_sd.get("type", "A") == "A"
    assert str(api_sd["port"]) == api_port

    # One target per flow process: 3030 + process id, each exposed by the flow service.
    targets = [t for group in jobs["encore-flow"]["static_configs"] for t in group["targets"]]
    expected = [f"flow:{FLOW_METRICS_BASE_PORT + i}" for i in range(_flow_processes(services))]
    assert targets == expected, f"encore-flow targets {targets}; the compose flow serves {expected}"
    exposed = {str(p).split("/")[0] for p in services["flow"].get("expose") or []}
    assert {t.split(":")[1] for t in targets} <= exposed
    for target in targets:
        assert target.split(":")[0] in services


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = services["grafana"]
    datasources = mounted_file(grafana, "/etc/grafana/provisioning/datasources/prometheus.yml")
    assert datasources is not None and datasources.is_file()
    (source,) = yaml.safe_load(datasources.read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    assert "9090" in {p[2] for p in published_ports(services["prometheus"])}
    providers = mounted_file(grafana, "/etc/grafana/provisioning/dashboards/encore.yml")
    assert providers is not None and providers.is_file()
    (provider,) = yaml.safe_load(providers.read_text())["providers"]
    dashboard = mounted_file(grafana, f"{provider['options']['path']}/encore-dashboard.json")
    assert dashboard is not None
    assert dashboard.resolve() == REPO_ROOT / "deploy" / "grafana" / "encore-dashboard.json"
    assert json.loads(dashboard.read_text())["uid"] == "encore-ops"
    assert any(v == "grafana-data" for v, _ in volume_mounts(grafana))


# ---- hardening ------------------------------------------------------------------------------------


def one_shot(name: str, services: dict[str, dict[str, Any]]) -> bool:
    """A job that runs to completion (restart "no", awaited with service_completed_successfully)."""
    if services[name].get("restart", "no") != "no":
        return False
    return any(depends_on(s).get(name) == "service_completed_successfully" for s in services.values())


def test_every_long_running_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    jobs = {name for name in services if one_shot(name, services)}
    assert jobs == {"topics"}, f"one-shot jobs (no healthcheck needed): {sorted(jobs)}"
    for name, service in services.items():
        if name not in jobs:
            assert has_healthcheck(service), f"{name} has no healthcheck"
            check = service.get("healthcheck") or {}
            if check.get("test"):
                assert check.get("interval") and check.get("timeout") and check.get("retries"), name


def test_the_flow_healthcheck_is_encores_own(services: dict[str, dict[str, Any]]) -> None:
    test = services["flow"]["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == ENTRYPOINT, "run `encore healthcheck flow` (exec form)"
    assert check_encore_command(test[2:], "flow healthcheck") == ["healthcheck"]
    assert test[2:4] == ["healthcheck", "flow"]
    start = services["flow"]["healthcheck"].get("start_period", "0s")
    assert int(start.rstrip("s")) >= 30, "give the flow time to start before counting failures"


def test_published_ports_bind_loopback_unless_the_operator_opts_in(
    services: dict[str, dict[str, Any]],
) -> None:
    published = 0
    for name, service in services.items():
        for port in service.get("ports") or []:
            assert isinstance(port, str), f"{name}: write ports as HOST_IP:PUBLISHED:TARGET strings"
        for host_ip, published_port, _, _ in published_ports(service):
            published += 1
            assert host_ip, f"{name} publishes {published_port} on every interface: bind 127.0.0.1"
            default = interpolate_defaults(host_ip)
            assert default in LOOPBACK_ADDRESSES, (
                f"{name} publishes {published_port} on {default!r} by default")
            variables = {m.group("name") for m in _INTERPOLATION.finditer(host_ip)}
            assert variables <= {"ENCORE_PUBLISH_ADDR"}, f"{name}: opt in with ENCORE_PUBLISH_ADDR only"
    assert published >= 4  # the API's proxy, Prometheus, Alertmanager, Grafana
    for name in ("kafka", "redis", "api", "flow"):
        assert not published_ports(services[name]), f"{name} must not be published on the host"


def test_images_are_pinned_to_exact_versions(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if builds(service):
            continue
        image = service["image"]
        assert ":" in image.split("/")[-1] or "@sha256:" in image, f"{name}: {image} has no tag"
        assert not image.endswith(":latest"), f"{name}: {image}"
        assert PINNED_IMAGE.match(image), f"{name}: {image} is not an exact version (x.y.z) or a digest"
    for instruction in dockerfile_instructions():
        if instruction.keyword == "FROM":
            image = resolve_from(instruction.arguments)
            if image.split(":")[0] not in ("build", "runtime"):
                assert PINNED_IMAGE.match(image), f"Dockerfile FROM {image} is not an exact version"


def declared_secrets(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose.get("secrets") or {}


def service_secrets(service: dict[str, Any]) -> set[str]:
    return {s if isinstance(s, str) else s["source"] for s in service.get("secrets") or []}


def test_secrets_are_compose_secrets_kept_out_of_git(
    compose: dict[str, Any], services: dict[str, dict[str, Any]],
) -> None:
    declared = declared_secrets(compose)
    assert {"api-keys", "grafana-admin-password", "prometheus-api-key"} <= set(declared)
    maker = (REPO_ROOT / "deploy" / "make-secrets.sh").read_text()
    ignored = (SECRETS_DIR / ".gitignore").read_text().split()
    assert "*" in ignored, "deploy/secrets/ must be git-ignored"
    for name, spec in declared.items():
        path = (COMPOSE_FILE.parent / spec["file"]).resolve()
        assert path.parent == SECRETS_DIR, f"secret {name}: keep its file in deploy/secrets/"
        assert path.name in maker, f"secret {name}: deploy/make-secrets.sh does not make {path.name}"
    used: set[str] = set()
    for name, service in services.items():
        for secret in service_secrets(service):
            assert secret in declared, f"{name} uses secret {secret!r}, which is not declared"
            used.add(secret)
    assert set(declared) <= used, f"declared but unused secrets: {sorted(set(declared) - used)}"


def test_no_secret_is_inline_in_the_environment(services: dict[str, dict[str, Any]]) -> None:
    secret_like = re.compile(r"(PASSWORD|SECRET|API_KEYS?|TOKEN|CREDENTIALS)$")
    for name, service in services.items():
        for key, value in environment(service).items():
            assert not secret_like.search(key), (
                f"{name}: {key}={value!r} puts a secret in the environment: use a compose secret and "
                f"{key}_FILE"
            )
            if key.endswith("_FILE") and secret_like.search(key.removesuffix("_FILE").rstrip("_")):
                target = interpolate_defaults(value or "")
                assert target.startswith("/run/secrets/"), f"{name}: {key} should point at /run/secrets/"
                assert target.removeprefix("/run/secrets/") in service_secrets(service), (
                    f"{name}: {key} points at {target}, a secret the service does not mount"
                )


def test_the_api_takes_its_keys_from_a_secret_and_never_runs_in_demo_mode(
    services: dict[str, dict[str, Any]],
) -> None:
    env = environment(services["api"])
    assert env.get("ENCORE_API_KEYS_FILE") == "/run/secrets/api-keys"
    assert "api-keys" in service_secrets(services["api"])
    for name, service in encore_services(services).items():
        if name != "api":
            assert "api-keys" not in service_secrets(service), f"{name} does not need the API keys"
    grafana = environment(services["grafana"])
    assert grafana.get("GF_SECURITY_ADMIN_PASSWORD__FILE") == "/run/secrets/grafana-admin-password"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in grafana, "no default admin password"


def test_prometheus_scrapes_the_api_with_a_secret_admin_key(services: dict[str, dict[str, Any]]) -> None:
    prometheus = services["prometheus"]
    config = yaml.safe_load(mounted_file(prometheus, "/etc/prometheus/prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "encore-api"]
    credentials = job["authorization"]["credentials_file"]
    assert credentials.startswith("/run/secrets/")
    assert credentials.removeprefix("/run/secrets/") in service_secrets(prometheus)


def test_alertmanager_receives_the_alert_rules(services: dict[str, dict[str, Any]]) -> None:
    prometheus, alertmanager = services["prometheus"], services["alertmanager"]
    config = yaml.safe_load(mounted_file(prometheus, "/etc/prometheus/prometheus.yml").read_text())
    targets = [t for am in config["alerting"]["alertmanagers"] for g in am["static_configs"]
               for t in g["targets"]]
    assert targets == ["alertmanager:9093"]
    assert depends_on(prometheus).get("alertmanager") == "service_healthy"
    config_flag = next(w for w in command_words(alertmanager) if w.startswith("--config.file="))
    mounted = mounted_file(alertmanager, config_flag.split("=", 1)[1])
    assert mounted is not None and mounted.resolve() == ALERTMANAGER_FILE
    assert any(v == "alertmanager-data" for v, _ in volume_mounts(alertmanager))

    am = yaml.safe_load(ALERTMANAGER_FILE.read_text())
    receivers = {r["name"] for r in am["receivers"]}

    def routes(route: dict[str, Any]) -> list[dict[str, Any]]:
        return [route, *(r for child in route.get("routes") or [] for r in routes(child))]

    for route in routes(am["route"]):
        assert route["receiver"] in receivers, f"route to an undefined receiver {route['receiver']!r}"
    rules = yaml.safe_load((REPO_ROOT / "deploy" / "alerts.yml").read_text())
    severities = {rule["labels"]["severity"] for group in rules["groups"] for rule in group["rules"]}
    routed = {m for r in am["route"].get("routes") or [] for m in r.get("matchers") or []}
    for severity in severities:
        assert f'severity="{severity}"' in routed, f"no route for severity {severity}"


def test_the_image_installs_the_hashed_lock_and_no_secrets() -> None:
    runs = [i.arguments for i in dockerfile_instructions() if i.keyword == "RUN"]
    copies = [i.arguments for i in dockerfile_instructions() if i.keyword == "COPY"]
    assert any(re.search(r"pip install --require-hashes -r requirements\.lock\b", r) for r in runs)
    assert any(c.split()[0] == "requirements.lock" for c in copies), "COPY the lock before the code"
    project = [r for r in runs if re.search(r"pip install\b.*\s\.(\s|$)", r)]
    assert project and all("--no-deps" in r for r in project), "the project installs with --no-deps"
    assert (REPO_ROOT / "requirements.lock").is_file()
    patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert any(fnmatch.fnmatch("deploy/secrets", p) or p in ("deploy", "deploy/secrets") for p in patterns)
    assert not any(fnmatch.fnmatch("requirements.lock", p) for p in patterns)

