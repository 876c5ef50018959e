package ledger

import (
	"context"
	"crypto/sha256"
	"slices"
	"testing"
)

func TestUpsertAxisOrgan(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	for _, test := range []struct {
		name, code, orgName string
		old                 []string
		changed             bool
	}{
		{"new axis organ", "000.00.00.G91", "Bộ Thử nghiệm", []string{"G91"}, true},
		{"same again", "000.00.00.G91", "Bộ Thử nghiệm", []string{"G91"}, false},
		{"renamed", "000.00.00.G91", "Bộ Thử nghiệm mới", []string{"G91"}, true},
		{"an NA organ is never taken over", "000.00.00.C01", "taken over?", nil, false},
	} {
		t.Run(test.name, func(t *testing.T) {
			changed, err := l.UpsertAxisOrgan(ctx, test.code, test.orgName, test.old)
			if err != nil || changed != test.changed {
				t.Fatalf("changed %v, err %v", changed, err)
			}
		})
	}
	for _, code := range []string{"G91", "000.00.00.G91"} { // old and new code: one organ
		o, err := l.Organ(ctx, code)
		if err != nil || o.Code != "000.00.00.G91" || o.Channel != ChannelAxis || o.Name != "Bộ Thử nghiệm mới" {
			t.Fatalf("Organ(%s) = %+v, %v", code, o, err)
		}
	}
	if o, _ := l.Organ(ctx, "000.00.00.C01"); o.Channel != ChannelPush || o.Name != "A" {
		t.Fatalf("NA organ changed: %+v", o)
	}
}

func TestRecordAxisInboundAndOutbound(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	if _, err := l.UpsertAxisOrgan(ctx, "000.00.00.G91", "Bộ Thử nghiệm", []string{"G91"}); err != nil {
		t.Fatal(err)
	}
	orig, err := l.Accept(ctx, doc("000.00.00.C01,2026/11/22,1/X", "original"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("status"))
	st, err := l.Accept(ctx, NewDocument{Sender: "000.00.00.G91", DocRef: "000.00.00.C01,2026/11/22,1/X#status:03:aa",
		Format: "edxml-status", Recipients: []string{"000.00.00.C01"}, Raw: []byte("status"), SHA256: sum[:]})
	if err != nil {
		t.Fatal(err)
	}
	status := &AxisStatus{OrigSender: "000.00.00.C01", OrigDocRef: "000.00.00.C01,2026/11/22,1/X", From: "000.00.00.G91", Code: "03"}
	for i, axisID := range []string{"a1", "a1", "a2"} { // a repeat, then the same status under another axis docId
		got, err := l.RecordAxisInbound(ctx, AxisInbound{SystemID: "sys", AxisDocID: axisID, DocumentID: st.ID, Status: status})
		if err != nil || got != orig.ID {
			t.Fatalf("#%d: original %q, %v", i, got, err)
		}
	}
	unknown := *status
	unknown.OrigDocRef = "nope"
	if got, err := l.RecordAxisInbound(ctx, AxisInbound{SystemID: "sys", AxisDocID: "a3", DocumentID: st.ID, Status: &unknown}); err != nil || got != "" {
		t.Fatalf("unknown original: %q, %v", got, err)
	}
	kinds := func() []string {
		evs, err := l.Events(ctx, orig.ID)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range evs {
			out = append(out, e.Kind)
		}
		return out
	}
	if k := kinds(); !slices.Equal(k, []string{"accepted", EventAxisStatus}) {
		t.Fatalf("events %v: want exactly one axis_status", k)
	}

	key := orig.ID + "/000.00.00.G91"
	if sent, err := l.AxisSent(ctx, key); err != nil || sent {
		t.Fatalf("sent before: %v %v", sent, err)
	}
	for range 2 {
		if err := l.RecordAxisOutbound(ctx, AxisOutbound{Key: key, DocumentID: orig.ID, Recipient: "000.00.00.G91",
			MessageType: "edoc", SystemID: "sys", AxisDocID: "x1", EventKind: EventAxisSent}); err != nil {
			t.Fatal(err)
		}
	}
	if sent, err := l.AxisSent(ctx, key); err != nil || !sent {
		t.Fatalf("sent after: %v %v", sent, err)
	}
	if k := kinds(); !slices.Equal(k, []string{"accepted", EventAxisStatus, EventAxisSent}) {
		t.Fatalf("events %v: want one axis_sent", k)
	}
	if err := l.RecordAxisOutbound(ctx, AxisOutbound{Key: "k", DocumentID: orig.ID, MessageType: "fax", EventKind: EventAxisSent}); err == nil {
		t.Fatal("messagetype fax accepted")
	}
}
