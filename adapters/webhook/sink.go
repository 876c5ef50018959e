package webhook

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Received is one document a Sink took.
type Received struct {
	Organ          string    `json:"organ"`
	DocumentID     string    `json:"id"`
	Sender         string    `json:"sender"`
	Sequence       string    `json:"sequence"`
	IdempotencyKey string    `json:"idempotency_key"`
	SHA256         string    `json:"sha256"`
	Size           int       `json:"size"`
	At             time.Time `json:"at"`
}

// Sink is a webhook receiver for demo organs (and tests): it honours
// Idempotency-Key (a repeat answers 200 and is not recorded twice) and lists
// what it received. Mount it at a path ending in "/{organ}".
type Sink struct {
	MaxBody int64 // default 64 MiB
	Logger  *slog.Logger

	mu   sync.Mutex // guards got and seen
	got  map[string][]Received
	seen map[string]bool
}

// ServeHTTP takes POST /…/{organ} and answers GET /…/{organ} with the list.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	organ := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	switch r.Method {
	case http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"organ": organ, "received": s.Received(organ)})
	case http.MethodPost:
		max := s.MaxBody
		if max <= 0 {
			max = 64 << 20
		}
		h := sha256.New()
		n, err := io.Copy(h, http.MaxBytesReader(w, r.Body, max))
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		sum := hex.EncodeToString(h.Sum(nil))
		key := r.Header.Get(HeaderIdemKey)
		rec := Received{Organ: organ, DocumentID: r.Header.Get(HeaderDocumentID), Sender: r.Header.Get(HeaderSender),
			Sequence: r.Header.Get(HeaderSequence), IdempotencyKey: key, SHA256: sum, Size: int(n), At: time.Now().UTC()}
		s.mu.Lock()
		if s.got == nil {
			s.got, s.seen = map[string][]Received{}, map[string]bool{}
		}
		dup := key != "" && s.seen[key]
		if !dup {
			s.seen[key] = true
			s.got[organ] = append(s.got[organ], rec)
		}
		s.mu.Unlock()
		if s.Logger != nil && !dup {
			s.Logger.Info("demo webhook: document received / đã nhận văn bản", "organ", organ,
				"id", rec.DocumentID, "sender", rec.Sender, "bytes", n)
		}
		w.WriteHeader(http.StatusOK)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// Received returns what organ has received, in arrival order.
func (s *Sink) Received(organ string) []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received{}, s.got[organ]...)
}

func hexToB64(h string) string {
	b, err := hex.DecodeString(h)
	if err != nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(b)
}
