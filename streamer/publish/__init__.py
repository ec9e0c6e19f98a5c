"""publish: alerts and dead letters to Kafka, acks=all, delivery futures tracked."""
