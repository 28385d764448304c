"""The environment's own secrets in AWS Secrets Manager: role passwords, JWT key, webhook.

Generated here (random, never typed by a person) or taken from `pulumi config set --secret`;
External Secrets copies them into the namespace. The database master password is not among
them: AWS generates and keeps it (see components/database.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random


@dataclass(frozen=True)
class AppSecretsArgs:
    name: str  # Secrets Manager name, e.g. reference-service/prod/app
    webhook_url: pulumi.Input[str]
    webhook_signing_secret: pulumi.Input[str] | None
    redis_auth_token: pulumi.Input[str] | None
    preview_admin: bool
    # Keep a deleted secret recoverable for a week (prod) or free the name at once.
    recovery_window_days: int


class AppSecrets(pulumi.ComponentResource):
    arn: pulumi.Output[str]
    secret_name: str
    keys: frozenset[str]
    # dev only: a separate secret the preview stacks may read (and nothing else of dev's).
    preview_admin_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: AppSecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:infra:AppSecrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def password(purpose: str, length: int = 40) -> pulumi.Output[str]:
            return random.RandomPassword(f"{name}-{purpose}", length=length, special=False, opts=child).result

        values: dict[str, pulumi.Input[str]] = {
            "app_password": password("app"),
            "migrator_password": password("migrator"),
            "jwt_secret": password("jwt", 64),
            "webhook_url": args.webhook_url,
        }
        if args.redis_auth_token is not None:
            values["redis_auth_token"] = args.redis_auth_token
        if args.webhook_signing_secret is not None:
            values["webhook_signing_secret"] = args.webhook_signing_secret

        def json_secret(
            resource: str,
            version: str,
            secret_name: str,
            description: str,
            value: dict[str, pulumi.Input[str]],
        ) -> aws.secretsmanager.Secret:
            secret = aws.secretsmanager.Secret(
                resource,
                name=secret_name,
                description=description,
                recovery_window_in_days=args.recovery_window_days,
                opts=child,
            )
            aws.secretsmanager.SecretVersion(
                version,
                secret_id=secret.id,
                # The random passwords are secret Outputs, so the JSON is one too (never plain in state).
                secret_string=pulumi.Output.json_dumps(value),
                opts=child,
            )
            return secret

        secret = json_secret(
            f"{name}-secret",
            f"{name}-version",
            args.name,
            "reference-service: role passwords, JWT key, webhook (read by External Secrets)",
            values,
        )
        self.preview_admin_arn = None
        if args.preview_admin:
            admin = json_secret(
                f"{name}-preview-admin",
                f"{name}-preview-admin",
                f"{args.name}/preview-admin",
                "reference-service: the role preview stacks create their databases with",
                {"preview_admin_password": password("preview-admin")},
            )
            self.preview_admin_arn = admin.arn
        self.arn = secret.arn
        self.secret_name = args.name
        self.keys = frozenset(values)
        self.register_outputs({"arn": secret.arn})
