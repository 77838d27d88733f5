"""The fixtures of every suite, as plugins: nothing imports a conftest.

tests.browser_tools: headless Chromium driven by Selenium (the pages);
tests.kafka_tools: the session's Kafka broker (real Apache Kafka in CI), per-test topics, workers;
tests.keycloak_tools: the session's Keycloak (OpenID provider), realms, users and their tokens;
tests.monitoring.tools: promtool, amtool, Alertmanager and the metric contract;
tests.processors.reports: the batch report's figures of hand-built events;
tests.streams.hl7.listening: a `sunes hl7 listen` on a test's topics, the HL7 fixture files.
"""

pytest_plugins = [
    "tests.browser_tools",
    "tests.kafka_tools",
    "tests.keycloak_tools",
    "tests.monitoring.tools",
    "tests.processors.reports",
    "tests.streams.hl7.listening",
]
