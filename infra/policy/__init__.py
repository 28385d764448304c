"""CrossGuard policy pack of the platform (`pulumi up --policy-pack infra/policy`).

validators.py holds the rules as plain functions; policies.py wraps them for pulumi-policy;
__main__.py (run by the CLI only) serves the pack. Importing this package serves nothing.
"""
