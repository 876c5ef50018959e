// Package delivery is the last stage of the path: it reads delivery tasks from
// lt.deliver, reads each due delivery from the ledger, hands the original bytes
// to the recipient's channel (webhook, inbox, axis, partner) under its
// idempotency key, and then records the attempt and its outcome together:
// delivered, retrying at a back-off time, or dead. Tasks of one recipient run
// one after another in sequence order (a lane per recipient hash); different
// recipients run in parallel, so one slow endpoint does not hold the others.
// A Scheduler re-queues retries when they fall due and recovers work whose
// Kafka message was lost or whose worker crashed.
package delivery
