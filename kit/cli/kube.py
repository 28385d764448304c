"""The Kubernetes API through the official client, with one-line errors for the usual failures.

Responses are read as the API server's JSON (`_preload_content=False`), so the commands work on
exactly what `kubectl get -o json` shows and `--json` passes it through unchanged.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kit.cli.errors import DENIED, NOT_FOUND, SETUP, UNREACHABLE, KitError

T = TypeVar("T")
# (connect, read) seconds for every call: an unreachable API server fails fast, never hangs.
REQUEST_TIMEOUT = (5.0, 30.0)


@dataclass
class Cluster:
    """API groups bound to one kubeconfig context."""

    context: str
    server: str
    core: Any
    apps: Any
    autoscaling: Any
    policy: Any
    batch: Any

    def call(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call an API method, return its JSON body (dict) or raise KitError with one line."""
        return _json(self._raw(what, method, *args, **kwargs))

    def text(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
        data = self._raw(what, method, *args, **kwargs).data
        return data.decode(errors="replace") if isinstance(data, bytes) else str(data)

    def _raw(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        reraise = kwargs.pop("_reraise", False)
        try:
            return method(*args, _preload_content=False, **kwargs)
        except ApiException as error:
            if reraise:
                raise
            raise self._api_error(what, error) from None
        except HTTPError as error:
            reason = getattr(error, "reason", None) or error
            raise KitError(
                f"Kubernetes API server {self.server} (context {self.context!r}) unreachable: "
                f"{_first_line(str(reason))}",
                UNREACHABLE,
            ) from None

    def _api_error(self, what: str, error: Any) -> KitError:
        message = status_message(error.body) or error.reason or "no message"
        where = f"(context {self.context!r})"
        if error.status == 401:
            return KitError(f"{what}: the API server rejected the credentials {where}: {message}", DENIED)
        if error.status == 403:
            return KitError(f"{what}: RBAC denied {where}: {message}", DENIED)
        if error.status == 404:
            return KitError(f"{what}: not found {where}: {message}", NOT_FOUND)
        code = UNREACHABLE if error.status in (502, 503, 504) else 1
        return KitError(f"{what}: API server answered {error.status} {where}: {message}", code)

    def service_get(self, service: str, namespace: str, path: str, timeout: float) -> tuple[int, str]:
        """GET through the API server's Service proxy: (status, body), error statuses included."""
        from kubernetes.client.exceptions import ApiException

        try:
            response = self._raw(
                "service proxy",
                self.core.connect_get_namespaced_service_proxy_with_path,
                service,
                namespace,
                path,
                _request_timeout=(5.0, timeout),
                _reraise=True,
            )
        except ApiException as error:
            body = (
                error.body.decode(errors="replace")
                if isinstance(error.body, bytes)
                else str(error.body or "")
            )
            return int(error.status or 0), body
        data = response.data
        return int(response.status), data.decode(errors="replace") if isinstance(data, bytes) else str(data)

    def require_namespace(self, namespace: str) -> None:
        """A missing namespace almost always means the wrong cluster: say so.

        Reading a Namespace needs a ClusterRole; with namespace-scoped rights only (403), the
        check is skipped and the first namespaced call speaks for itself.
        """
        try:
            self.call(f"namespace {namespace}", self.core.read_namespace, namespace)
        except KitError as error:
            if error.code == DENIED:
                return
            if error.code == NOT_FOUND:
                raise KitError(
                    f"namespace {namespace} does not exist in context {self.context!r} "
                    f"({self.server}): wrong --context?",
                    NOT_FOUND,
                ) from None
            raise


def wait_for(
    what: str,
    read: Callable[[], Any],
    *,
    done: Callable[[Any], bool],
    describe: Callable[[Any], str],
    timeout: float,
    error: Callable[[Any], KitError],
    stuck: Callable[[Any], bool] = lambda _: False,
) -> Any:
    """Read an object every second until ``done``, showing ``describe`` of it as progress; raise
    ``error`` of the last read once it is ``stuck`` (will never be done) or ``timeout`` has passed."""
    from kit.cli import output

    deadline = time.monotonic() + timeout
    with output.progress(what) as bar:
        while True:
            current = read()
            if done(current):
                return current
            bar.update(describe(current))
            if stuck(current) or time.monotonic() > deadline:
                raise error(current)
            time.sleep(1.0)


def _json(response: Any) -> Any:
    return json.loads(response.data or b"{}")


def status_message(body: Any) -> str:
    """The `message` of a Kubernetes Status body (else its first line)."""
    try:
        return str(json.loads(body).get("message", "")).strip()
    except (TypeError, ValueError, AttributeError):
        return _first_line(str(body or ""))


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def kubeconfig_path(explicit: str | None) -> str:
    if explicit:
        return explicit
    env = os.environ.get("KUBECONFIG", "")
    first = env.split(os.pathsep)[0] if env else ""
    return first or str(Path.home() / ".kube" / "config")


def connect(context: str | None, kubeconfig: str | None) -> Cluster:
    """A client for `context` of `kubeconfig`; one-line errors for a missing file or context."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    path = kubeconfig_path(kubeconfig)
    if not Path(path).is_file():
        raise KitError(f"no kubeconfig at {path}: set --kubeconfig or KUBECONFIG", SETUP)
    try:
        contexts, current = config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
    except ConfigException as error:
        raise KitError(f"kubeconfig {path} is not usable: {_first_line(str(error))}", SETUP) from None
    names = [c["name"] for c in contexts or []]
    chosen = context or (current or {}).get("name")
    if not chosen:
        raise KitError(f"kubeconfig {path} has no current context: pass --context", SETUP)
    if chosen not in names:
        raise KitError(f"context {chosen!r} is not in {path} (contexts: {', '.join(names) or 'none'})", SETUP)
    configuration = client.Configuration()
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, context=chosen, client_configuration=configuration
        )
    except (ConfigException, OSError, ValueError) as error:
        raise KitError(
            f"context {chosen!r} in {path} is not usable: {_first_line(str(error))}", SETUP
        ) from None
    configuration.retries = 0  # urllib3 would retry 3 times: a down API server answers in 5 s, not 20
    api = client.ApiClient(configuration)
    return Cluster(
        context=chosen,
        server=configuration.host,
        core=client.CoreV1Api(api),
        apps=client.AppsV1Api(api),
        autoscaling=client.AutoscalingV2Api(api),
        policy=client.PolicyV1Api(api),
        batch=client.BatchV1Api(api),
    )
