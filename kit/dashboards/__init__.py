"""The Grafana boards as data (model.py), one module per board; kit/dashboards_gen.py renders them."""
