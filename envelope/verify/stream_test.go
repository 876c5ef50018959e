package verify

import (
	"bytes"
	"context"
	"io"
	"testing"

	"lienthong/envelope"
	"lienthong/envelope/dsig"
)

// streamVerify runs VerifyStream over doc.Raw as the accept path does for a
// large body: doc re-read by envelope.ParseReader, the bytes opened anew per pass.
func streamVerify(t *testing.T, v *Verifier, doc *envelope.Document, channel string) (*Report, error) {
	t.Helper()
	raw := doc.Raw
	sdoc, err := envelope.ParseReader(bytes.NewReader(raw), int64(len(raw)), envelope.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	opens := 0
	rep, err := v.VerifyStream(context.Background(), sdoc, func() (io.ReadCloser, error) {
		opens++
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, int64(len(raw)), channel)
	if rep == nil {
		t.Fatalf("no report: %v", err)
	}
	return rep, err
}

func TestVerifyStreamAttachmentsAreNotChecked(t *testing.T) {
	p := pki(t)
	good := signWith(t, fixture(t), p.RSALeaf)
	v, err := New(Config{Trust: store(t), Directory: dirMap{orgFrom: {Code: orgFrom, CertFingerprints: []string{Fingerprint(p.RSALeaf.Cert)}}},
		Attachments: AttachmentSignatures{}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := streamVerify(t, v, good, ChannelAPI)
	if err != nil || rep.Outcome != OutcomeValid {
		t.Fatalf("err %v, report %+v", err, rep)
	}
	if len(rep.Attachments) != len(good.Attachments) || len(rep.Attachments) == 0 {
		t.Fatalf("attachments %+v", rep.Attachments)
	}
	for _, a := range rep.Attachments {
		if a.Verdict != OutcomeNotChecked || a.Reason == "" {
			t.Errorf("attachment %+v: want not_checked with a reason", a)
		}
	}
	// Altered content: the digest pass refuses it, as in memory.
	bad := bytes.Replace(good.Raw, []byte("<edXML:DocumentId>000.00.00.C01,2026/03/02,15"), []byte("<edXML:DocumentId>000.00.00.C01,2026/03/02,16"), 1)
	if bytes.Equal(bad, good.Raw) {
		t.Fatal("fixture has no DocumentId")
	}
	badDoc, err := envelope.Parse(bad, envelope.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := streamVerify(t, v, badDoc, ChannelAPI); dsig.CodeOf(err) != dsig.CodeDigestMismatch {
		t.Fatalf("altered: %v", err)
	}
}
