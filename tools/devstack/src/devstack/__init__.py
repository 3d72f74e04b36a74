"""Local stack without Docker: Kafka, PostgreSQL, migrations, topics and the services as processes."""
