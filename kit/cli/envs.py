"""Which namespace and host an environment name means (config/environments.yaml)."""

from __future__ import annotations

from dataclasses import dataclass

from kit.cli.errors import SETUP, USAGE, KitError


@dataclass(frozen=True)
class Target:
    env: str
    namespace: str
    host: str | None

    @property
    def base_url(self) -> str | None:
        return f"https://{self.host}" if self.host else None


def resolve(env: str, namespace: str | None = None) -> Target:
    """The deployed environment `env`; `namespace` overrides its namespace (a second copy)."""
    from kit import environments

    try:
        config = environments.load()
    except environments.EnvironmentsError as error:
        # Missing or invalid: the schema's message names the file and the key.
        problems = "; ".join(error.problems)
        raise KitError(
            f"--env needs a valid config/environments.yaml (run from the repository): {problems}", SETUP
        ) from None
    try:
        environment = config.get(env)
    except KeyError as error:
        raise KitError(str(error.args[0]), USAGE) from None
    if environment.local or not (namespace or environment.namespace):
        raise KitError(f"environment {env!r} is not deployed to a cluster (no namespace)", USAGE)
    return Target(env=env, namespace=namespace or str(environment.namespace), host=environment.host)
