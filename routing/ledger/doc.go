// Package ledger is the hub's durable record in PostgreSQL: the directory of
// organs and the credentials that map callers to them, every accepted
// document with its original bytes, one delivery row per recipient with its
// state, the append-only event history, and the transactional outbox from
// which the relay feeds Kafka. Every stage of the path writes its state change,
// its event and its outbox message in one transaction, so a crash anywhere
// loses nothing and a repeat changes nothing. Events need no outbox message:
// each becomes a leaf of the evidence log, and lt.events is published from
// there (routing/relay.Events).
package ledger
