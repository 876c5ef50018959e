package axis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Acceptor is the hub's accept path as the poller uses it. AcceptFromAxis must be idempotent on
// (systemID, axisDocID): a second call with the same pair returns the same document id.
type Acceptor interface {
	AcceptFromAxis(ctx context.Context, systemID, axisDocID string, raw []byte) (docID string, err error)
}

// DefaultPollInterval is used when Poller.Interval is zero.
const DefaultPollInterval = 30 * time.Second

// Poller takes packages from the axis into the hub: for messagetype "edoc"
// and then "status" it lists what waits for this system, fetches each
// package, hands its exact bytes to the Acceptor, and only after the Acceptor
// returned nil (the package is durable) marks it "done" on the axis.
//
// If the Acceptor's error is permanent (IsPermanent), the package is marked
// "fail" with the error as the reason (UpdateStatusReason) and logged; any other failure (listing, getEdoc, a
// transient accept error, updateStatus) leaves the package on the axis for
// the next poll. Because a crash or a lost answer between the accept and
// updateStatus makes the axis serve the same docId again, the Acceptor must
// be idempotent on (systemID, axisDocID).
type Poller struct {
	Client   *Client
	Acceptor Acceptor
	// Interval is the pause between polls; 0 means DefaultPollInterval.
	Interval time.Duration
	// IsPermanent classifies the Acceptor's errors; nil treats every error as
	// transient, so nothing is ever marked "fail".
	IsPermanent func(error) bool
	// Logger; nil discards.
	Logger *slog.Logger
}

// PollResult counts what one poll did.
type PollResult struct {
	Listed   int // distinct docIds listed
	Accepted int // accepted and marked done
	Failed   int // refused permanently and marked fail
	Deferred int // left for the next poll
}

// Run polls until ctx is done, then returns nil. Failures are logged and
// retried at the next poll; Run returns an error only for a misconfigured Poller.
func (p *Poller) Run(ctx context.Context) error {
	if p.Client == nil || p.Acceptor == nil {
		return errors.New("axis: poller needs a Client and an Acceptor")
	}
	interval := p.Interval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		res, err := p.PollOnce(ctx)
		if err != nil && ctx.Err() == nil {
			p.logger().WarnContext(ctx, "axis poll incomplete", slog.Any("err", err))
		}
		if res.Listed > 0 {
			p.logger().InfoContext(ctx, "axis poll", slog.Int("listed", res.Listed), slog.Int("accepted", res.Accepted),
				slog.Int("failed", res.Failed), slog.Int("deferred", res.Deferred))
		}
		t.Reset(interval)
	}
}

// PollOnce runs one pass over messagetype "edoc" and "status". The error
// joins the listing failures and reports deferred packages; the packages
// that went through are counted in the result either way.
func (p *Poller) PollOnce(ctx context.Context) (PollResult, error) {
	var res PollResult
	var errs []error
	for _, mt := range []string{MessageTypeEdoc, MessageTypeStatus} {
		items, err := p.Client.GetReceivedEdocList(ctx, mt)
		if err != nil {
			errs = append(errs, fmt.Errorf("list %s: %w", mt, err))
			continue
		}
		seen := make(map[string]bool, len(items))
		for _, it := range items {
			if it.DocID == "" || seen[it.DocID] {
				continue // the axis may list a docId twice
			}
			seen[it.DocID] = true
			res.Listed++
			if ctx.Err() != nil {
				res.Deferred++
				continue
			}
			switch err := p.take(ctx, mt, it.DocID); {
			case err == nil:
				res.Accepted++
			case errors.Is(err, errMarkedFail):
				res.Failed++
			default:
				res.Deferred++
				errs = append(errs, err)
			}
		}
	}
	return res, errors.Join(errs...)
}

var errMarkedFail = errors.New("marked fail")

// take moves one package from the axis into the hub.
func (p *Poller) take(ctx context.Context, messageType, axisDocID string) error {
	log := p.logger().With(slog.String("axis_doc_id", axisDocID), slog.String("messagetype", messageType))
	raw, err := p.Client.GetEdoc(ctx, axisDocID)
	if err != nil {
		log.WarnContext(ctx, "axis getEdoc failed; will retry", slog.Any("err", err))
		return fmt.Errorf("getEdoc %s: %w", axisDocID, err)
	}
	docID, err := p.Acceptor.AcceptFromAxis(ctx, p.Client.SystemID(), axisDocID, raw)
	if err != nil {
		if p.IsPermanent != nil && p.IsPermanent(err) {
			log.ErrorContext(ctx, "axis package refused; marking fail", slog.Any("reason", err))
			if uerr := p.Client.UpdateStatusReason(ctx, axisDocID, StatusFail, err.Error()); uerr != nil {
				log.WarnContext(ctx, "axis updateStatus(fail) failed; will retry", slog.Any("err", uerr))
				return fmt.Errorf("updateStatus fail %s: %w", axisDocID, uerr)
			}
			return errMarkedFail
		}
		log.WarnContext(ctx, "axis package not accepted yet; will retry", slog.Any("err", err))
		return fmt.Errorf("accept %s: %w", axisDocID, err)
	}
	if err := p.Client.UpdateStatus(ctx, axisDocID, StatusDone); err != nil {
		log.WarnContext(ctx, "axis updateStatus(done) failed; the package will be served again",
			slog.String("doc_id", docID), slog.Any("err", err))
		return fmt.Errorf("updateStatus done %s: %w", axisDocID, err)
	}
	log.InfoContext(ctx, "axis package accepted", slog.String("doc_id", docID))
	return nil
}

func (p *Poller) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}
