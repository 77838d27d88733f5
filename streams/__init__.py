"""Everything that moves data: the stream worker (worker/), the `sunes` command (cli/), broker
launchers (brokers/), Kafka client settings shared by all (kafka_clients), and the worker
process helper of tests and benchmarks (testing)."""
