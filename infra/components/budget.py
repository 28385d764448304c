"""An AWS budget per environment (or pull request): alerts on actual and on forecast spend."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.stack_config import Budget as BudgetSettings


@dataclass(frozen=True)
class BudgetArgs:
    name: str
    settings: BudgetSettings
    # The cost-allocation tag this budget counts (the stack transform puts it on every resource).
    tag_key: str
    tag_value: str


class Budget(pulumi.ComponentResource):
    def __init__(self, name: str, args: BudgetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:infra:Budget", name, None, opts)
        settings = args.settings
        notifications = [
            aws.budgets.BudgetNotificationArgs(
                notification_type=kind,
                comparison_operator="GREATER_THAN",
                threshold=percent,
                threshold_type="PERCENTAGE",
                subscriber_email_addresses=list(settings.recipients),
            )
            for kind, percent in (
                ("ACTUAL", settings.actual_alert_percent),
                ("FORECASTED", settings.forecast_alert_percent),
            )
        ]
        aws.budgets.Budget(
            f"{name}-monthly",
            name=args.name,
            budget_type="COST",
            limit_amount=f"{settings.monthly_limit_usd:.2f}",
            limit_unit="USD",
            time_unit="MONTHLY",
            # Only what carries this stack's tag (the tag must be activated for cost allocation once
            # per account: docs/pulumi.md, "Budgets and cost tags").
            cost_filters=[
                aws.budgets.BudgetCostFilterArgs(
                    name="TagKeyValue", values=[f"user:{args.tag_key}${args.tag_value}"]
                )
            ],
            notifications=notifications,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
