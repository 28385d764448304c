"""``make bench``: the service against bare FastAPI baselines, on pinned cores (see ``run.py``)."""
