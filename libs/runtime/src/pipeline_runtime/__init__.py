"""Runtime pieces every service shares: logging, Kafka adapters, the outbound address guard."""
