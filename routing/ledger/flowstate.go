package ledger

import (
	"fmt"
	"slices"
)

// Business states of one (document, recipient) pair: the edXML workflow
// (edxml.md §8.2) as the hub tracks it. They are separate from the delivery
// states (accepted … acknowledged, retrying, dead), which say where the bytes
// are; business states say what the recipient has done with the document.
const (
	BizPending    = "pending"    // nothing reported yet
	BizArrived    = "arrived"    // 01 đã đến
	BizRefused    = "refused"    // 02 từ chối tiếp nhận (final)
	BizRegistered = "registered" // 03 đã tiếp nhận, vào sổ
	BizAssigned   = "assigned"   // 04 phân công
	BizProcessing = "processing" // 05 đang xử lý
	BizCompleted  = "completed"  // 06 hoàn thành (final)
	BizRecalled   = "recalled"   // 13 answered by 15: taken back (final)
	BizUpdated    = "updated"    // superseded by an update, type 2 (final)
	BizReplaced   = "replaced"   // superseded by a replacement, type 3 (final)
	// BizClosed is an aggregate only: every recipient is final, not all alike.
	BizClosed = "closed"
)

// Recall sub-state of a (document, recipient) pair.
const (
	RecallNone     = ""
	RecallPending  = "pending"  // 13 (or a revocation, type 1) sent, not answered
	RecallAccepted = "accepted" // answered by 15
	RecallRefused  = "refused"  // answered by 16
)

// Stable codes of the business-flow refusals (problem+json "code").
const (
	FlowUnknownOriginal   = "unknown_original"    // no such original document of that sender
	FlowNotRecipient      = "not_a_recipient"     // the organ is not a recipient of the original
	FlowIllegalTransition = "illegal_transition"  // the status does not follow from the current state
	FlowNoPendingRecall   = "no_pending_recall"   // 15/16 without a pending recall
	FlowRecalled          = "document_recalled"   // the document was taken back from this recipient
	FlowSuperseded        = "document_superseded" // the document was updated or replaced
)

// FlowError is a typed refusal of the business-flow state machine. Nothing is
// stored when it is returned.
type FlowError struct {
	Code string // one of the Flow* codes
	Msg  string
}

func (e *FlowError) Error() string { return "ledger: " + e.Code + ": " + e.Msg }

func flowErr(code, format string, args ...any) *FlowError {
	return &FlowError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// bizRow is the business state of one (document, recipient) pair.
type bizRow struct {
	State      string
	LastStatus string
	Statuses   []string // 01–06 recorded so far
	Recall     string
}

// statusState maps the processing codes to the state they lead to.
var statusState = map[string]string{
	"01": BizArrived, "02": BizRefused, "03": BizRegistered,
	"04": BizAssigned, "05": BizProcessing, "06": BizCompleted,
}

// rank orders the processing states; final states other than completed have none.
var rank = map[string]int{
	BizPending: 0, BizArrived: 1, BizRegistered: 3, BizAssigned: 4, BizProcessing: 5, BizCompleted: 6,
}

// transition is the state machine of one (document, recipient) pair: the
// state after status code arrives in state cur. dup means the status was
// already recorded (a repeat: nothing changes, no event). The rules:
//
//	01                 pending → arrived
//	02, 03             arrived → refused, registered      (so 02 or 03 before 01 is illegal)
//	04, 05, 06         registered|assigned|processing → assigned|processing|completed, never backwards
//	13 (or type 1)     any non-final state → recall pending
//	15                 recall pending → recalled           (final)
//	16                 recall pending → recall refused     (the state is unchanged)
//
// Nothing follows refused or completed except a recall of a completed
// document; nothing at all follows recalled, updated or replaced.
func transition(cur bizRow, code string) (next bizRow, dup bool, err *FlowError) {
	next = cur
	next.Statuses = slices.Clone(cur.Statuses)
	switch cur.State {
	case BizRecalled:
		if code == "15" {
			return cur, true, nil
		}
		return cur, false, flowErr(FlowRecalled, "the document was taken back from this recipient (status 15); status %s is not possible", code)
	case BizUpdated, BizReplaced:
		return cur, false, flowErr(FlowSuperseded, "the document was %s; report status %s on the new version", cur.State, code)
	}
	switch code {
	case "01", "02", "03", "04", "05", "06":
		if slices.Contains(cur.Statuses, code) {
			return cur, true, nil
		}
		to := statusState[code]
		switch {
		case cur.State == BizRefused:
			return cur, false, flowErr(FlowIllegalTransition, "reception was refused (02); status %s cannot follow", code)
		case cur.State == BizCompleted:
			return cur, false, flowErr(FlowIllegalTransition, "processing is completed (06); status %s cannot follow", code)
		case code == "01":
			if cur.State != BizPending {
				return cur, false, flowErr(FlowIllegalTransition, "status 01 cannot follow state %s", cur.State)
			}
		case code == "02" || code == "03":
			if cur.State != BizArrived {
				return cur, false, flowErr(FlowIllegalTransition, "status %s needs status 01 (arrived) first; state is %s", code, cur.State)
			}
		default: // 04, 05, 06
			if rank[cur.State] < rank[BizRegistered] {
				return cur, false, flowErr(FlowIllegalTransition, "status %s needs status 03 (registered) first; state is %s", code, cur.State)
			}
			if rank[to] < rank[cur.State] {
				return cur, false, flowErr(FlowIllegalTransition, "status %s would go back from %s", code, cur.State)
			}
		}
		next.State, next.LastStatus = to, code
		next.Statuses = append(next.Statuses, code)
		return next, false, nil
	case "13":
		if cur.Recall == RecallPending {
			return cur, true, nil
		}
		if cur.State == BizRefused {
			return cur, false, flowErr(FlowIllegalTransition, "the recipient refused the document (02); there is nothing to take back")
		}
		next.Recall, next.LastStatus = RecallPending, code
		return next, false, nil
	case "15", "16":
		if cur.Recall == RecallRefused && code == "16" {
			return cur, true, nil
		}
		if cur.Recall != RecallPending {
			return cur, false, flowErr(FlowNoPendingRecall, "status %s answers a recall (13), and none is pending", code)
		}
		next.LastStatus = code
		if code == "15" {
			next.State, next.Recall = BizRecalled, RecallAccepted
		} else {
			next.Recall = RecallRefused
		}
		return next, false, nil
	}
	return cur, false, flowErr(FlowIllegalTransition, "status %s is not part of the workflow", code)
}

// final reports whether no processing status can follow state s.
func final(s string) bool {
	switch s {
	case BizRefused, BizCompleted, BizRecalled, BizUpdated, BizReplaced:
		return true
	}
	return false
}

// aggregate is a document's business state over its recipients: the least
// advanced state among the recipients still in progress (not final, and
// completed counts as in progress so that one completed recipient does not
// hide others); when every recipient is in a final state, that state if they
// all agree, else closed.
func aggregate(states []string) string {
	if len(states) == 0 {
		return BizPending
	}
	best, found := "", false
	for _, s := range states {
		if final(s) && s != BizCompleted {
			continue
		}
		if !found || rank[s] < rank[best] {
			best, found = s, true
		}
	}
	if found {
		return best
	}
	for _, s := range states[1:] {
		if s != states[0] {
			return BizClosed
		}
	}
	return states[0]
}
