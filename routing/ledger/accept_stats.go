package ledger

import "sync/atomic"

// AcceptStats counts the accept transactions this Ledger committed and the
// new documents they recorded (duplicates and refusals are not counted).
// Documents/Transactions is the mean group-commit batch size.
type AcceptStats struct {
	Transactions int64
	Documents    int64
}

// acceptCounters backs AcceptStats.
type acceptCounters struct {
	transactions, documents atomic.Int64
}

// AcceptStats returns the counters since New.
func (l *Ledger) AcceptStats() AcceptStats {
	return AcceptStats{Transactions: l.stats.transactions.Load(), Documents: l.stats.documents.Load()}
}
