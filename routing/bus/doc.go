// Package bus is the hub's Kafka side: topic names and creation, a batching
// producer used by the outbox relay, and a consume loop that hands batches of
// messages to a stage and commits their offsets only after the stage has made
// its effect durable. It speaks the Kafka protocol through segmentio/kafka-go,
// to real brokers or to the embedded one alike. Kafka carries ids, never
// document bodies.
package bus
