package axissim

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"lienthong/adapters/axis"
)

// ErrorCodes the simulator answers with (see the package doc).
const (
	CodeOK              = axis.SuccessCode
	CodeBadRequest      = "2"
	CodeNotFound        = "3"
	CodeInvalidFile     = "10"
	CodeAuth            = "15"
	CodeUnknownReceiver = "18"
	CodeSimulated       = "99"
)

// Transport states of a queued package (getReceivedEdocList "status").
const (
	StateInitial    = "initial"
	StateProcessing = axis.StatusProcessing
	StateDone       = axis.StatusDone
	StateFail       = axis.StatusFail
)

// System is one connecting system: its systemid, HMAC secret and the organ
// whose queue it reads and on whose behalf it sends. Organs lists further
// organs the system fronts (an LGSP, or the National Assembly's hub serving
// all NA bodies): it reads their queues too and may send on their behalf.
type System struct {
	ID     string
	Secret string
	Organ  string
	Organs []string
}

// serves reports whether the system reads organ's queue and may send as organ.
func (s System) serves(organ string) bool {
	return organ != "" && (organ == s.Organ || slices.Contains(s.Organs, organ))
}

// Config configures a Server.
type Config struct {
	Systems []System
	// Agencies is what getAgenciesList returns; empty means one entry per
	// distinct System organ. An OldCode used as a recipient is mapped to Code.
	Agencies []axis.Agency
	// Now is the server clock; nil means time.Now.
	Now func() time.Time
	// MaxSkew bounds the request timestamp's distance from Now; 0 means axis.DefaultMaxSkew.
	MaxSkew time.Duration
	// MaxBodyBytes limits a sendEdoc body; 0 means 64 MiB.
	MaxBodyBytes int64
	// Admin serves the unauthenticated /_sim/ endpoints.
	Admin bool
	// Logger; nil discards.
	Logger *slog.Logger
}

// Message is one package in a recipient organ's queue.
type Message struct {
	DocID       string    `json:"docId"`       // the receiver's docId
	SenderDocID string    `json:"senderDocId"` // the DocId sendEdoc returned ("" if injected)
	From        string    `json:"from"`        // sender organ
	To          string    `json:"to"`          // recipient organ
	FromSystem  string    `json:"fromSystem"`  // sender systemid ("" if injected)
	MessageType string    `json:"messageType"` // edoc or status
	Raw         []byte    `json:"raw"`         // exactly the bytes sent
	Status      string    `json:"status"`      // initial, processing, done, fail
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
}

// Fault is a failure to inject into the next calls of an operation. Set one
// of HTTPStatus, ErrorCode or Hang.
type Fault struct {
	// HTTPStatus answers with this status; with ErrorCode empty the body is
	// plain text (like a proxy's error page).
	HTTPStatus int
	// ErrorCode and ErrorDesc answer with a FAIL JSON body (HTTP 200 unless HTTPStatus is set).
	ErrorCode, ErrorDesc string
	// Hang holds the request until the client gives up or the server closes.
	Hang bool
	// AfterEffect performs the operation first, then answers with the fault
	// (a lost answer: the axis did the work, the client does not know).
	AfterEffect bool
}

// Refusal records a request refused by the HMAC check.
type Refusal struct {
	Op       string
	SystemID string // as claimed in the headers, unverified
	Err      error
}

// Server is the simulated axis. It implements http.Handler and is safe for
// concurrent use.
type Server struct {
	cfg      Config
	verifier axis.Verifier
	systems  map[string]System
	log      *slog.Logger
	closed   chan struct{}
	close    sync.Once

	mu       sync.Mutex // guards the fields below
	msgs     []*Message // every queued package, in arrival order
	byID     map[string]*Message
	updates  map[string][]string // docId -> statuses received by updateStatus
	reasons  map[string]string   // docId -> description sent with updateStatus(fail)
	faults   map[string][]Fault  // op -> faults for its next calls
	dups     map[string]int      // op -> number of next list answers to duplicate
	refusals []Refusal
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = axis.DefaultMaxSkew
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:     cfg,
		systems: make(map[string]System, len(cfg.Systems)),
		log:     cfg.Logger,
		closed:  make(chan struct{}),
		byID:    make(map[string]*Message),
		updates: make(map[string][]string),
		reasons: make(map[string]string),
		faults:  make(map[string][]Fault),
		dups:    make(map[string]int),
	}
	for _, sys := range cfg.Systems {
		s.systems[sys.ID] = sys
	}
	return s
}

// Close releases requests held by a Hang fault. The Server keeps answering.
func (s *Server) Close() { s.close.Do(func() { close(s.closed) }) }

// Listen serves s on addr (e.g. "127.0.0.1:0") and returns its base URL and a
// stop function that closes the listener and waits for running requests.
func (s *Server) Listen(addr string) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("axissim: listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("axissim: serve", slog.Any("err", err))
		}
	}()
	stop = func() {
		s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}
	return "http://" + ln.Addr().String(), stop, nil
}

// Start runs a new Server for cfg on addr; see Server.Listen.
func Start(cfg Config, addr string) (url string, stop func(), err error) {
	return New(cfg).Listen(addr)
}

// ---- inspection and fault injection (Go API) ----

// Inject places raw in organ's queue as if another agency had sent it, and
// returns its docId. The sender organ is read from From/OrganId if present.
func (s *Server) Inject(organ, messageType string, raw []byte) string {
	from, _ := readOrgans(raw, "From")
	m := s.enqueue("", "", firstOr(from, ""), organ, messageType, raw)
	return m.DocID
}

// Pending returns organ's packages not yet marked done or fail, oldest first.
func (s *Server) Pending(organ string) []Message {
	return s.collect(func(m *Message) bool {
		return m.To == organ && (m.Status == StateInitial || m.Status == StateProcessing)
	})
}

// Sent returns the packages organ sent, one per recipient, oldest first.
func (s *Server) Sent(organ string) []Message {
	return s.collect(func(m *Message) bool { return m.From == organ && m.FromSystem != "" })
}

// StatusUpdates returns, per docId, the statuses updateStatus received, in order.
func (s *Server) StatusUpdates() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]string, len(s.updates))
	for k, v := range s.updates {
		out[k] = slices.Clone(v)
	}
	return out
}

// FailReasons returns, per docId, the description sent with updateStatus(fail).
func (s *Server) FailReasons() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.reasons))
	for k, v := range s.reasons {
		out[k] = v
	}
	return out
}

// PendingFor returns the packages waiting for any organ the system sysID
// serves, oldest first.
func (s *Server) PendingFor(sysID string) []Message {
	sys := s.systems[sysID]
	return s.collect(func(m *Message) bool {
		return sys.serves(m.To) && (m.Status == StateInitial || m.Status == StateProcessing)
	})
}

// Refusals returns the requests refused by the HMAC check so far.
func (s *Server) Refusals() []Refusal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.refusals)
}

// FailNext makes the next n calls of op (e.g. axis.OpGetEdoc) fail with f.
func (s *Server) FailNext(op string, n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[op] = append(s.faults[op], f)
	}
}

// PendingFaults counts, by operation, the injected faults not yet taken by
// a call: a test waits for 0 to know that the faulty call has arrived (and,
// for a Hang fault, is being held now).
func (s *Server) PendingFaults() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.faults))
	for op, q := range s.faults {
		if len(q) > 0 {
			out[op] = len(q)
		}
	}
	return out
}

// DuplicateNext makes the next n answers of a list operation
// (getReceivedEdocList, getSentEdocList) carry every entry twice.
func (s *Server) DuplicateNext(op string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dups[op] += n
}

func (s *Server) collect(keep func(*Message) bool) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.msgs {
		if keep(m) {
			c := *m
			c.Raw = slices.Clone(m.Raw)
			out = append(out, c)
		}
	}
	return out
}

func (s *Server) enqueue(senderDocID, fromSystem, from, to, messageType string, raw []byte) *Message {
	now := s.cfg.Now()
	m := &Message{DocID: newID(), SenderDocID: senderDocID, From: from, To: to, FromSystem: fromSystem,
		MessageType: messageType, Raw: slices.Clone(raw), Status: StateInitial, Created: now, Updated: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	s.byID[m.DocID] = m
	return m
}

func (s *Server) takeFault(op string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[op]
	if len(q) == 0 {
		return Fault{}, false
	}
	s.faults[op] = q[1:]
	return q[0], true
}

func (s *Server) takeDup(op string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dups[op] > 0 {
		s.dups[op]--
		return true
	}
	return false
}

// ---- HTTP ----

// response is the axis's answer shape.
type response struct {
	Status    string `json:"status"`
	ErrorCode string `json:"ErrorCode"`
	ErrorDesc string `json:"ErrorDesc"`
	DocID     string `json:"DocId,omitempty"`
	Data      any    `json:"data,omitempty"`
}

func ok(data any) response {
	return response{Status: "OK", ErrorCode: CodeOK, ErrorDesc: "Success", Data: data}
}

func fail(code, format string, args ...any) response {
	return response{Status: "FAIL", ErrorCode: code, ErrorDesc: fmt.Sprintf(format, args...)}
}

type opHandler func(r *http.Request, sys System) response

// ServeHTTP implements http.Handler. Operations are matched on the last path
// segment, so the simulator works under any base path.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.Trim(r.URL.Path, "/")
	if path == "_sim" || strings.HasPrefix(path, "_sim/") {
		if s.cfg.Admin {
			s.admin(w, r, strings.TrimPrefix(strings.TrimPrefix(path, "_sim"), "/"))
			return
		}
		http.NotFound(w, r)
		return
	}
	op := path[strings.LastIndexByte(path, '/')+1:]
	var h opHandler
	switch op {
	case axis.OpSendEdoc:
		h = s.sendEdoc
	case axis.OpGetReceivedEdocList:
		h = s.getReceivedEdocList
	case axis.OpGetEdoc:
		h = s.getEdoc
	case axis.OpUpdateStatus:
		h = s.updateStatus
	case axis.OpGetSentEdocList:
		h = s.getSentEdocList
	case axis.OpGetAgenciesList:
		h = s.getAgenciesList
	default:
		writeJSON(w, http.StatusNotFound, fail(CodeBadRequest, "unknown operation %q", op))
		return
	}
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, fail(CodeBadRequest, "%s wants POST", op))
		return
	}
	systemID, err := s.verifier.VerifyHeaders(r.Header, s.lookupSecret, s.cfg.Now(), s.cfg.MaxSkew)
	if err != nil {
		claimed := r.Header.Get(axis.HeaderPrefix + axis.ParamSystemID)
		s.mu.Lock()
		s.refusals = append(s.refusals, Refusal{Op: op, SystemID: claimed, Err: err})
		s.mu.Unlock()
		s.log.WarnContext(r.Context(), "axissim: request refused", slog.String("op", op),
			slog.String("systemid", claimed), slog.Any("err", err))
		writeJSON(w, http.StatusUnauthorized, fail(CodeAuth, "%v", err))
		return
	}
	sys := s.systems[systemID]
	f, faulty := s.takeFault(op)
	if faulty && !f.AfterEffect {
		s.writeFault(w, r, op, f)
		return
	}
	resp := h(r, sys)
	if faulty {
		s.writeFault(w, r, op, f)
		return
	}
	s.log.DebugContext(r.Context(), "axissim: call", slog.String("op", op), slog.String("systemid", systemID),
		slog.String("code", resp.ErrorCode))
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) lookupSecret(id string) (string, bool) {
	sys, ok := s.systems[id]
	return sys.Secret, ok && sys.Secret != "" // an empty secret would sign anything
}

func (s *Server) writeFault(w http.ResponseWriter, r *http.Request, op string, f Fault) {
	s.log.InfoContext(r.Context(), "axissim: injected fault", slog.String("op", op))
	switch {
	case f.Hang:
		select {
		case <-r.Context().Done():
		case <-s.closed:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	case f.ErrorCode != "":
		status := f.HTTPStatus
		if status == 0 {
			status = http.StatusOK
		}
		writeJSON(w, status, fail(f.ErrorCode, "%s", cmp.Or(f.ErrorDesc, "simulated failure")))
	default:
		status := cmp.Or(f.HTTPStatus, http.StatusInternalServerError)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "simulated HTTP %d\n", status)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// param reads an operation parameter. It is called only after VerifyHeaders
// succeeded, so every XroadVnpt-* header it can see is covered by the HMAC.
func param(r *http.Request, name string) string {
	return r.Header.Get(axis.HeaderPrefix + name)
}

// ---- operations ----

func (s *Server) sendEdoc(r *http.Request, sys System) response {
	messageType := param(r, "messagetype")
	if messageType != axis.MessageTypeEdoc && messageType != axis.MessageTypeStatus {
		return fail(CodeBadRequest, "messagetype %q: want edoc or status", messageType)
	}
	if from := param(r, "from"); from != "" && from != sys.ID {
		return fail(CodeBadRequest, "from %q is not the calling systemid", from)
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		return fail(CodeInvalidFile, "read body: %v", err)
	}
	raw := bytes.TrimSuffix(body, []byte("\r\n")) // the SDK appends one CRLF
	if len(raw) == 0 {
		return fail(CodeInvalidFile, "empty package")
	}
	if hf := param(r, "hash-file"); hf != "" && hf != axis.SDKFileHash(raw) {
		return fail(CodeInvalidFile, "hash-file does not match the package")
	}
	var to []string
	if t := param(r, "to"); t != "" {
		if strings.HasPrefix(t, "[") {
			if err := json.Unmarshal([]byte(t), &to); err != nil {
				return fail(CodeBadRequest, "to is not a JSON array of strings")
			}
		} else {
			to = strings.Split(t, ",")
		}
	} else {
		parent := "To"
		if messageType == axis.MessageTypeStatus {
			parent = "ResponseFor"
		}
		to, err = readOrgans(raw, parent)
		if err != nil {
			return fail(CodeInvalidFile, "package is not well-formed XML: %v", err)
		}
	}
	to = s.normaliseRecipients(to)
	if len(to) == 0 {
		return fail(CodeUnknownReceiver, "no recipient in the package")
	}
	from := sys.Organ
	if f, _ := readOrgans(raw, "From"); len(f) > 0 && sys.serves(f[0]) {
		from = f[0]
	}
	senderDocID := newID()
	for _, organ := range to {
		s.enqueue(senderDocID, sys.ID, from, organ, messageType, raw)
	}
	resp := ok(nil)
	resp.DocID = senderDocID
	return resp
}

// normaliseRecipients trims, maps old codes to current ones and drops repeats.
func (s *Server) normaliseRecipients(in []string) []string {
	var out []string
	for _, c := range in {
		c = strings.TrimSpace(c)
		for _, a := range s.cfg.Agencies {
			if a.OldCode != "" && a.OldCode == c {
				c = a.Code
			}
		}
		if c != "" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

func (s *Server) getReceivedEdocList(r *http.Request, sys System) response {
	messageType := param(r, "messagetype")
	if messageType == "" {
		return fail(CodeBadRequest, "messagetype is required")
	}
	var items []axis.ListItem
	for _, m := range s.PendingFor(sys.ID) {
		if m.MessageType != messageType {
			continue
		}
		items = append(items, axis.ListItem{
			DocID: m.DocID, ServiceType: axis.ServiceTypeEdoc, MessageType: m.MessageType,
			CreatedTime: wireTime(m.Created), UpdatedTime: wireTime(m.Updated),
			From: m.From, To: m.To, Status: m.Status, StatusDesc: m.Status,
		})
	}
	if s.takeDup(axis.OpGetReceivedEdocList) {
		items = doubled(items)
	}
	return ok(nonNil(items))
}

func (s *Server) getEdoc(r *http.Request, sys System) response {
	id := param(r, "docId")
	s.mu.Lock()
	m, found := s.byID[id]
	var raw []byte
	if found && sys.serves(m.To) {
		raw = m.Raw
	}
	s.mu.Unlock()
	if raw == nil {
		return fail(CodeNotFound, "docId %q not found", id)
	}
	return ok(base64.StdEncoding.EncodeToString(raw))
}

func (s *Server) updateStatus(r *http.Request, sys System) response {
	id, status := param(r, "docId"), param(r, "status")
	switch status {
	case axis.StatusDone, axis.StatusFail, axis.StatusProcessing:
	default:
		return fail(CodeBadRequest, "status %q: want done, fail or processing", status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, found := s.byID[id]
	if !found || !sys.serves(m.To) {
		return fail(CodeNotFound, "docId %q not found", id)
	}
	s.updates[id] = append(s.updates[id], status)
	if d := param(r, "description"); status == axis.StatusFail && d != "" {
		s.reasons[id] = d
	}
	if m.Status != StateDone && m.Status != StateFail { // done and fail are final
		m.Status = status
		m.Updated = s.cfg.Now()
	}
	return ok(nil)
}

func (s *Server) getSentEdocList(r *http.Request, sys System) response {
	messageType, docID := param(r, "messagetype"), param(r, "docId")
	var items []axis.SentItem
	for _, m := range s.collect(func(m *Message) bool { return m.FromSystem == sys.ID }) {
		if messageType != "" && m.MessageType != messageType {
			continue
		}
		if docID != "" && docID != m.SenderDocID && docID != m.DocID {
			continue
		}
		items = append(items, axis.SentItem{
			ServiceType: axis.ServiceTypeEdoc, SenderDocID: m.SenderDocID, ReceiverDocID: m.DocID,
			FromCode: m.From, ToCode: m.To, MessageType: m.MessageType,
			SentTime: wireTime(m.Created), SendStatus: StateDone, SendStatusDesc: StateDone,
			ReceiveStatus: m.Status, ReceiveStatusDesc: m.Status,
		})
	}
	if s.takeDup(axis.OpGetSentEdocList) {
		items = doubled(items)
	}
	return ok(nonNil(items))
}

func (s *Server) getAgenciesList(*http.Request, System) response {
	agencies := s.cfg.Agencies
	if len(agencies) == 0 {
		for _, sys := range s.cfg.Systems {
			for _, organ := range append([]string{sys.Organ}, sys.Organs...) {
				if !slices.ContainsFunc(agencies, func(a axis.Agency) bool { return a.Code == organ }) {
					agencies = append(agencies, axis.Agency{ID: fmt.Sprint(len(agencies) + 1), Code: organ, Name: organ})
				}
			}
		}
	}
	return ok(nonNil(agencies))
}

// ---- helpers ----

// readOrgans returns the text of the OrganId children of every <parent>
// element directly under MessageHeader, matching by local name (any prefix).
func readOrgans(raw []byte, parent string) ([]string, error) {
	dec := xml.NewDecoder(bytes.NewReader(bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))))
	var stack []string
	var out []string
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if len(stack) != 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= 256 {
				return nil, errors.New("nesting too deep")
			}
			stack = append(stack, t.Name.Local)
			text.Reset()
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			n := len(stack)
			if n >= 3 && stack[n-1] == "OrganId" && stack[n-2] == parent && stack[n-3] == "MessageHeader" {
				if v := strings.TrimSpace(text.String()); v != "" {
					out = append(out, v)
				}
			}
			stack = stack[:n-1]
			text.Reset()
		}
	}
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func wireTime(t time.Time) string { return t.In(axis.AxisZone).Format("2006-01-02 15:04:05") }

func doubled[T any](in []T) []T {
	out := make([]T, 0, 2*len(in))
	for _, x := range in {
		out = append(out, x, x)
	}
	return out
}

func nonNil[T any](in []T) []T {
	if in == nil {
		return []T{}
	}
	return in
}

func firstOr(xs []string, def string) string {
	if len(xs) > 0 {
		return xs[0]
	}
	return def
}
