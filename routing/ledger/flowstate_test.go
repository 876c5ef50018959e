package ledger

import (
	"slices"
	"testing"
)

// Every status in every state: the next state, a repeat, or the typed refusal.
func TestTransition(t *testing.T) {
	st := func(state string, codes ...string) bizRow { return bizRow{State: state, Statuses: codes} }
	withRecall := func(b bizRow, r string) bizRow { b.Recall = r; return b }
	cases := []struct {
		name    string
		cur     bizRow
		code    string
		state   string // wanted next state ("" = unchanged)
		recall  string
		dup     bool
		errCode string
	}{
		{"01 first", st(BizPending), "01", BizArrived, "", false, ""},
		{"01 again", st(BizArrived, "01"), "01", "", "", true, ""},
		{"02 after 01", st(BizArrived, "01"), "02", BizRefused, "", false, ""},
		{"02 before 01", st(BizPending), "02", "", "", false, FlowIllegalTransition},
		{"03 before 01", st(BizPending), "03", "", "", false, FlowIllegalTransition},
		{"03 after 01", st(BizArrived, "01"), "03", BizRegistered, "", false, ""},
		{"04 after 03", st(BizRegistered, "01", "03"), "04", BizAssigned, "", false, ""},
		{"05 skipping 04", st(BizRegistered, "01", "03"), "05", BizProcessing, "", false, ""},
		{"06 after 05", st(BizProcessing, "01", "03", "05"), "06", BizCompleted, "", false, ""},
		{"04 before 03", st(BizArrived, "01"), "04", "", "", false, FlowIllegalTransition},
		{"04 after 05 (backwards)", st(BizProcessing, "01", "03", "05"), "04", "", "", false, FlowIllegalTransition},
		{"03 after 04 is a repeat", st(BizAssigned, "01", "03", "04"), "03", "", "", true, ""},
		{"03 after refusal", st(BizRefused, "01", "02"), "03", "", "", false, FlowIllegalTransition},
		{"05 after completion", st(BizCompleted, "01", "03", "06"), "05", "", "", false, FlowIllegalTransition},
		{"01 after 03 is a repeat", st(BizRegistered, "01", "03"), "01", "", "", true, ""},
		{"13 on pending", st(BizPending), "13", "", RecallPending, false, ""},
		{"13 on completed", st(BizCompleted, "01", "03", "06"), "13", "", RecallPending, false, ""},
		{"13 twice", withRecall(st(BizArrived, "01"), RecallPending), "13", "", "", true, ""},
		{"13 on refused", st(BizRefused, "01", "02"), "13", "", "", false, FlowIllegalTransition},
		{"13 after a refused recall", withRecall(st(BizArrived, "01"), RecallRefused), "13", "", RecallPending, false, ""},
		{"15 answers 13", withRecall(st(BizArrived, "01"), RecallPending), "15", BizRecalled, RecallAccepted, false, ""},
		{"16 answers 13", withRecall(st(BizArrived, "01"), RecallPending), "16", BizArrived, RecallRefused, false, ""},
		{"15 without recall", st(BizArrived, "01"), "15", "", "", false, FlowNoPendingRecall},
		{"16 without recall", st(BizPending), "16", "", "", false, FlowNoPendingRecall},
		{"15 after 16", withRecall(st(BizArrived, "01"), RecallRefused), "15", "", "", false, FlowNoPendingRecall},
		{"16 twice", withRecall(st(BizArrived, "01"), RecallRefused), "16", "", "", true, ""},
		{"15 twice", withRecall(st(BizRecalled, "01"), RecallAccepted), "15", "", "", true, ""},
		{"status on recalled", withRecall(st(BizRecalled, "01"), RecallAccepted), "03", "", "", false, FlowRecalled},
		{"13 on recalled", withRecall(st(BizRecalled, "01"), RecallAccepted), "13", "", "", false, FlowRecalled},
		{"status on updated", st(BizUpdated, "01"), "03", "", "", false, FlowSuperseded},
		{"status on replaced", st(BizReplaced), "01", "", "", false, FlowSuperseded},
		{"unknown code", st(BizPending), "07", "", "", false, FlowIllegalTransition},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.cur.Statuses)
			next, dup, err := transition(tc.cur, tc.code)
			if !slices.Equal(tc.cur.Statuses, before) {
				t.Fatalf("transition changed its input")
			}
			if tc.errCode != "" {
				if err == nil || err.Code != tc.errCode {
					t.Fatalf("err = %v, want %s", err, tc.errCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected refusal: %v", err)
			}
			if dup != tc.dup {
				t.Fatalf("dup = %v, want %v", dup, tc.dup)
			}
			if dup {
				return
			}
			want := tc.state
			if want == "" {
				want = tc.cur.State
			}
			if next.State != want {
				t.Errorf("state %s, want %s", next.State, want)
			}
			if tc.recall != "" && next.Recall != tc.recall {
				t.Errorf("recall %q, want %q", next.Recall, tc.recall)
			}
			if next.LastStatus != tc.code {
				t.Errorf("last status %q, want %q", next.LastStatus, tc.code)
			}
			if _, processing := statusState[tc.code]; processing && next.Statuses[len(next.Statuses)-1] != tc.code {
				t.Errorf("statuses %v do not end with %s", next.Statuses, tc.code)
			}
		})
	}
}

func TestAggregate(t *testing.T) {
	cases := []struct {
		states []string
		want   string
	}{
		{nil, BizPending},
		{[]string{BizArrived}, BizArrived},
		{[]string{BizCompleted, BizArrived}, BizArrived},
		{[]string{BizCompleted, BizCompleted}, BizCompleted},
		{[]string{BizCompleted, BizRecalled}, BizCompleted},
		{[]string{BizProcessing, BizRefused}, BizProcessing},
		{[]string{BizRecalled, BizRecalled}, BizRecalled},
		{[]string{BizUpdated, BizUpdated}, BizUpdated},
		{[]string{BizRecalled, BizRefused}, BizClosed},
		{[]string{BizPending, BizRegistered, BizAssigned}, BizPending},
	}
	for _, tc := range cases {
		if got := aggregate(tc.states); got != tc.want {
			t.Errorf("aggregate(%v) = %s, want %s", tc.states, got, tc.want)
		}
	}
}

func TestDueAt(t *testing.T) {
	got := dueAt("2026/03/16")
	if got == nil || got.Format("2006-01-02T15:04Z07:00") != "2026-03-16T17:00Z" {
		t.Fatalf("dueAt = %v, want the end of 16 March in Vietnam (17:00 UTC)", got)
	}
	for _, bad := range []string{"", "2014/02/30", "16/03/2026", "soon"} {
		if dueAt(bad) != nil {
			t.Errorf("dueAt(%q) should be nil", bad)
		}
	}
}
