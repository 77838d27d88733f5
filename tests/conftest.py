"""The fixtures of every suite, as plugins: nothing imports a conftest.

tests.kafka_fixtures: the session's Kafka broker (real Apache Kafka in CI);
tests.monitoring.tools: promtool, amtool, Alertmanager and the metric contract;
tests.processors.reports: the batch report's figures of hand-built events.
"""

pytest_plugins = ["tests.kafka_fixtures", "tests.monitoring.tools", "tests.processors.reports"]
