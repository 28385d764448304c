"""The validators wrapped as pulumi-policy policies (building them starts nothing)."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra.policy.validators import (
    RESOURCE_VALIDATORS,
    STACK_VALIDATORS,
    Resource,
    ResourceValidator,
    StackValidator,
)


def _resource(args: ResourceValidationArgs | PolicyResource) -> Resource:
    return Resource(type=args.resource_type, props=args.props, protect=bool(args.opts.protect))


def _resource_policy(name: str, description: str, validate: ResourceValidator) -> ResourceValidationPolicy:
    def run(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for problem in validate(_resource(args)):
            report_violation(problem, None)

    return ResourceValidationPolicy(
        name=name, description=description, validate=run, enforcement_level=EnforcementLevel.MANDATORY
    )


def _stack_policy(name: str, description: str, validate: StackValidator) -> StackValidationPolicy:
    def run(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for problem in validate([_resource(r) for r in args.resources]):
            report_violation(problem, None)

    return StackValidationPolicy(
        name=name, description=description, validate=run, enforcement_level=EnforcementLevel.MANDATORY
    )


def all_policies() -> list[Policy]:
    return [
        *(_resource_policy(name, text, fn) for name, (text, fn) in RESOURCE_VALIDATORS.items()),
        *(_stack_policy(name, text, fn) for name, (text, fn) in STACK_VALIDATORS.items()),
    ]
