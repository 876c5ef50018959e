// Package routing holds the types shared by the stages of the pipeline that
// moves an accepted document to its recipients: the delivery task a worker
// hands to a channel, and the errors by which a channel tells the worker
// whether to retry. The stages themselves live in sub-packages (ledger, bus,
// relay, router, delivery); adapters implement Channel.
package routing
