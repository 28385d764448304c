"""Reference FastAPI service of the platform kit: projects, users, RBAC."""
