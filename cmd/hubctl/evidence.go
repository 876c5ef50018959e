package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"lienthong/envelope"
	"lienthong/envelope/dsig"
	"lienthong/envelope/trust"
	"lienthong/routing/evidence/logverify"
)

// maxBundle bounds the bundle file hubctl reads.
const maxBundle = 1 << 30

// cmdEvidence is `hubctl evidence verify BUNDLE --hub-cert PEM`: check an
// evidence bundle offline, trusting only the hub's evidence certificate.
func cmdEvidence(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("cách dùng / usage: hubctl evidence verify BUNDLE.zip --hub-cert PEM")
	}
	fs := flag.NewFlagSet("evidence verify", flag.ContinueOnError)
	hubCert := fs.String("hub-cert", os.Getenv("LT_HUB_CERT"), "the hub's evidence certificate (PEM)")
	var bundlePath string
	rest := args[1:]
	if len(rest) > 0 && len(rest[0]) > 0 && rest[0][0] != '-' {
		bundlePath, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if bundlePath == "" && fs.NArg() == 1 {
		bundlePath = fs.Arg(0)
	}
	if bundlePath == "" || *hubCert == "" {
		return errors.New("cách dùng / usage: hubctl evidence verify BUNDLE.zip --hub-cert PEM")
	}
	cb, err := os.ReadFile(*hubCert)
	if err != nil {
		return err
	}
	cert, err := logverify.ParseCertPEM(cb)
	if err != nil {
		return fmt.Errorf("--hub-cert %s: %w", *hubCert, err)
	}
	f, err := os.Open(bundlePath)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxBundle+1))
	f.Close()
	if err != nil {
		return err
	}
	if len(b) > maxBundle {
		return fmt.Errorf("%s: larger than %d bytes", bundlePath, maxBundle)
	}
	rep, err := logverify.VerifyBundle(b, cert, logverify.BundleOptions{
		VerifySignatures: verifySignatures, VerifyTimestamp: logverify.VerifyTimestampToken})
	for _, line := range rep.Checked {
		fmt.Fprintf(out, "  ✓ %s\n", line)
	}
	if err != nil {
		var pe *logverify.PartError
		if errors.As(err, &pe) {
			fmt.Fprintf(out, "KHÔNG HỢP LỆ / INVALID: %s\n  %v\n", pe.Part, pe.Err)
			return fmt.Errorf("bằng chứng không hợp lệ / invalid evidence: %s", pe.Part)
		}
		return err
	}
	fmt.Fprintf(out, "HỢP LỆ / VALID: %s — %d receipts proven by checkpoint %d of %s\n", bundlePath, rep.Receipts,
		rep.Checkpoint.Size, rep.Checkpoint.Origin)
	return nil
}

// verifySignatures checks the document's XML-DSig signature offline against
// the bundle's trust anchors, at the time the hub accepted it.
func verifySignatures(doc, trustPEM []byte, at time.Time) (string, error) {
	d, err := envelope.Parse(doc, envelope.Limits{})
	if err != nil {
		return "", fmt.Errorf("document does not parse: %w", err)
	}
	loc := dsig.RootChild
	if d.Format == envelope.FormatEdXML || d.Format == envelope.FormatEdXMLStatus {
		loc = dsig.EdXMLHeader
	}
	store := trust.NewStore()
	if len(trustPEM) > 0 {
		if err := store.AddPEM("bundle", trust.PolicyRecord, trustPEM); err != nil {
			return "", err
		}
	} else if err := store.Add(&trust.Domain{Name: "bundle", Policy: trust.PolicyRecord}); err != nil {
		return "", err
	}
	v := dsig.Verifier{Trust: store, Now: func() time.Time { return at }}
	rep, _, err := v.Verify(context.Background(), doc, "bundle", dsig.Options{Location: loc})
	if err != nil {
		return "", err
	}
	switch rep.Outcome {
	case dsig.OutcomeValid:
		return fmt.Sprintf("XML-DSig valid at %s, signer %q, chain to %q", at.Format(time.RFC3339),
			rep.Signer.Subject.CommonName, rep.Chain[len(rep.Chain)-1].Subject.CommonName), nil
	case dsig.OutcomeAbsent, dsig.OutcomePlaceholder:
		return "the document carries no XML-DSig signature (" + rep.Outcome + ")", nil
	}
	return "", fmt.Errorf("signature %s: %s %s", rep.Outcome, rep.Code, rep.Reason)
}

// logConsistency is `hubctl log consistency --old CHECKPOINT_FILE --hub-cert PEM`:
// fetch the server's checkpoint and the consistency proof from the old one
// and check both signatures and the proof.
func (c *client) logConsistency(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("log consistency", flag.ContinueOnError)
	old := fs.String("old", "", "a checkpoint saved earlier (GET /v1/log/checkpoint)")
	hubCert := fs.String("hub-cert", os.Getenv("LT_HUB_CERT"), "the hub's evidence certificate (PEM)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *old == "" || *hubCert == "" {
		return errors.New("cách dùng / usage: hubctl log consistency --server URL --old CHECKPOINT_FILE --hub-cert PEM")
	}
	cb, err := os.ReadFile(*hubCert)
	if err != nil {
		return err
	}
	cert, err := logverify.ParseCertPEM(cb)
	if err != nil {
		return fmt.Errorf("--hub-cert %s: %w", *hubCert, err)
	}
	ob, err := os.ReadFile(*old)
	if err != nil {
		return err
	}
	oldCP, err := logverify.VerifyCheckpointWithCert(string(ob), cert)
	if err != nil {
		return fmt.Errorf("KHÔNG HỢP LỆ / INVALID: checkpoint cũ / old checkpoint %s: %w", *old, err)
	}
	nb, _, err := c.do(ctx, http.MethodGet, "/v1/log/checkpoint", nil)
	if err != nil {
		return err
	}
	newCP, err := logverify.VerifyCheckpointWithCert(string(nb), cert)
	if err != nil {
		return fmt.Errorf("KHÔNG HỢP LỆ / INVALID: checkpoint của máy chủ / the server's checkpoint: %w", err)
	}
	if newCP.Size < oldCP.Size {
		return fmt.Errorf("KHÔNG HỢP LỆ / INVALID: the log shrank from %d to %d leaves", oldCP.Size, newCP.Size)
	}
	pb, _, err := c.do(ctx, http.MethodGet, "/v1/log/proof/consistency?from="+strconv.FormatUint(oldCP.Size, 10)+
		"&to="+strconv.FormatUint(newCP.Size, 10), nil)
	if err != nil {
		return err
	}
	var p struct {
		Hashes [][]byte `json:"hashes"`
	}
	if err := json.Unmarshal(pb, &p); err != nil {
		return fmt.Errorf("consistency proof: %w", err)
	}
	if err := logverify.VerifyConsistency(oldCP.Size, newCP.Size, p.Hashes, oldCP.Root, newCP.Root); err != nil {
		return fmt.Errorf("KHÔNG HỢP LỆ / INVALID: the server's log does not extend the old checkpoint: %w", err)
	}
	fmt.Fprintf(c.out, "HỢP LỆ / VALID: the log of %s at size %d (root %x) extends the old checkpoint at size %d (root %x)\n",
		newCP.Origin, newCP.Size, newCP.Root, oldCP.Size, oldCP.Root)
	return nil
}

// fetchBundle is `hubctl --as auditor evidence fetch ID [-o FILE]`.
func (c *client) fetchBundle(ctx context.Context, args []string) error {
	if len(args) < 1 {
		return errors.New("cách dùng / usage: hubctl --as auditor evidence fetch ID [-o evidence.zip]")
	}
	id := args[0]
	fs := flag.NewFlagSet("evidence fetch", flag.ContinueOnError)
	o := fs.String("o", "evidence-"+id+".zip", "output file")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	b, _, err := c.do(ctx, http.MethodGet, "/v1/audit/documents/"+id+"/evidence", nil)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*o, b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "Đã lưu gói bằng chứng / evidence bundle saved: %s (%d bytes)\n  Kiểm tra / verify: hubctl evidence verify %s --hub-cert HUB-EVIDENCE-CERT.pem\n", *o, len(b), *o)
	return nil
}
