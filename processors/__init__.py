"""The pure core: facts merged from events, the join, every counting rule, monthly aggregates and
figures; where facts live (state, store, codec) and the collection batch and stream share.
Reaches no Faust, Kafka, HTTP or Prometheus."""
