"""Grafana dashboards of sunes-stream, as code.

`dashboards_src/` builds them with grafana-foundation-sdk (Grafana 11.6 build);
`python -m monitoring.grafana.generate` writes `dashboards/*.json`, which Grafana loads
through `provisioning/`.
"""
