// Package intake is the accept path every adapter shares: it parses the
// submitted bytes (envelope), runs the verification step, checks that the
// caller may speak for the sender and that every recipient is in the
// directory, and records the document in the ledger's accept transaction. It
// answers only after that transaction has committed; on any refusal nothing
// is stored but a security event.
package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"lienthong/envelope"
	"lienthong/envelope/dsig"
	"lienthong/envelope/verify"
	"lienthong/routing/ledger"
)

// Code is a stable rejection code of the intake stage (envelope codes are
// passed through unchanged).
type Code string

// Rejection codes of this stage.
const (
	CodeForbiddenSender  Code = "forbidden_sender"  // caller may not submit as the envelope's sender
	CodeUnknownSender    Code = "unknown_sender"    // the sender organ is not in the directory
	CodeUnknownRecipient Code = "unknown_recipient" // a recipient organ is not in the directory
	CodeConflict         Code = "document_id_conflict"
	CodeVerification     Code = "verification_failed"
)

// Error is a typed refusal of the intake stage.
type Error struct {
	Code Code
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("intake: %s: %s: %v", e.Code, e.Msg, e.Err)
	}
	return fmt.Sprintf("intake: %s: %s", e.Code, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Verifier is the verification step: it checks a parsed document's
// signatures under the hub's policy for the channel it came through and
// returns the report to keep beside it (envelope/verify implements it). A
// non-nil error refuses the document; a *dsig.VerifyError carries the stable
// rejection code.
type Verifier interface {
	Check(ctx context.Context, doc *envelope.Document, channel string) (report any, err error)
}

// Config wires a Service.
type Config struct {
	Limits   envelope.Limits
	Verifier Verifier // nil: reports "not_checked"
	Now      func() time.Time
	Logger   *slog.Logger
}

// Service accepts documents.
type Service struct {
	l   *ledger.Ledger
	cfg Config
}

// New returns a Service.
func New(l *ledger.Ledger, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{l: l, cfg: cfg}
}

// Submission is one document handed to the hub.
type Submission struct {
	Raw []byte
	// Caller is the organ code of the authenticated caller. The envelope's
	// sender must be that organ. Empty only for trusted adapters (the axis
	// poller), which set Channel instead.
	Caller string
	// Channel names the edge the document came through ("api", "axis", …).
	Channel string
	// Source is an optional idempotency key of the edge (e.g. the axis docId).
	Source string
	// Spool, when set, is a body above the edge's blob threshold, spooled
	// to a private file while it was read and hashed; Raw is then nil and
	// the body is parsed, verified and stored as a stream (spool.go).
	Spool *Spool
	// ExcludeChannel drops the recipients whose directory channel it names,
	// and the recipients the directory does not know: the axis delivers a
	// package to each of its other recipients itself, so the hub takes only
	// the NA recipients of what it polls from the axis. At least one must remain.
	ExcludeChannel string
}

// Result is an accepted submission.
type Result struct {
	ID        string
	Duplicate bool
	Document  *envelope.Document
}

// Submit runs the accept path. The error is an *envelope.Error, an *Error, or
// ledger.ErrUnavailable (wrapped) when the database is down.
func (s *Service) Submit(ctx context.Context, sub Submission) (Result, error) {
	res, err := s.submit(ctx, sub)
	if err != nil {
		s.refused(ctx, sub, err)
	}
	return res, err
}

func (s *Service) submit(ctx context.Context, sub Submission) (Result, error) {
	doc, err := s.parse(sub)
	if err != nil {
		return Result{}, err
	}
	sender, err := s.l.Organ(ctx, doc.From.Code)
	if errors.Is(err, ledger.ErrUnknownOrgan) {
		return Result{}, &Error{Code: CodeUnknownSender, Msg: fmt.Sprintf("sender organ %s is not in the directory", doc.From.Code)}
	}
	if err != nil {
		return Result{}, err
	}
	if sub.Caller != "" && sender.Code != sub.Caller {
		return Result{}, &Error{Code: CodeForbiddenSender,
			Msg: fmt.Sprintf("caller %s may not submit as %s", sub.Caller, doc.From.Code)}
	}
	recipients := make([]string, 0, len(doc.To))
	var unknown []string
	for _, to := range doc.To {
		o, err := s.l.Organ(ctx, to.Code)
		if errors.Is(err, ledger.ErrUnknownOrgan) {
			if sub.ExcludeChannel == "" {
				unknown = append(unknown, to.Code)
			}
			continue
		}
		if err != nil {
			return Result{}, err
		}
		if sub.ExcludeChannel != "" && o.Channel == sub.ExcludeChannel {
			continue
		}
		if !slices.Contains(recipients, o.Code) { // old and new codes of one organ → one recipient
			recipients = append(recipients, o.Code)
		}
	}
	if len(unknown) > 0 {
		return Result{}, &Error{Code: CodeUnknownRecipient, Msg: fmt.Sprintf("recipient organ(s) not in the directory: %v", unknown)}
	}
	if len(recipients) == 0 {
		return Result{}, &Error{Code: CodeUnknownRecipient, Msg: fmt.Sprintf("no recipient is served through a channel other than %s", sub.ExcludeChannel)}
	}
	var report any = map[string]string{"outcome": "not_checked"}
	var stored any // the full report, kept in its own table
	var evidence []ledger.EvidenceBlob
	if s.cfg.Verifier != nil {
		if report, err = s.check(ctx, doc, sub); err != nil {
			var ve *dsig.VerifyError
			if errors.As(err, &ve) {
				return Result{}, &Error{Code: Code(ve.Code), Msg: ve.Reason, Err: err}
			}
			return Result{}, err
		}
		stored = report
		if r, ok := report.(*verify.Report); ok { // its certificates and revocation evidence are kept once each
			stored, evidence = storedForm(r)
		}
		if sm, ok := report.(interface{ Summary() map[string]any }); ok {
			report = sm.Summary()
		}
	}
	sum := digest(sub)
	nd := ledger.NewDocument{
		Sender: sender.Code, DocRef: doc.DocumentID, Format: string(doc.Format), Subject: doc.Subject,
		CodeNumber: doc.CodeNumber, CodeNotation: doc.CodeNotation, PromulgationDate: doc.PromulgationDate,
		BusinessType: doc.BusinessDocType, Recipients: recipients, Raw: sub.Raw, SHA256: sum[:],
		Source: sub.Source, Verification: stored, Evidence: evidence,
		Meta: map[string]any{"attachments": doc.Attachments, "warnings": doc.Warnings,
			"verification": report, "channel": sub.Channel},
	}
	if doc.Status != nil {
		// A status package carries the original's DocumentId; several
		// statuses of one organ about one document (01, 03, 06 …) are
		// versions under that key, numbered by the flow planner (flows.go).
		nd.StatusCode = doc.Status.Code
	}
	if len(doc.ResponseFor) > 0 {
		nd.ResponseFor = doc.ResponseFor[0].DocumentID
	}
	nd.Flow = flowOf(doc, recipients) // flows.go
	if sub.Spool != nil {
		f, err := sub.Spool.open()
		if err != nil {
			return Result{}, err
		}
		defer f.Close()
		nd.Body, nd.Size = f, sub.Spool.Size // copied into the blob store inside the accept transaction
	}
	acc, err := s.l.Accept(ctx, nd)
	if fe, ok := flowRefusal(err); ok {
		return Result{}, fe
	}
	if errors.Is(err, ledger.ErrConflict) {
		return Result{}, &Error{Code: CodeConflict, Err: err,
			Msg: fmt.Sprintf("DocumentId %q was already submitted by %s with different content", doc.DocumentID, sender.Code)}
	}
	if err != nil {
		return Result{}, err
	}
	return Result{ID: acc.ID, Duplicate: acc.Duplicate, Document: doc}, nil
}

// refused logs a refusal and queues it for lt.security; it never fails the call.
func (s *Service) refused(ctx context.Context, sub Submission, err error) {
	code := string(envelope.CodeOf(err))
	var ie *Error
	if errors.As(err, &ie) {
		code = string(ie.Code)
	}
	if code == "" {
		return // infrastructure error, not a refusal
	}
	key := sub.Caller
	if key == "" {
		key = sub.Channel
	}
	s.cfg.Logger.InfoContext(ctx, "submission refused", slog.String("caller", sub.Caller),
		slog.String("channel", sub.Channel), slog.String("code", code))
	sum, size := digest(sub), int64(len(sub.Raw))
	if sub.Spool != nil {
		size = sub.Spool.Size
	}
	_ = s.l.SecurityEvent(ctx, key, map[string]any{"kind": "submission_refused", "code": code,
		"caller": sub.Caller, "channel": sub.Channel, "size": size, "sha256": fmt.Sprintf("%x", sum),
		"error": err.Error(), "at": s.cfg.Now().UTC()})
}

// storedForm is the form of a verification report the ledger stores: DER
// values by reference, each handed over once as a blob (verify.Report.Stored).
func storedForm(r *verify.Report) (*verify.Report, []ledger.EvidenceBlob) {
	out, blobs := r.Stored()
	evidence := make([]ledger.EvidenceBlob, len(blobs))
	for i, b := range blobs {
		evidence[i] = ledger.EvidenceBlob{SHA256: b.SHA256, Kind: b.Kind, DER: b.DER}
	}
	return out, evidence
}
