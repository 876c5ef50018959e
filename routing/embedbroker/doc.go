// Package embedbroker is the Kafka-protocol broker that `hubd dev` and the
// tests run in-process: the lt.route, lt.deliver, lt.events, lt.dead and
// lt.security topics that carry document ids from the outbox relay to the
// router, the delivery workers and the console live here when no real Kafka
// is configured. It wraps franz-go's kfake as one broker node; clients
// (segmentio/kafka-go in the bus, kcat for a human) reach it over TCP like
// any Kafka. It is never the only copy of anything: the ledger is.
//
// With Config.DataDir, topics, records and group offsets are written to disk
// in kfake's own format, fsynced per produced batch and per offset commit
// (kfake.SyncWrites), so a restart, or a crash after the acknowledgement,
// keeps both the messages and where each consumer group was.
//
// Quirks of kfake met on the way:
//
//   - kfake always listens on 127.0.0.1:<port> and advertises its
//     listener's address. Start passes a kfake.ListenFn that binds exactly
//     Config.Listen; an unspecified host (0.0.0.0) is advertised as
//     127.0.0.1, since clients cannot dial 0.0.0.0.
//   - kfake defaults to three brokers and ten partitions; we run one broker
//     (replication factor 1) with Config.Partitions (8) for CreateTopics
//     with -1 partitions. kafka-go's Conn.CreateTopics sends v0 and works.
//   - Group session timeouts must lie within 6s..5m (kfake's defaults, as in
//     Kafka); kafka-go's default 30s fits. There is no initial rebalance
//     delay, so a lone consumer is assigned at once.
//   - kfake takes no lock on its data dir; Start takes an flock on
//     DataDir/LOCK and fails with ErrDataDirInUse if another broker holds it.
//   - If writing an offset commit to disk fails, kfake logs a warning and
//     still acknowledges the commit. Warnings reach Config.Logger.
//   - kfake's "info" log is per-request chatter; it is logged at debug.
package embedbroker
