package axishub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"lienthong/adapters/axis"
	"lienthong/envelope"
	"lienthong/routing"
	"lienthong/routing/ledger"
)

// Channel returns the delivery channel for organs on the axis (directory
// channel "axis"); register it in the delivery worker's channels.
func (b *Bridge) Channel() routing.Channel { return channel{b} }

type channel struct{ b *Bridge }

// Deliver implements routing.Channel: one sendEdoc per (document, recipient),
// with the recipient named in the "to" parameter so that the axis does not
// also deliver to the package's other To entries (NA organs among them). The
// axis has no idempotency key: the ledger's axis_outbound row, written after
// the send, makes a redelivery of a task that was sent already a no-op; a
// crash between the send and that row (or a retried send whose first answer
// was lost) can still reach the axis twice.
func (c channel) Deliver(ctx context.Context, d routing.Delivery, body routing.BodyOpener) error {
	b := c.b
	if sent, err := b.l.AxisSent(ctx, d.IdempotencyKey); err != nil {
		return err
	} else if sent {
		return nil
	}
	rc, err := body(ctx)
	if err != nil {
		return fmt.Errorf("axis channel: open body: %w", err)
	}
	limit := b.cfg.Limits.MaxBytes
	if limit <= 0 {
		limit = envelope.DefaultMaxBytes
	}
	raw, err := io.ReadAll(io.LimitReader(rc, limit+1))
	rc.Close()
	if err != nil {
		return fmt.Errorf("axis channel: read body: %w", err)
	}
	systemID := b.systemFor(d.Sender)
	messageType, wrapped := axis.MessageTypeEdoc, false
	switch envelope.Format(d.Format) {
	case envelope.FormatEdXML:
	case envelope.FormatEdXMLStatus:
		messageType = axis.MessageTypeStatus
	case envelope.FormatHub:
		if raw, err = b.wrap(ctx, d, systemID, raw); err != nil {
			return err
		}
		wrapped = true
	default:
		return &routing.PermanentError{Reason: fmt.Sprintf("format %q cannot travel on the axis", d.Format)}
	}
	now := b.cfg.Now()
	axisID, err := b.clients[systemID].SendEdoc(ctx, raw, messageType, []string{d.Recipient})
	if err != nil {
		if refusedForGood(err) {
			return &routing.PermanentError{Reason: "the axis refused the package", Err: err}
		}
		return err
	}
	if err := b.l.RecordAxisOutbound(ctx, ledger.AxisOutbound{Key: d.IdempotencyKey, DocumentID: d.DocumentID,
		Recipient: d.Recipient, MessageType: messageType, SystemID: systemID, AxisDocID: axisID,
		EventKind: ledger.EventAxisSent, Detail: map[string]any{"wrapped": wrapped,
			"trace_hop": map[string]string{"organ_id": systemID, "timestamp": now.In(axis.AxisZone).Format(axis.EdXMLTimeLayout)}}}); err != nil {
		// Sent: report success so that the delivery is recorded; only the
		// redelivery guard is missing.
		b.log.WarnContext(ctx, "axis send not recorded", slog.String("document", d.DocumentID), slog.Any("err", err))
	}
	return nil
}

// refusedForGood: a business refusal (ErrorCode on a 2xx answer) or a 4xx
// other than 401/408/429, or a parameter that cannot be sent. Authentication
// failures are retried: they are a configuration problem of the hub.
func refusedForGood(err error) bool {
	if errors.Is(err, axis.ErrHeaderValue) {
		return true
	}
	var ae *axis.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch {
	case ae.HTTPStatus >= 200 && ae.HTTPStatus < 300:
		return true
	case ae.HTTPStatus == http.StatusUnauthorized, ae.HTTPStatus == http.StatusRequestTimeout, ae.HTTPStatus == http.StatusTooManyRequests:
		return false
	default:
		return ae.HTTPStatus >= 400 && ae.HTTPStatus < 500
	}
}

// wrap puts a hub envelope into an edXML package for an axis recipient.
func (b *Bridge) wrap(ctx context.Context, d routing.Delivery, systemID string, raw []byte) ([]byte, error) {
	info, err := b.l.Document(ctx, d.DocumentID)
	if err != nil {
		return nil, fmt.Errorf("axis channel: document: %w", err)
	}
	from := envelope.Organ{Code: d.Sender, Name: d.Sender}
	if o, err := b.l.Organ(ctx, d.Sender); err == nil {
		from.Name = o.Name
	}
	to := envelope.Organ{Code: d.Recipient, Name: d.Recipient}
	if o, err := b.l.Organ(ctx, d.Recipient); err == nil {
		to.Name = o.Name
	}
	out, err := axis.WrapDocument(axis.Wrapper{From: from, To: to, DocumentID: info.DocumentID,
		CodeNumber: info.CodeNumber, CodeNotation: info.CodeNotation, Subject: info.Subject,
		PromulgationDate: info.PromulgationDate, Hop: systemID, Time: b.cfg.Now(), Original: raw,
		Name: d.DocumentID + ".xml"})
	if err != nil {
		return nil, &routing.PermanentError{Reason: "cannot wrap the hub envelope for the axis", Err: err}
	}
	return out, nil
}
