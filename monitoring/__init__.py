"""Metrics of the worker: indicator figures read at scrape time, pipeline counters; the
Prometheus rules, Alertmanager and Grafana configuration beside them. Never imports streams/."""
