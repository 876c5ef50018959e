package axis

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Operation names, as path segments under the endpoint.
const (
	OpSendEdoc            = "sendEdoc"
	OpGetReceivedEdocList = "getReceivedEdocList"
	OpGetEdoc             = "getEdoc"
	OpUpdateStatus        = "updateStatus"
	OpGetSentEdocList     = "getSentEdocList"
	OpGetAgenciesList     = "getAgenciesList"
)

// Parameter values.
const (
	ServiceTypeEdoc = "eDoc" // servicetype

	MessageTypeEdoc   = "edoc"   // a document package
	MessageTypeStatus = "status" // a status package

	StatusDone       = "done"       // consumed: stored by the receiver
	StatusFail       = "fail"       // will never be accepted
	StatusProcessing = "processing" // taken, not finished

	// SuccessCode is the only ErrorCode that means success.
	SuccessCode = "0"

	contentTypeJSON   = "application/json"
	contentTypeBinary = "application/octet-stream"
)

// Defaults applied by New.
const (
	DefaultTimeout          = 60 * time.Second
	DefaultMaxRetries       = 3
	DefaultBackoffBase      = 500 * time.Millisecond
	DefaultBackoffMax       = 10 * time.Second
	DefaultMaxResponseBytes = 8 << 20
	DefaultMaxEdocBytes     = 64 << 20
	// DefaultMaxConns is the SDK's ceiling on connections to the axis
	// (client.max-connection, at most 10; edxml.md §11.1).
	DefaultMaxConns = 10
)

// Config configures a Client.
type Config struct {
	// Endpoint is the axis base URL (service.endpoint), e.g.
	// "https://vxp.example.gov.vn"; operations are POSTed to Endpoint+"/"+op.
	Endpoint string
	// SystemID is the connecting system's id (systemid), usually its organ code.
	SystemID string
	// Secret keys the HMAC. Keep it in a secret store; it is never logged.
	Secret string
	// HTTPClient sends the requests; nil means a new http.Client whose
	// transport opens at most DefaultMaxConns connections to the axis. Its
	// own Timeout, if any, applies on top of Timeout.
	HTTPClient *http.Client
	// Timeout bounds one attempt (connect, send, read the answer). 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxRetries is how many times a retryable failure (HTTP 5xx/429, network
	// error, attempt timeout) is retried. 0 means DefaultMaxRetries; negative
	// means never retry.
	MaxRetries int
	// BackoffBase and BackoffMax shape the exponential backoff between
	// attempts (with jitter). 0 means the defaults.
	BackoffBase, BackoffMax time.Duration
	// MaxResponseBytes limits every answer except getEdoc's. 0 means DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// MaxEdocBytes limits getEdoc's answer (base64 inside JSON). 0 means DefaultMaxEdocBytes.
	MaxEdocBytes int64
	// Now is the clock for request timestamps; nil means time.Now.
	Now func() time.Time
	// Logger receives retry warnings; nil discards.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost = DefaultMaxConns, DefaultMaxConns
		c.HTTPClient = &http.Client{Transport: tr}
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = DefaultMaxRetries
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = DefaultBackoffBase
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.MaxEdocBytes <= 0 {
		c.MaxEdocBytes = DefaultMaxEdocBytes
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *Config) validate() error {
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("axis: endpoint %q: want an http(s) URL", c.Endpoint)
	}
	if c.SystemID == "" || !validParamValue(c.SystemID) {
		return errors.New("axis: SystemID must be non-empty printable ASCII")
	}
	if c.Secret == "" {
		return errors.New("axis: Secret is empty")
	}
	return nil
}

// Client calls the axis REST API. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base string
}

// stamps holds, per systemid, the last request timestamp any Client of this
// process sent, in Unix milliseconds. It is process-wide on purpose: two
// Clients of one system (a poller and a delivery channel) that sign the same
// parameters in the same millisecond would otherwise send the same
// (systemid, timestamp, hash), which the axis may refuse as a replay.
var stamps = struct {
	sync.Mutex // guards last
	last       map[string]int64
}{last: map[string]int64{}}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, base: strings.TrimRight(cfg.Endpoint, "/")}, nil
}

// SystemID returns the configured systemid.
func (c *Client) SystemID() string { return c.cfg.SystemID }

// ListItem is one entry of getReceivedEdocList.
type ListItem struct {
	DocID       string `json:"docId"`
	ServiceType string `json:"serviceType"`
	MessageType string `json:"messageType"`
	CreatedTime string `json:"created_time"`
	UpdatedTime string `json:"updated_time"`
	From        string `json:"from"`
	To          string `json:"to"`
	Status      string `json:"status"`
	StatusDesc  string `json:"status_desc"`
}

// SentItem is one entry of getSentEdocList.
type SentItem struct {
	ServiceType       string `json:"serviceType"`
	SenderDocID       string `json:"senderDocId"`
	ReceiverDocID     string `json:"receiverDocId"`
	FromCode          string `json:"fromCode"`
	ToCode            string `json:"toCode"`
	Title             string `json:"title"`
	Notation          string `json:"notation"`
	MessageType       string `json:"messageType"`
	SentTime          string `json:"sentTime"`
	ReceivedTime      string `json:"receivedTime"`
	SendStatus        string `json:"sendStatus"`
	SendStatusDesc    string `json:"sendStatusDesc"`
	ReceiveStatus     string `json:"receiveStatus"`
	ReceiveStatusDesc string `json:"receiveStatusDesc"`
}

// Agency is one entry of getAgenciesList.
type Agency struct {
	ID      string `json:"id"`
	PID     string `json:"pid"`
	Code    string `json:"code"`
	Name    string `json:"name"`
	Mail    string `json:"mail"`
	OldCode string `json:"oldCode"`
}

// SendEdoc posts raw (an edXML package, sent byte for byte) with messagetype
// "edoc" or "status" and returns the axis's DocId for it. to, if not empty,
// is sent as the JSON array header "to"; otherwise the axis reads the
// recipients from the package. The body is raw followed by CRLF, as the SDK
// sends it; hash-file is SDKFileHash(raw).
//
// A retried sendEdoc can reach the axis twice if an earlier attempt was
// processed but its answer lost (5xx after the fact, timeout): recipients may
// then see the package twice under different axis DocIds. The DocId may be
// empty if the axis answered success without one.
func (c *Client) SendEdoc(ctx context.Context, raw []byte, messageType string, to []string) (axisDocID string, err error) {
	if err := checkMessageType(OpSendEdoc, messageType); err != nil {
		return "", err
	}
	if len(raw) == 0 {
		return "", fmt.Errorf("axis: %s: empty package", OpSendEdoc)
	}
	params := map[string]string{
		"from":        c.cfg.SystemID,
		"servicetype": ServiceTypeEdoc,
		"messagetype": messageType,
		"hash-file":   SDKFileHash(raw),
	}
	if len(to) > 0 {
		toJSON, err := compactJSON(to)
		if err != nil {
			return "", err
		}
		params["to"] = toJSON
	}
	body := func() (io.Reader, int64) {
		return io.MultiReader(bytes.NewReader(raw), strings.NewReader("\r\n")), int64(len(raw)) + 2
	}
	var resp wireResponse
	if err := c.call(ctx, OpSendEdoc, params, contentTypeBinary, body, c.cfg.MaxResponseBytes, &resp); err != nil {
		return "", err
	}
	if resp.DocID == "" {
		c.cfg.Logger.WarnContext(ctx, "axis sendEdoc succeeded without a DocId")
	}
	return string(resp.DocID), nil
}

// GetReceivedEdocList lists the packages of messageType ("edoc" or "status")
// waiting for this system. The list may repeat a docId.
func (c *Client) GetReceivedEdocList(ctx context.Context, messageType string) ([]ListItem, error) {
	if err := checkMessageType(OpGetReceivedEdocList, messageType); err != nil {
		return nil, err
	}
	var resp wireResponse
	params := map[string]string{"servicetype": ServiceTypeEdoc, "messagetype": messageType}
	if err := c.call(ctx, OpGetReceivedEdocList, params, contentTypeJSON, jsonBody, c.cfg.MaxResponseBytes, &resp); err != nil {
		return nil, err
	}
	var items []wireListItem
	if err := resp.decodeData(OpGetReceivedEdocList, &items); err != nil {
		return nil, err
	}
	out := make([]ListItem, len(items))
	for i, it := range items {
		out[i] = ListItem{
			DocID: string(it.DocID), ServiceType: string(it.ServiceType), MessageType: string(it.MessageType),
			CreatedTime: string(it.CreatedTime), UpdatedTime: string(it.UpdatedTime),
			From: string(it.From), To: string(it.To), Status: string(it.Status), StatusDesc: string(it.StatusDesc),
		}
	}
	return out, nil
}

// GetEdoc fetches one package and returns its bytes exactly as the axis
// served them (the base64 "data" decoded, nothing else changed).
func (c *Client) GetEdoc(ctx context.Context, docID string) ([]byte, error) {
	if docID == "" {
		return nil, fmt.Errorf("axis: %s: empty docId", OpGetEdoc)
	}
	var resp wireResponse
	if err := c.call(ctx, OpGetEdoc, map[string]string{"docId": docID}, contentTypeJSON, jsonBody, c.cfg.MaxEdocBytes, &resp); err != nil {
		return nil, err
	}
	var data string
	if err := resp.decodeData(OpGetEdoc, &data); err != nil {
		return nil, err
	}
	raw, err := decodeBase64(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: data: %v", ErrBadResponse, OpGetEdoc, err)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: %s: no data for docId %s", ErrBadResponse, OpGetEdoc, docID)
	}
	return raw, nil
}

// UpdateStatus sets the transport state of a received package: "done"
// (stored), "fail" (will never be accepted) or "processing".
func (c *Client) UpdateStatus(ctx context.Context, docID, status string) error {
	return c.UpdateStatusReason(ctx, docID, status, "")
}

// MaxReasonLen bounds the description UpdateStatusReason sends.
const MaxReasonLen = 200

// UpdateStatusReason is UpdateStatus with a reason, sent as the signed
// parameter "description" when not empty (typically with "fail"). The
// reference names no such parameter [inference]: the SDK itself leaks stray
// parameters into later requests, so the axis tolerates unknown ones, and a
// server that does not know it ignores it. Header values must be ASCII, so
// the reason is reduced to printable ASCII (other characters become '?') and
// cut to MaxReasonLen bytes.
func (c *Client) UpdateStatusReason(ctx context.Context, docID, status, reason string) error {
	switch status {
	case StatusDone, StatusFail, StatusProcessing:
	default:
		return fmt.Errorf("axis: %s: status %q: want done, fail or processing", OpUpdateStatus, status)
	}
	if docID == "" {
		return fmt.Errorf("axis: %s: empty docId", OpUpdateStatus)
	}
	params := map[string]string{"docId": docID, "status": status}
	if r := ASCIIReason(reason); r != "" {
		params["description"] = r
	}
	var resp wireResponse
	return c.call(ctx, OpUpdateStatus, params, contentTypeJSON, jsonBody, c.cfg.MaxResponseBytes, &resp)
}

// ASCIIReason makes s travel in a header: printable ASCII only (anything else
// becomes '?'), no surrounding spaces, at most MaxReasonLen bytes.
func ASCIIReason(s string) string {
	b := make([]byte, 0, min(len(s), MaxReasonLen))
	for _, r := range s {
		if len(b) >= MaxReasonLen {
			break
		}
		switch {
		case r >= 0x20 && r < 0x7f:
			b = append(b, byte(r))
		case r == '\n' || r == '\t' || r == '\r':
			b = append(b, ' ')
		default:
			b = append(b, '?')
		}
	}
	return strings.TrimSpace(string(b))
}

// GetSentEdocList reports the delivery of packages this system sent, of
// messageType; docID (the DocId SendEdoc returned) narrows it to one send,
// "" lists all.
func (c *Client) GetSentEdocList(ctx context.Context, messageType, docID string) ([]SentItem, error) {
	if err := checkMessageType(OpGetSentEdocList, messageType); err != nil {
		return nil, err
	}
	params := map[string]string{"servicetype": ServiceTypeEdoc, "messagetype": messageType}
	if docID != "" {
		params["docId"] = docID
	}
	var resp wireResponse
	if err := c.call(ctx, OpGetSentEdocList, params, contentTypeJSON, jsonBody, c.cfg.MaxResponseBytes, &resp); err != nil {
		return nil, err
	}
	var items []wireSentItem
	if err := resp.decodeData(OpGetSentEdocList, &items); err != nil {
		return nil, err
	}
	out := make([]SentItem, len(items))
	for i, it := range items {
		out[i] = SentItem{
			ServiceType: string(it.ServiceType), SenderDocID: string(it.SenderDocID), ReceiverDocID: string(it.ReceiverDocID),
			FromCode: string(it.FromCode), ToCode: string(it.ToCode), Title: string(it.Title), Notation: string(it.Notation),
			MessageType: string(it.MessageType), SentTime: string(it.SentTime), ReceivedTime: string(it.ReceivedTime),
			SendStatus: string(it.SendStatus), SendStatusDesc: string(it.SendStatusDesc),
			ReceiveStatus: string(it.ReceiveStatus), ReceiveStatusDesc: string(it.ReceiveStatusDesc),
		}
	}
	return out, nil
}

// GetAgenciesList returns the axis's directory of agencies.
func (c *Client) GetAgenciesList(ctx context.Context) ([]Agency, error) {
	var resp wireResponse
	if err := c.call(ctx, OpGetAgenciesList, nil, contentTypeJSON, jsonBody, c.cfg.MaxResponseBytes, &resp); err != nil {
		return nil, err
	}
	var items []wireAgency
	if err := resp.decodeData(OpGetAgenciesList, &items); err != nil {
		return nil, err
	}
	out := make([]Agency, len(items))
	for i, it := range items {
		out[i] = Agency{ID: string(it.ID), PID: string(it.PID), Code: string(it.Code), Name: string(it.Name),
			Mail: string(it.Mail), OldCode: string(it.OldCode)}
	}
	return out, nil
}

func checkMessageType(op, messageType string) error {
	if messageType != MessageTypeEdoc && messageType != MessageTypeStatus {
		return fmt.Errorf("axis: %s: messagetype %q: want %q or %q", op, messageType, MessageTypeEdoc, MessageTypeStatus)
	}
	return nil
}

// jsonBody is the "{}" body the SDK posts for parameter-only operations.
func jsonBody() (io.Reader, int64) { return strings.NewReader("{}"), 2 }

// call runs op with bounded retries. Every attempt is signed afresh.
func (c *Client) call(ctx context.Context, op string, params map[string]string, contentType string,
	body func() (io.Reader, int64), limit int64, out *wireResponse) error {
	var err error
	for attempt := 0; ; attempt++ {
		err = c.attempt(ctx, op, params, contentType, body, limit, out)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || attempt >= c.cfg.MaxRetries || !IsRetryable(err) {
			break
		}
		wait := c.backoff(attempt)
		c.cfg.Logger.WarnContext(ctx, "axis call failed, retrying",
			slog.String("op", op), slog.Int("attempt", attempt+1), slog.Duration("wait", wait), slog.Any("err", err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("axis: %s: %w (after: %w)", op, ctx.Err(), err)
		case <-t.C:
		}
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return err
	}
	return fmt.Errorf("axis: %s: %w", op, err)
}

func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.BackoffBase << min(attempt, 20)
	if d <= 0 || d > c.cfg.BackoffMax {
		d = c.cfg.BackoffMax
	}
	return d/2 + rand.N(d/2+1)
}

// nextTimestamp returns the clock's time, bumped so that no two requests of
// this process for this systemid carry the same millisecond: the axis may
// refuse a repeated (systemid, timestamp, hash) as a replay.
func (c *Client) nextTimestamp() time.Time {
	ms := c.cfg.Now().UnixMilli()
	stamps.Lock()
	if last := stamps.last[c.cfg.SystemID]; ms <= last {
		ms = last + 1
	}
	stamps.last[c.cfg.SystemID] = ms
	stamps.Unlock()
	return time.UnixMilli(ms)
}

func (c *Client) attempt(ctx context.Context, op string, params map[string]string, contentType string,
	body func() (io.Reader, int64), limit int64, out *wireResponse) error {
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	h, err := SignHeaders(c.cfg.SystemID, c.cfg.Secret, contentType, params, c.nextTimestamp())
	if err != nil {
		return err
	}
	rd, n := body()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.base+"/"+op, rd)
	if err != nil {
		return fmt.Errorf("axis: %s: %w", op, err)
	}
	req.ContentLength = n
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return &transportError{err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return &transportError{fmt.Errorf("read answer: %w", err)}
	}
	if int64(len(b)) > limit {
		return fmt.Errorf("%w: %s answered more than %d bytes", ErrResponseTooLarge, op, limit)
	}
	*out = wireResponse{}
	jsonErr := json.Unmarshal(b, out)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &APIError{Op: op, HTTPStatus: resp.StatusCode}
		if jsonErr == nil && out.ErrorCode != "" {
			e.Code, e.Desc, e.Status = string(out.ErrorCode), string(out.ErrorDesc), string(out.Status)
		} else {
			e.Desc = snippet(b)
		}
		return e
	}
	if jsonErr != nil {
		return fmt.Errorf("%w: %s: %v: %s", ErrBadResponse, op, jsonErr, snippet(b))
	}
	if out.ErrorCode != SuccessCode {
		return &APIError{Op: op, Code: string(out.ErrorCode), Desc: string(out.ErrorDesc), Status: string(out.Status), HTTPStatus: resp.StatusCode}
	}
	return nil
}

func snippet(b []byte) string {
	const max = 256
	s := strings.ToValidUTF8(string(b[:min(len(b), max)]), "?")
	return strings.TrimSpace(s)
}

// decodeBase64 decodes standard base64, with or without padding, ignoring
// the line breaks and spaces that MIME encoders insert.
func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '\r', '\n', ' ', '\t':
			return -1
		}
		return r
	}, s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}
