"""The Pulumi program of the platform kit (`pulumi up`); importing it creates nothing.

Entry point: infra/__main__.py -> infra.program.main(). Components: infra/components/.
Policies: infra/policy/. Previews and their sweeper: infra/previews.py.
"""
