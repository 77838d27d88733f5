"""Tests of the monitoring product: rules, alerts, Alertmanager, dashboards, compose."""
