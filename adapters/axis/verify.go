package axis

import (
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Sentinels of Verifier.VerifyHeaders; the returned error wraps exactly one
// of them in a *VerifyError that says what was wrong.
var (
	// ErrBadSignature: missing or malformed signing headers, an HMAC that does
	// not match, or a header value that differs from the signed one.
	ErrBadSignature = errors.New("axis: bad request signature")
	// ErrUnknownSystem: the signed systemid has no secret.
	ErrUnknownSystem = errors.New("axis: unknown systemid")
	// ErrStaleTimestamp: the signed timestamp is unreadable or further than
	// maxSkew from now.
	ErrStaleTimestamp = errors.New("axis: stale or invalid timestamp")
	// ErrReplay: the same (systemid, timestamp, hash) was accepted before.
	ErrReplay = errors.New("axis: replayed request")
)

// VerifyError says why a request's headers were refused. Err is one of the
// sentinels above.
type VerifyError struct {
	Err    error
	Reason string
}

func (e *VerifyError) Error() string { return e.Err.Error() + ": " + e.Reason }
func (e *VerifyError) Unwrap() error { return e.Err }

func verifyErr(sentinel error, format string, args ...any) error {
	return &VerifyError{Err: sentinel, Reason: fmt.Sprintf(format, args...)}
}

// DefaultMaxSkew is used when VerifyHeaders gets maxSkew <= 0.
const DefaultMaxSkew = 5 * time.Minute

// Verifier checks signed axis requests on the server side. Its zero value is
// ready to use; it must not be copied after first use. It is safe for
// concurrent use. The replay memory holds the accepted (systemid, timestamp,
// hash) triples of the last 2*maxSkew, so memory grows with the request rate
// times that window.
type Verifier struct {
	mu        sync.Mutex           // guards seen and lastSweep
	seen      map[string]time.Time // replay key -> signed timestamp
	lastSweep time.Time
}

// VerifyHeaders authenticates a request signed like SDKVXP 2.0.1 and returns
// the signed systemid. It
//
//   - recomputes HMAC-SHA256(secret of systemid, XroadVnpt-sign-header) and
//     compares it with XroadVnpt-hash-header in constant time;
//   - checks that the sign-header JSON holds exactly the keys named in
//     XroadVnpt-sign-header-key, all string-valued, that each named
//     XroadVnpt-<k> header is present once with exactly the signed value, and
//     that no other XroadVnpt-* parameter header is present (so a header
//     cannot be swapped or added under a valid signature);
//   - checks that the signed timestamp is within maxSkew of now
//     (DefaultMaxSkew if maxSkew <= 0);
//   - refuses a (systemid, timestamp, hash-header) seen before as a replay.
//
// Header names are matched case-insensitively (HTTP canonicalises them), the
// signed JSON and the key list exactly. The plain Content-Type header is not
// compared with the signed one. Callers must read the operation's parameters
// only after this returns nil.
func (v *Verifier) VerifyHeaders(h http.Header, lookupSecret func(systemID string) (string, bool), now time.Time, maxSkew time.Duration) (systemID string, err error) {
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	signHeader, err := single(h, HeaderSign)
	if err != nil {
		return "", err
	}
	keyList, err := single(h, HeaderSignKeys)
	if err != nil {
		return "", err
	}
	hashHex, err := single(h, HeaderHash)
	if err != nil {
		return "", err
	}
	signed, err := parseSignHeader(signHeader)
	if err != nil {
		return "", err
	}
	keys := strings.Split(keyList, ";")
	if len(keys) != len(signed) {
		return "", verifyErr(ErrBadSignature, "sign-header-key names %d keys, sign-header holds %d", len(keys), len(signed))
	}
	for i, k := range keys {
		if _, ok := signed[HeaderPrefix+k]; !ok || k == "" {
			return "", verifyErr(ErrBadSignature, "sign-header-key names %q, absent from sign-header", k)
		}
		for _, prev := range keys[:i] {
			if strings.EqualFold(prev, k) {
				return "", verifyErr(ErrBadSignature, "sign-header-key names %q twice", k)
			}
		}
	}
	systemID = signed[HeaderPrefix+ParamSystemID]
	timestamp, hasTS := signed[HeaderPrefix+ParamTimestamp]
	if systemID == "" || !hasTS {
		return "", verifyErr(ErrBadSignature, "systemid and timestamp must be signed")
	}

	secret, ok := lookupSecret(systemID)
	if !ok {
		return "", verifyErr(ErrUnknownSystem, "systemid %q", systemID)
	}
	got, err := hex.DecodeString(hashHex)
	if err != nil {
		return "", verifyErr(ErrBadSignature, "hash-header is not hex")
	}
	want, _ := hex.DecodeString(HMACHex(secret, signHeader))
	if !hmac.Equal(got, want) {
		return "", verifyErr(ErrBadSignature, "hash-header does not match")
	}

	// Bind the signed values to the headers the server will act on.
	for _, k := range keys {
		vals := headerValues(h, HeaderPrefix+k)
		if len(vals) != 1 || vals[0] != signed[HeaderPrefix+k] {
			return "", verifyErr(ErrBadSignature, "header %s%s differs from the signed value", HeaderPrefix, k)
		}
	}
	for name := range h {
		if len(name) < len(HeaderPrefix) || !strings.EqualFold(name[:len(HeaderPrefix)], HeaderPrefix) {
			continue
		}
		k := name[len(HeaderPrefix):]
		if isMetaHeader(k) {
			continue
		}
		covered := false
		for _, sk := range keys {
			if strings.EqualFold(sk, k) {
				covered = true
				break
			}
		}
		if !covered {
			return "", verifyErr(ErrBadSignature, "header %s is not signed", name)
		}
	}

	ts, err := ParseTimestamp(timestamp)
	if err != nil {
		return "", verifyErr(ErrStaleTimestamp, "%v", err)
	}
	if d := now.Sub(ts); d > maxSkew || d < -maxSkew {
		return "", verifyErr(ErrStaleTimestamp, "timestamp %s is %s away from now", timestamp, d.Round(time.Millisecond))
	}
	if err := v.remember(systemID+"\x00"+timestamp+"\x00"+strings.ToLower(hashHex), ts, now, maxSkew); err != nil {
		return "", err
	}
	return systemID, nil
}

// remember records key and reports a replay if it was already recorded.
// Entries whose timestamp left the freshness window are swept at most once
// per maxSkew; a replay of a swept entry is refused as stale instead.
func (v *Verifier) remember(key string, ts, now time.Time, maxSkew time.Duration) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = make(map[string]time.Time)
	}
	if _, dup := v.seen[key]; dup {
		return verifyErr(ErrReplay, "systemid, timestamp and hash already used")
	}
	if now.Sub(v.lastSweep) > maxSkew || now.Before(v.lastSweep) {
		for k, t := range v.seen {
			if now.Sub(t) > 2*maxSkew {
				delete(v.seen, k)
			}
		}
		v.lastSweep = now
	}
	v.seen[key] = ts
	return nil
}

// isMetaHeader reports the XroadVnpt-* headers that are not parameters.
func isMetaHeader(k string) bool {
	for _, m := range []string{"sign-header-key", "sign-header", "hash-header", "version"} {
		if strings.EqualFold(k, m) {
			return true
		}
	}
	return false
}

// headerValues returns the values of name under any capitalisation: headers
// received by net/http are canonicalised, headers built by SignHeaders are not.
func headerValues(h http.Header, name string) []string {
	var out []string
	for k, vs := range h {
		if strings.EqualFold(k, name) {
			out = append(out, vs...)
		}
	}
	return out
}

func single(h http.Header, name string) (string, error) {
	vs := headerValues(h, name)
	switch len(vs) {
	case 0:
		return "", verifyErr(ErrBadSignature, "missing header %s", name)
	case 1:
		return vs[0], nil
	default:
		return "", verifyErr(ErrBadSignature, "header %s appears %d times", name, len(vs))
	}
}

// parseSignHeader decodes a flat JSON object of string values, refusing
// duplicate keys and any other value type.
func parseSignHeader(s string) (map[string]string, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, verifyErr(ErrBadSignature, "sign-header is not a JSON object")
	}
	out := make(map[string]string)
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, verifyErr(ErrBadSignature, "sign-header: %v", err)
		}
		k, _ := kt.(string)
		vt, err := dec.Token()
		if err != nil {
			return nil, verifyErr(ErrBadSignature, "sign-header: %v", err)
		}
		v, ok := vt.(string)
		if !ok {
			return nil, verifyErr(ErrBadSignature, "sign-header: value of %q is not a string", k)
		}
		if _, dup := out[k]; dup {
			return nil, verifyErr(ErrBadSignature, "sign-header: duplicate key %q", k)
		}
		if len(k) <= len(HeaderPrefix) || k[:len(HeaderPrefix)] != HeaderPrefix {
			return nil, verifyErr(ErrBadSignature, "sign-header: key %q lacks the %s prefix", k, HeaderPrefix)
		}
		out[k] = v
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, verifyErr(ErrBadSignature, "sign-header: unterminated object")
	}
	if _, err := dec.Token(); err == nil {
		return nil, verifyErr(ErrBadSignature, "sign-header: trailing data")
	}
	return out, nil
}
