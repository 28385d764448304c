"""Check every command a runbook names against the repository, so none fails at 3 a.m.

Commands are taken from fenced ``bash``/``sh`` blocks and from inline code spans that start
with a known program. Each simple command (pipelines and ``&&`` are split) goes to the checker
of its program:

- ``kubectl``: kinds (``endpoints`` is refused: EndpointSlice), object names, ``-l`` label
  selectors and ``-c`` containers (init containers included) against the rendered overlays
  (``kubectl kustomize k8s/overlays/<env>``) and the on-demand manifests in
  ``runbooks/procedures/``; objects of the platform (other namespaces) against
  ``PLATFORM_OBJECTS``; flags against ``kubectl <verb> --help``; and the rules the review
  asked for (no ``delete secret``, no ``set env``, no ``scale`` of an HPA-managed Deployment,
  commands run in a container are modules of the image).
- ``make``: targets of the Makefile.
- ``python -m``: the module exists and its argparse parser accepts the arguments.
- ``kit``: the ops CLI's own argparse parser (``kit.cli.parse_error``): subcommands, flags,
  required options and values; an inline mention in prose may leave out required options.
- ``amtool``: subcommand flags against ``amtool <subcommand> --help``.
- ``curl`` to a public host: the path is routed by the edge and served by the app.
- ``grep`` on JSON logs: must match compact JSON (``"level":"error"``); jq is preferred.
- shell variables: defined by the runbook (``export X=...``) or the conventions in runbooks/README.md.

PromQL blocks: parsed by promql-parser, and every metric name is one the service exports
(collected from the app's and the worker's registries), a recorded series of
``alerts/generated/rules.yaml``, a synthetic-probe series (CONTRACTS.md), or from an exporter
the platform runs (``EXTERNAL_METRIC_PREFIXES``).

Adding a checker for another program is one function registered in ``CHECKERS``;
``check_argparse`` does the parsing for any argparse-based CLI.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import importlib.util
import io
import itertools
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from kit import k8s_checks
from kit.paths import ALERTS, K8S, ROOT, RUNBOOKS
from kit.promql import selector_uses

Obj = dict[str, Any]

PROCEDURES = RUNBOOKS / "procedures"
CONVENTIONS = RUNBOOKS / "README.md"
MAKEFILE = ROOT / "Makefile"
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
PROGRAMS = (
    "kubectl",
    "kit",
    "make",
    "python",
    "amtool",
    "curl",
    "grep",
    "psql",
    "jq",
    "dig",
    "openssl",
    "cmctl",
)
STANDARD_VARIABLES = {"HOME", "USER", "PWD"}

# Objects outside the service's namespaces that runbooks may name: the platform the kit assumes
# (docs/kubernetes.md prerequisites, CONTRACTS.md). Keys: namespace -> kind -> names (None: any name,
# the runbook lists them) and the pod labels there.
PLATFORM_OBJECTS: dict[str, dict[str, set[str] | None]] = {
    "gateway-system": {
        "Gateway": {"platform"},
        "Certificate": None,
        "CertificateRequest": None,
        "Order": None,
        "Challenge": None,
        "Event": None,
    },
    "envoy-gateway-system": {"Deployment": {"envoy-gateway"}, "Pod": None, "Service": None},
    "cert-manager": {"Deployment": {"cert-manager"}, "Pod": None},
    "monitoring": {
        "Pod": None,
        "Service": {"prometheus-pushgateway", "alertmanager-operated", "prometheus-operated"},
        "Alertmanager": None,
        "Prometheus": None,
    },
    "kube-system": {"Pod": None},
}
PLATFORM_POD_LABELS: dict[str, list[dict[str, str]]] = {
    "monitoring": [{"app.kubernetes.io/name": "prometheus"}, {"app.kubernetes.io/name": "alertmanager"}],
    "envoy-gateway-system": [
        {"gateway.envoyproxy.io/owning-gateway-name": "platform"},
        {"app.kubernetes.io/name": "envoy"},
    ],
    "cert-manager": [{"app.kubernetes.io/name": "cert-manager"}],
    "kube-system": [{"k8s-app": "kube-dns"}],
}
# Cluster-scoped or namespaced kinds the kit does not render but runbooks may list.
LISTABLE_KINDS = {
    "Pod",
    "Event",
    "ReplicaSet",
    "EndpointSlice",
    "Node",
    "Certificate",
    "CertificateRequest",
    "Order",
    "Challenge",
    "HTTPRoute",
    "Gateway",
    "ResourceQuota",
    "Job",
    "Secret",
}
# Objects that exist in every service namespace without being rendered (CONTRACTS.md).
UNRENDERED_OBJECTS = {("Secret", "reference-service-secrets")}

KINDS = {
    "deploy": "Deployment",
    "deployment": "Deployment",
    "deployments": "Deployment",
    "po": "Pod",
    "pod": "Pod",
    "pods": "Pod",
    "svc": "Service",
    "service": "Service",
    "services": "Service",
    "hpa": "HorizontalPodAutoscaler",
    "horizontalpodautoscaler": "HorizontalPodAutoscaler",
    "pdb": "PodDisruptionBudget",
    "poddisruptionbudget": "PodDisruptionBudget",
    "cm": "ConfigMap",
    "configmap": "ConfigMap",
    "configmaps": "ConfigMap",
    "secret": "Secret",
    "secrets": "Secret",
    "netpol": "NetworkPolicy",
    "networkpolicy": "NetworkPolicy",
    "networkpolicies": "NetworkPolicy",
    "sa": "ServiceAccount",
    "serviceaccount": "ServiceAccount",
    "servicemonitor": "ServiceMonitor",
    "servicemonitors": "ServiceMonitor",
    "prometheusrule": "PrometheusRule",
    "prometheusrules": "PrometheusRule",
    "ingress": "Ingress",
    "httproute": "HTTPRoute",
    "httproutes": "HTTPRoute",
    "gateway": "Gateway",
    "gateways": "Gateway",
    "certificate": "Certificate",
    "certificates": "Certificate",
    "certificaterequest": "CertificateRequest",
    "certificaterequests": "CertificateRequest",
    "order": "Order",
    "orders": "Order",
    "challenge": "Challenge",
    "challenges": "Challenge",
    "endpointslice": "EndpointSlice",
    "endpointslices": "EndpointSlice",
    "events": "Event",
    "event": "Event",
    "rs": "ReplicaSet",
    "replicaset": "ReplicaSet",
    "replicasets": "ReplicaSet",
    "node": "Node",
    "nodes": "Node",
    "job": "Job",
    "jobs": "Job",
    "resourcequota": "ResourceQuota",
    "ns": "Namespace",
    "namespace": "Namespace",
    "alertmanager": "Alertmanager",
    "prometheus": "Prometheus",
}
POD_KINDS = {"Pod", "Deployment", "ReplicaSet", "Job"}

PLACEHOLDER = re.compile(r"<[A-Za-z][\w .:/|-]*>")
FENCE = re.compile(r"^[ \t]*```(\w*)\n(.*?)^[ \t]*```", re.DOTALL | re.MULTILINE)
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
PROMQL_BLOCK = re.compile(r"```promql\n(.*?)```", re.DOTALL)
VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
ASSIGNMENT = re.compile(r"(?:^|\s|export\s+)([A-Za-z_][A-Za-z0-9_]*)=")


@dataclass(frozen=True)
class Problem:
    path: Path
    command: str
    message: str

    def __str__(self) -> str:
        where = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{where}: `{self.command[:120]}`: {self.message}"


@dataclass(frozen=True)
class Command:
    """One simple command: argv with placeholders kept as `<...>` tokens."""

    path: Path
    text: str
    argv: tuple[str, ...]
    mention: bool = False  # an inline code span in prose: `python -m app.probe` names a tool


# --- the repository's facts --------------------------------------------------------------------


@dataclass
class Repo:
    objects: list[Obj]
    make_targets: set[str]
    recorded_series: set[str]
    service_metrics: set[str]
    routed_prefixes: list[str] = field(default_factory=list)
    app_paths: list[re.Pattern[str]] = field(default_factory=list)
    hosts: set[str] = field(default_factory=set)
    variables: dict[str, str] = field(default_factory=dict)  # `export X=value` of the conventions

    def named(self, kind: str, name: str) -> bool:
        return (kind, name) in UNRENDERED_OBJECTS or any(
            o.get("kind") == kind and o["metadata"].get("name") == name for o in self.objects
        )

    def in_namespace(self, namespace: str, kind: str, name: str) -> bool:
        """A platform object the repository renders itself (k8s/platform/*), e.g. the Gateway."""
        return any(
            o.get("kind") == kind
            and o["metadata"].get("name") == name
            and o["metadata"].get("namespace") == namespace
            for o in self.objects
        )

    def kinds(self) -> set[str]:
        return {str(o.get("kind")) for o in self.objects}


def _rendered_objects() -> list[Obj]:
    objects: list[Obj] = []
    for overlay in sorted(p for p in (K8S / "overlays").iterdir() if p.is_dir()):
        objects.extend(k8s_checks.render(overlay))
    platform = K8S / "platform"
    for directory in (
        sorted(p for p in platform.iterdir() if (p / "kustomization.yaml").is_file())
        if platform.is_dir()
        else []
    ):
        objects.extend(k8s_checks.render(directory))
    for manifest in sorted(PROCEDURES.glob("*.yaml")):
        objects.extend(o for o in yaml.safe_load_all(manifest.read_text()) if o)
    return objects


def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z0-9_.-]+):(?!=)", MAKEFILE.read_text(), re.MULTILINE))


def _recorded_series() -> set[str]:
    rules = yaml.safe_load((ALERTS / "generated" / "rules.yaml").read_text())
    return {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}


SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created", ""),
    "gauge": ("",),
    "info": ("_info",),
    "unknown": ("",),
}


def service_metric_names() -> set[str]:
    """Every series name the API and the worker export, from their real registries."""
    from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

    from app.main import create_app
    from app.persistence.database import create_engine
    from app.settings import Settings
    from app.worker import build_relay, build_sweeper

    settings = Settings(environment="test", jwt_secret="x" * 40, webhook_url="https://hooks.example.com/x")
    registry = CollectorRegistry()
    create_app(settings, registry=registry)
    engine = create_engine(settings)  # never connects: the worker's collectors only need one
    build_relay(settings, engine, registry)
    build_sweeper(settings, engine, registry)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return {family.name + s for family in registry.collect() for s in SUFFIXES.get(family.type, ("",))}


def _edge_routes(objects: list[Obj]) -> tuple[list[str], set[str]]:
    prefixes: list[str] = []
    hosts: set[str] = set()
    for obj in objects:
        if obj.get("kind") == "Ingress":
            for rule in obj["spec"].get("rules", []):
                hosts.add(rule.get("host", ""))
                prefixes += [p["path"] for p in rule.get("http", {}).get("paths", [])]
        elif obj.get("kind") == "HTTPRoute":
            hosts.update(obj["spec"].get("hostnames", []))
            # A rule without backends (the gateway's HTTP-to-HTTPS redirect) serves nothing.
            for rule in obj["spec"].get("rules", []):
                if rule.get("backendRefs"):
                    prefixes += [m.get("path", {}).get("value", "/") for m in rule.get("matches", [{}])]
    return sorted(set(prefixes)), hosts


def _app_paths() -> list[re.Pattern[str]]:
    from app.api.errors import plain_routes
    from app.main import create_app
    from app.settings import Settings

    app = create_app(Settings(environment="test", jwt_secret="x" * 40))
    paths = [route.path for route in plain_routes(app.routes)]
    return [re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$") for p in paths if p]


@functools.cache
def repo() -> Repo:
    objects = _rendered_objects()
    prefixes, hosts = _edge_routes(objects)
    return Repo(
        objects=objects,
        make_targets=make_targets(),
        recorded_series=_recorded_series(),
        service_metrics=service_metric_names(),
        routed_prefixes=prefixes,
        app_paths=_app_paths(),
        hosts=hosts,
        variables=convention_values(),
    )


# --- extracting commands ---------------------------------------------------------------------------


def _protect(text: str) -> str:
    """`<pod>` -> `__PH_pod__`, so the shell lexer keeps it as one word."""
    return PLACEHOLDER.sub(lambda m: "__PH_" + re.sub(r"\W", "_", m.group(0)[1:-1]) + "__", text)


def is_placeholder(token: str) -> bool:
    return "__PH_" in token


def _without_trailing_comment(line: str) -> str:
    """`make bench   # the gate's rates` -> `make bench`; a `#` inside quotes stays."""
    for match in re.finditer(r"\s#", line):
        before = line[: match.start()]
        if before.count("'") % 2 == 0 and before.count('"') % 2 == 0:
            return before
    return line


def split_commands(path: Path, script: str, mention: bool = False) -> Iterator[Command]:
    """Simple commands of a shell snippet: comments dropped, continuations joined, pipes split."""
    script = re.sub(r"\\\n", " ", script)
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("#")]
    # A trailing comment would swallow the newline that ends its command (shlex reads comments
    # to the end of the line), joining it with the next one.
    lines = [_without_trailing_comment(line) for line in lines]
    lexer = shlex.shlex(_protect("\n".join(lines)), posix=True, punctuation_chars="|&;\n")
    lexer.whitespace = " \t\r"  # a newline ends a command, like `;`
    lexer.whitespace_split = True
    current: list[str] = []
    try:
        tokens = list(lexer)
    except ValueError as exc:  # unbalanced quotes
        raise ValueError(f"{path.name}: cannot parse shell snippet: {exc}: {script[:80]!r}") from None
    for token in [*tokens, ";"]:
        if token and set(token) <= set("|&;\n"):
            if current:
                yield Command(path, " ".join(current), tuple(current), mention)
            current = []
        else:
            current.append(token)


def commands_in(path: Path) -> Iterator[Command]:
    text = path.read_text()
    for language, body in FENCE.findall(text):
        if language in SHELL_LANGUAGES:
            yield from split_commands(path, body)
    prose = FENCE.sub("", text)
    for span in INLINE.findall(prose):
        first = span.split(" ", 1)[0]
        if first in PROGRAMS and " " in span:
            yield from split_commands(path, span, mention=True)


def runbook_files() -> list[Path]:
    return sorted([*RUNBOOKS.glob("*.md"), *PROCEDURES.glob("*.md")])


# --- checkers -------------------------------------------------------------------------------------

Checker = Callable[[Command, Repo], list[str]]


def _flags_of_help(argv: Sequence[str]) -> set[str]:
    return _cached_help_flags(tuple(argv))


@functools.cache
def _cached_help_flags(argv: tuple[str, ...]) -> set[str]:
    result = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    text = result.stdout + result.stderr
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9.-]*[a-z0-9]|-[a-zA-Z])\b", text))


@functools.cache
def _kubectl_global_flags() -> set[str]:
    result = subprocess.run(["kubectl", "options"], capture_output=True, text=True, timeout=30, check=False)  # noqa: S607
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9.-]*[a-z0-9]|-[a-zA-Z])\b", result.stdout))


KUBECTL_VALUE_FLAGS = {
    "-n",
    "--namespace",
    "-l",
    "--selector",
    "-c",
    "--container",
    "-o",
    "--output",
    "-p",
    "--patch",
    "--type",
    "--since",
    "--tail",
    "--field-selector",
    "--sort-by",
    "--replicas",
    "--to-revision",
    "--for",
    "--timeout",
    "-f",
    "--filename",
    "-k",
    "--kustomize",
    "--max-log-requests",
    "--context",
    "--image",
    "--overrides",
    "--labels",
    "--restart",
    "--grace-period",
    "-w",
}
VERBS_WITH_SUBCOMMAND = {"rollout", "set", "auth", "config", "top"}


def _kubectl_parse(argv: Sequence[str]) -> tuple[list[str], dict[str, list[str]], list[str], list[str]]:
    """(positionals, flag values, flags used, argv after `--`)."""
    positionals: list[str] = []
    values: dict[str, list[str]] = {}
    used: list[str] = []
    rest = list(argv[1:])
    after: list[str] = []
    if "--" in rest:
        index = rest.index("--")
        rest, after = rest[:index], rest[index + 1 :]
    i = 0
    while i < len(rest):
        token = rest[i]
        if re.fullmatch(r"-[a-zA-Z]{2,}", token):  # -it: combined short flags
            rest[i : i + 1] = [f"-{letter}" for letter in token[1:]]
            token = rest[i]
        if token.startswith("-"):
            name, eq, value = token.partition("=")
            used.append(name)
            if eq:
                values.setdefault(name, []).append(value)
            elif name in KUBECTL_VALUE_FLAGS and i + 1 < len(rest):
                values.setdefault(name, []).append(rest[i + 1])
                i += 1
        else:
            positionals.append(token)
        i += 1
    return positionals, values, used, after


def _selector(text: str) -> dict[str, str] | None:
    if is_placeholder(text) or any(op in text for op in ("!=", " in ", " notin ", "(")):
        return None
    pairs = [part.split("=", 1) for part in text.split(",")]
    return {key.strip(): value.strip() for key, value in pairs} if all(len(p) == 2 for p in pairs) else None


def _labels_of(obj: Obj, kind: str) -> Iterator[dict[str, str]]:
    if kind == "EndpointSlice" and obj.get("kind") == "Service":  # the EndpointSlice controller's label
        yield {"kubernetes.io/service-name": obj["metadata"]["name"]}
    if kind in POD_KINDS and obj.get("kind") in k8s_checks.WORKLOAD_KINDS:
        yield obj["spec"]["template"].get("metadata", {}).get("labels", {})
    if kind in POD_KINDS and obj.get("kind") == "Pod":
        yield obj["metadata"].get("labels", {})
    if obj.get("kind") == kind:
        yield obj["metadata"].get("labels", {})


def _resources(positionals: list[str], verb: str) -> list[tuple[str, str | None]]:
    """(kind, name) pairs named by a kubectl command (`deploy/x`, `deploy x`, `deploy,pods`)."""
    if verb in {"logs", "exec", "port-forward", "attach", "debug"}:
        if not positionals:
            return []
        kind_text, slash, name = positionals[0].partition("/")
        return [(kind_text, name)] if slash else [("pod", positionals[0])]
    if not positionals:
        return []
    first, *names = positionals
    if "/" in first:
        return [(k, n) for k, _, n in (p.partition("/") for p in positionals)]
    kinds = first.split(",")
    if not names:
        return [(kind, None) for kind in kinds]
    return [(kind, name) for kind in kinds for name in names]


def check_kubectl(command: Command, facts: Repo) -> list[str]:
    errors: list[str] = []
    positionals, values, used, inner = _kubectl_parse(command.argv)
    if not positionals:
        return ["kubectl without a verb"]
    verb = positionals[0]
    args = positionals[1:]
    help_argv = ["kubectl", verb]
    if verb in VERBS_WITH_SUBCOMMAND and args:
        help_argv.append(args[0])
        args = args[1:]
    known_flags = _flags_of_help(help_argv) | _kubectl_global_flags()
    errors += [
        f"kubectl {' '.join(help_argv[1:])} has no flag {flag}" for flag in used if flag not in known_flags
    ]
    namespace = (values.get("-n") or values.get("--namespace") or ["$NAMESPACE"])[-1]
    platform = PLATFORM_OBJECTS.get(namespace)
    if namespace != "$NAMESPACE" and platform is None and not is_placeholder(namespace):
        errors.append(f"namespace {namespace}: neither the service's ($NAMESPACE) nor a platform namespace")

    if verb == "delete" and any(KINDS.get(k) == "Secret" for k, _ in _resources(args, verb)):
        errors.append(
            "deleting a Secret takes what depends on it down at once (cert-manager renews with cmctl)"
        )
    if verb == "set" and help_argv[-1] == "env":
        errors.append(
            "`kubectl set env` drifts from git and can unset required settings; change the Secret/config"
        )
    if verb in {"get", "describe"} and any(k in {"endpoints", "ep"} for k, _ in _resources(args, verb)):
        errors.append("Endpoints are deprecated (Kubernetes 1.33): use endpointslices")

    resources = (
        _resources(args, verb)
        if verb not in {"apply", "create", "kustomize", "run", "cordon", "drain"}
        else []
    )
    if verb == "top":
        resources = [(help_argv[-1], None)]
    jsonpaths = " ".join(v for v in values.get("-o", []) + values.get("--output", []) if "jsonpath" in v)
    if "containerStatuses" in jsonpaths and "initContainerStatuses" not in jsonpaths:
        errors.append(
            "the jsonpath reads containerStatuses only: a failing init container (migrate) stays hidden"
        )
    for kind_text, name in resources:
        kind = KINDS.get(kind_text.lower())
        if kind_text in {"endpoints", "ep"}:
            continue  # refused above
        if kind is None:
            errors.append(f"unknown resource type {kind_text!r}")
            continue
        if platform is not None:
            names = platform.get(kind, set())
            if kind not in platform:
                errors.append(f"{kind} is not a known object kind of namespace {namespace}")
            elif (
                name
                and not is_placeholder(name)
                and names is not None
                and name not in names
                and not facts.in_namespace(namespace, kind, name)
            ):
                errors.append(f"{kind} {namespace}/{name} is not a known platform object")
            continue
        if kind not in facts.kinds() and kind not in LISTABLE_KINDS:
            errors.append(f"no {kind} in the rendered manifests")
        elif (
            name
            and not is_placeholder(name)
            and kind not in {"Pod", "Node", "Event"} | LISTABLE_KINDS - {"Secret"}
        ):
            if not facts.named(kind, name):
                errors.append(f"no {kind} named {name!r} in the rendered manifests")
        elif kind == "Pod" and name and not is_placeholder(name) and not facts.named("Pod", name):
            errors.append(f"pod {name!r}: pod names are generated; use deploy/<name> or a <pod> placeholder")
        if verb == "scale" and kind == "Deployment" and name and _hpa_managed(facts, name):
            errors.append(
                f"Deployment {name} is scaled by its HorizontalPodAutoscaler, which undoes `kubectl scale`; "
                'patch the HPA instead: kubectl patch hpa ... -p \'{"spec":{"minReplicas":<n>}}\''
            )

    for selector_text in values.get("-l", []) + values.get("--selector", []):
        errors += _check_selector(selector_text, resources, namespace, facts)
    for container in values.get("-c", []) + values.get("--container", []):
        errors += _check_container(container, resources, facts)
    for path in (
        values.get("-k", [])
        + values.get("--kustomize", [])
        + values.get("-f", [])
        + values.get("--filename", [])
    ):
        errors += _check_path(path)
    if verb == "exec" and inner:
        errors += _check_in_container(Command(command.path, " ".join(inner), tuple(inner)), facts)
    return errors


def _hpa_managed(facts: Repo, deployment: str) -> bool:
    return any(
        o.get("kind") == "HorizontalPodAutoscaler" and o["spec"]["scaleTargetRef"]["name"] == deployment
        for o in facts.objects
    )


def _check_selector(
    text: str, resources: list[tuple[str, str | None]], namespace: str, facts: Repo
) -> list[str]:
    selector = _selector(text)
    if selector is None:
        return []
    if namespace in PLATFORM_POD_LABELS:
        known = PLATFORM_POD_LABELS[namespace]
        return (
            []
            if any(k8s_checks._selects(selector, labels) for labels in known)
            else [f"selector {text} matches no known platform pods in {namespace}"]
        )
    kinds = {KINDS.get(k.lower(), "Pod") for k, _ in resources} or {"Pod"}
    for kind in kinds:
        for obj in facts.objects:
            if any(k8s_checks._selects(selector, labels) for labels in _labels_of(obj, kind)):
                return []
    return [f"selector {text} matches no {'/'.join(sorted(kinds))} in the rendered manifests"]


def _check_container(container: str, resources: list[tuple[str, str | None]], facts: Repo) -> list[str]:
    if is_placeholder(container):
        return []
    named = [n for k, n in resources if KINDS.get(k.lower()) == "Deployment" and n and not is_placeholder(n)]
    owners = [o for o in facts.objects if o.get("kind") in {"Deployment", "Pod"}]
    if named:
        owners = [o for o in owners if o["metadata"]["name"] in named]
    for owner in owners:
        spec = owner["spec"]["template"]["spec"] if owner["kind"] == "Deployment" else owner["spec"]
        names = {c["name"] for c in [*spec.get("initContainers", []), *spec.get("containers", [])]}
        if container in names:
            return []
    return [f"no container {container!r} in {', '.join(named) or 'any pod template'}"]


def _check_path(path: str) -> list[str]:
    if path in {"-"}:
        return []
    if is_placeholder(path):
        candidates = list(ROOT.glob(re.sub(r"__PH_\w+?__", "*", path)))
        return [] if candidates else [f"{path}: no such path for any value of the placeholder"]
    return [] if (ROOT / path).exists() else [f"{path}: no such file or directory in the repository"]


def _check_in_container(command: Command, facts: Repo) -> list[str]:
    """A command run by `kubectl exec` runs in the image: python modules must be the app's."""
    if (
        command.argv[:2] == ("python", "-m")
        and len(command.argv) > 2
        and not command.argv[2].startswith("app.")
    ):
        return [f"{command.argv[2]} is not in the image (only the app package is)"]
    if command.argv[0] in {"python", "sh", "psql"}:
        return check_python(command, facts) if command.argv[0] == "python" else []
    return [f"{command.argv[0]} is not in the image"]


def check_make(command: Command, facts: Repo) -> list[str]:
    targets = [t for t in command.argv[1:] if not t.startswith("-") and "=" not in t]
    return [f"no make target {t!r}" for t in targets if t not in facts.make_targets]


class _Parsed(Exception):
    """Raised by the patched parse_args once the real parser accepted the arguments."""


def check_argparse(module_name: str, args: Sequence[str]) -> list[str]:
    """Run the module's `main()` until its argparse parser has parsed `args`, and no further."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return [f"cannot import {module_name}: {exc}"]
    entry = getattr(module, "main", None)
    uses_argparse = "argparse" in Path(str(module.__file__)).read_text()
    if entry is None or not uses_argparse:
        return [f"{module_name} takes no arguments"] if args else []
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, *a: Any, **kw: Any) -> Any:
        original(self, *a, **kw)
        raise _Parsed

    stderr = io.StringIO()
    saved_argv = sys.argv
    sys.argv = [module_name, *args]
    argparse.ArgumentParser.parse_args = parse_then_stop  # type: ignore[method-assign]
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            entry()
    except _Parsed:
        return []
    except SystemExit as exc:
        if exc.code in (0, None):
            return []
        message = stderr.getvalue().strip().splitlines()
        return [f"python -m {module_name} {' '.join(args)}: {message[-1] if message else exc.code}"]
    finally:
        argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]
        sys.argv = saved_argv
    return [f"python -m {module_name}: main() returned without parsing its arguments"]


def check_python(command: Command, facts: Repo) -> list[str]:
    argv = list(command.argv)
    if argv[1:2] == ["-c"]:
        return []
    if command.mention and len(argv) < 3:
        return []
    if argv[1:2] != ["-m"] or len(argv) < 3:
        return ["use `python -m <module>` (scripts by path are not checked)"]
    module, args = argv[2], argv[3:]
    if importlib.util.find_spec(module) is None:
        return [f"no module {module}"]
    if command.mention and not args:
        return []  # prose naming the tool, not a command line
    if any(is_placeholder(a) for a in args):
        args = [re.sub(r"__PH_\w+?__", "00000000-0000-0000-0000-000000000000", a) for a in args]
    return check_argparse(module, args)


def check_amtool(command: Command, facts: Repo) -> list[str]:
    words = [a for a in command.argv[1:] if not a.startswith("-")]
    subcommand = words[:2] if words[:1] == ["silence"] else words[:1]
    known = _flags_of_help(["amtool", *subcommand])
    used = [a.split("=", 1)[0] for a in command.argv[1:] if a.startswith("--")]
    return [f"amtool {' '.join(subcommand)} has no flag {flag}" for flag in used if flag not in known]


def check_curl(command: Command, facts: Repo) -> list[str]:
    urls = [_expand(a, facts.variables) for a in command.argv[1:] if a.startswith(("http://", "https://"))]
    errors = []
    for url in urls:
        parsed = urlparse(url.replace("__PH_", "PH_"))
        if parsed.hostname in {"127.0.0.1", "localhost"} or parsed.hostname not in facts.hosts:
            continue  # not the service's public host: nothing in the repo to check it against
        if not any(parsed.path.startswith(prefix) for prefix in facts.routed_prefixes):
            errors.append(
                f"{parsed.path} is not routed by the edge (routes: {', '.join(facts.routed_prefixes)})"
            )
        elif not any(p.match(parsed.path) for p in facts.app_paths) and "PH_" not in parsed.path:
            errors.append(f"{parsed.path}: the app serves no such route")
    return errors


def check_grep(command: Command, facts: Repo) -> list[str]:
    patterns = [a for a in command.argv[1:] if not a.startswith("-")]
    if any(re.search(r'"\w+": ', p) for p in patterns):
        return ['logs are compact JSON ({"level":"error"}): this pattern never matches; use jq']
    return []


MISSING_REQUIRED = re.compile(r"the following arguments are required|one of the arguments .* is required")


def check_kit(command: Command, facts: Repo) -> list[str]:
    """`kit ...` against the CLI's parser. Placeholders stand for a valid value of their option."""
    from kit.cli import build_parser, parse_error

    args = [re.sub(r"__PH_(\w+?)__", r"<\1>", a) for a in command.argv[1:]]
    error = parse_error(args)
    if error is None:
        return []
    if command.mention and MISSING_REQUIRED.search(error):
        # Prose may name `kit rollback` or `kit dead-letters replay --all` without every required
        # option; its subcommands and flags must still exist.
        words = list(itertools.takewhile(lambda a: not a.startswith("-"), args))
        usage = parse_error([*words, "--help"])
        if usage is not None:
            return [f"kit {' '.join(args)}: {usage}"]
        help_text = io.StringIO()
        with contextlib.redirect_stdout(help_text), contextlib.suppress(SystemExit):
            build_parser().parse_args([*words, "--help"])
        known = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", help_text.getvalue()))
        unknown = [a.split("=", 1)[0] for a in args if a.startswith("--") and a.split("=", 1)[0] not in known]
        return [f"kit {' '.join(words)} has no flag {flag}" for flag in unknown]
    return [f"kit {' '.join(args)}: {error}"]


CHECKERS: dict[str, Checker] = {
    "kit": check_kit,
    "kubectl": check_kubectl,
    "make": check_make,
    "python": check_python,
    "amtool": check_amtool,
    "curl": check_curl,
    "grep": check_grep,
}


def check_variables(path: Path, conventions: set[str]) -> list[Problem]:
    """Every $VAR a runbook's commands use is defined by it or by the conventions (R7, R9)."""
    text = path.read_text()
    snippets = [body for language, body in FENCE.findall(text) if language in SHELL_LANGUAGES]
    snippets += [s for s in INLINE.findall(FENCE.sub("", text)) if s.split(" ", 1)[0] in PROGRAMS]
    defined = conventions | STANDARD_VARIABLES | set(ASSIGNMENT.findall("\n".join(snippets)))
    problems = []
    for snippet in snippets:
        outside_single_quotes = re.sub(r"'[^']*'", "", snippet)  # expanded in the container, not here
        for name in VARIABLE.findall(outside_single_quotes):
            if name not in defined:
                problems.append(Problem(path, snippet.strip().splitlines()[0], f"${name} is defined nowhere"))
    return problems


def convention_variables() -> set[str]:
    return set(ASSIGNMENT.findall("\n".join(b for _, b in FENCE.findall(CONVENTIONS.read_text()))))


def convention_values() -> dict[str, str]:
    """`export HOST=api.example.com` in runbooks/README.md -> {"HOST": "api.example.com"}."""
    blocks = "\n".join(b for _, b in FENCE.findall(CONVENTIONS.read_text()))
    return dict(re.findall(r"^\s*export\s+([A-Za-z_][A-Za-z0-9_]*)=(\S+)", blocks, re.MULTILINE))


def _expand(text: str, variables: dict[str, str]) -> str:
    return VARIABLE.sub(
        lambda m: variables.get(m.group(1), m.group(0)), text.replace("${", "$").replace("}", "")
    )


# --- PromQL --------------------------------------------------------------------------------------

SYNTHETIC_METRICS = {
    "synthetic_journey_success",
    "synthetic_journey_duration_seconds",
    "synthetic_journey_last_run_timestamp_seconds",
    "synthetic_step_success",
}
EXTERNAL_METRIC_PREFIXES = (
    "kube_",  # kube-state-metrics
    "container_",  # cAdvisor (kubelet)
    "kubelet_",
    "node_",
    "certmanager_",
    "prometheus_",
    "alertmanager_",
    "envoy_",  # Envoy Gateway's proxies
    "pg_",  # postgres_exporter
    "redis_",  # redis_exporter
    "probe_",  # blackbox exporter
    "push_time_seconds",  # Pushgateway
)
PROMETHEUS_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds", "scrape_samples_scraped"}


def check_promql(path: Path, facts: Repo) -> list[Problem]:
    problems = []
    for block in PROMQL_BLOCK.findall(path.read_text()):
        expr = " ".join(line.strip() for line in block.splitlines())
        try:
            uses = selector_uses(expr)
        except ValueError as exc:
            problems.append(Problem(path, expr, f"PromQL does not parse: {exc}"))
            continue
        for use in uses:
            name = use.name
            known = (
                name in facts.service_metrics
                or name in facts.recorded_series
                or name in SYNTHETIC_METRICS
                or name in PROMETHEUS_SERIES
                or name.startswith(EXTERNAL_METRIC_PREFIXES)
            )
            if not known:
                problems.append(Problem(path, expr, f"metric {name} is exported by nothing the kit knows"))
    return problems


# --- SQL ---------------------------------------------------------------------------------------

SQL_BLOCK = re.compile(r"^[ \t]*```sql\n(.*?)^[ \t]*```", re.DOTALL | re.MULTILINE)
TRANSACTION_CONTROL = re.compile(r"^(begin|commit|rollback|start transaction)\b", re.IGNORECASE)


def sql_statements(path: Path) -> list[str]:
    """The runbook's SQL, one statement each, placeholders made concrete (`'<uuid>'` -> a UUID)."""
    statements = []
    for block in SQL_BLOCK.findall(path.read_text()):
        for raw in block.split(";"):
            statement = " ".join(raw.split())
            if not statement or TRANSACTION_CONTROL.match(statement):
                continue
            statement = re.sub(r"'<uuid>'", "'00000000-0000-0000-0000-000000000000'", statement)
            statement = re.sub(r"<(pid|n)>", "0", statement)
            statements.append(PLACEHOLDER.sub("placeholder", statement))
    return statements


# --- all together --------------------------------------------------------------------------------


def check_command(command: Command, facts: Repo) -> list[Problem]:
    program = command.argv[0]
    checker = CHECKERS.get(program)
    if checker is None:
        return []
    return [Problem(command.path, command.text, message) for message in checker(command, facts)]


def check_runbook(path: Path, facts: Repo, conventions: set[str]) -> list[Problem]:
    problems: list[Problem] = []
    for command in commands_in(path):
        problems += check_command(command, facts)
    problems += check_variables(path, conventions)
    problems += check_promql(path, facts)
    return problems


def check_all() -> list[Problem]:
    facts = repo()
    conventions = convention_variables()
    return [p for path in runbook_files() for p in check_runbook(path, facts, conventions)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kit.runbook_commands", description=__doc__.splitlines()[0]
    )
    parser.parse_args(argv)
    try:
        problems = check_all()
    except (k8s_checks.RenderError, ValueError) as exc:
        print(f"runbook_commands: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem)
    checked = len(runbook_files())
    print(f"runbook_commands: {checked} runbooks, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
