package axis

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Wire constants of SDKVXP 2.0.1.
const (
	// HeaderPrefix starts every signed parameter header.
	HeaderPrefix = "XroadVnpt-"
	// HeaderSignKeys lists the signed parameter names, without the prefix, joined with ";".
	HeaderSignKeys = HeaderPrefix + "sign-header-key"
	// HeaderSign carries the signed JSON object, as the exact string that was signed.
	HeaderSign = HeaderPrefix + "sign-header"
	// HeaderHash carries lowercase hex HMAC-SHA256(secret, sign-header).
	HeaderHash = HeaderPrefix + "hash-header"
	// HeaderVersion carries the SDK protocol version (not signed).
	HeaderVersion = HeaderPrefix + "version"

	// UserAgent is the SDK's User-Agent.
	UserAgent = "JAVASDKAgent/1.0.0 XRoad/VPCP"
	// Version is the value of XroadVnpt-version.
	Version = "3.0.201608"

	// TimestampLayout is the Go layout of the date part of the SDK timestamp
	// (Java ddMMyyyy'T'HHmmss); the "+SSSS" millisecond suffix is added apart.
	TimestampLayout = "02012006T150405"
)

// Parameter names the SDK always puts in the signed map.
const (
	ParamSystemID    = "systemid"
	ParamTimestamp   = "timestamp"
	ParamContentType = "Content-Type"
)

// AxisZone is the time zone of SDK timestamps. The SDK formats in the JVM's
// local zone; clients and the axis run in Vietnam (UTC+7, no daylight saving).
var AxisZone = time.FixedZone("ICT", 7*3600)

// FormatTimestamp renders t as the SDK does: Java ddMMyyyy'T'HHmmss+SSSS in
// AxisZone. The "+SSSS" is a literal plus sign followed by the milliseconds
// padded to four digits, not a zone offset: 14:05:09.042 on 2 Mar 2026 (UTC+7)
// is "02032026T140509+0042".
func FormatTimestamp(t time.Time) string {
	t = t.In(AxisZone)
	return t.Format(TimestampLayout) + fmt.Sprintf("+%04d", t.Nanosecond()/int(time.Millisecond))
}

// ParseTimestamp is the inverse of FormatTimestamp.
func ParseTimestamp(s string) (time.Time, error) {
	if len(s) != len(TimestampLayout)+5 || s[len(TimestampLayout)] != '+' {
		return time.Time{}, fmt.Errorf("axis: timestamp %q: want ddMMyyyy'T'HHmmss+SSSS", s)
	}
	t, err := time.ParseInLocation(TimestampLayout, s[:len(TimestampLayout)], AxisZone)
	if err != nil {
		return time.Time{}, fmt.Errorf("axis: timestamp %q: %w", s, err)
	}
	msText := s[len(TimestampLayout)+1:]
	for i := 0; i < len(msText); i++ {
		if msText[i] < '0' || msText[i] > '9' {
			return time.Time{}, fmt.Errorf("axis: timestamp %q: milliseconds are not digits", s)
		}
	}
	ms, _ := strconv.Atoi(msText)
	if ms > 999 {
		return time.Time{}, fmt.Errorf("axis: timestamp %q: milliseconds out of range", s)
	}
	return t.Add(time.Duration(ms) * time.Millisecond), nil
}

// ErrHeaderValue reports a parameter name or value that cannot travel in an
// XroadVnpt-* header (non-ASCII, control characters, reserved name).
var ErrHeaderValue = errors.New("axis: invalid header parameter")

// reservedParams are header names the signer sets itself; a parameter may not
// override them (the SDK lets params overwrite systemid/timestamp; we do not).
var reservedParams = []string{ParamSystemID, ParamTimestamp, ParamContentType,
	"sign-header-key", "sign-header", "hash-header", "version"}

// SignHeaders builds the request headers the way SDKVXP 2.0.1 does, for one
// request: it must be called again for every request (the SDK's shared header
// map leaks keys between calls and fixes the timestamp once; we do neither).
//
// params are the operation's parameters (servicetype, messagetype, docId, …).
// Together with systemid, timestamp (FormatTimestamp(now)) and Content-Type
// they become XroadVnpt-<k> headers and the signed JSON object
// {"XroadVnpt-<k>":"<v>",…}, serialised compactly without HTML escaping (as
// Gson's JsonObject.toString does) with keys in byte order. XroadVnpt-sign-header-key
// lists the same names in the same order; XroadVnpt-hash-header is the
// lowercase hex HMAC-SHA256 of the JSON string keyed with secret. Header keys
// keep the SDK's spelling (direct map writes, not canonicalised).
//
// Names and values must be printable ASCII: the axis cannot take Vietnamese
// text in headers.
func SignHeaders(systemID, secret, contentType string, params map[string]string, now time.Time) (http.Header, error) {
	fields := make(map[string]string, len(params)+3)
	fields[ParamSystemID] = systemID
	fields[ParamTimestamp] = FormatTimestamp(now)
	fields[ParamContentType] = contentType
	for k, v := range params {
		for _, r := range reservedParams {
			if strings.EqualFold(k, r) {
				return nil, fmt.Errorf("%w: %q is set by the signer", ErrHeaderValue, k)
			}
		}
		fields[k] = v
	}
	keys := make([]string, 0, len(fields))
	for k, v := range fields {
		if !validParamName(k) {
			return nil, fmt.Errorf("%w: name %q", ErrHeaderValue, k)
		}
		if !validParamValue(v) {
			return nil, fmt.Errorf("%w: value of %q is not printable ASCII", ErrHeaderValue, k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i := 1; i < len(keys); i++ {
		if strings.EqualFold(keys[i-1], keys[i]) {
			return nil, fmt.Errorf("%w: %q and %q differ only in case", ErrHeaderValue, keys[i-1], keys[i])
		}
	}
	signed := make(map[string]string, len(fields))
	h := make(http.Header, len(fields)+6)
	for _, k := range keys {
		signed[HeaderPrefix+k] = fields[k]
		h[HeaderPrefix+k] = []string{fields[k]}
	}
	signJSON, err := compactJSON(signed)
	if err != nil {
		return nil, err
	}
	h["Content-Type"] = []string{contentType}
	h[HeaderSignKeys] = []string{strings.Join(keys, ";")}
	h[HeaderSign] = []string{signJSON}
	h[HeaderHash] = []string{HMACHex(secret, signJSON)}
	h["User-Agent"] = []string{UserAgent}
	h[HeaderVersion] = []string{Version}
	return h, nil
}

// HMACHex returns lowercase hex HMAC-SHA256(key = secret, message = signHeader),
// both taken as UTF-8 bytes.
func HMACHex(secret, signHeader string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signHeader))
	return hex.EncodeToString(mac.Sum(nil))
}

// compactJSON encodes v without HTML escaping and without the trailing newline.
func compactJSON(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("axis: encode sign-header: %w", err)
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// SDKFileHash reproduces the SDK's "hash-file" value: SHA-256 in hex, except
// that each byte is printed with Integer.toHexString(0xFF & b), which drops the
// leading zero of bytes below 0x10. The result is therefore 32 to 64
// characters long and not a standard hex digest.
func SDKFileHash(b []byte) string {
	sum := sha256.Sum256(b)
	out := make([]byte, 0, 2*len(sum))
	for _, x := range sum {
		out = strconv.AppendUint(out, uint64(x), 16)
	}
	return string(out)
}

// validParamName accepts an HTTP token (RFC 9110 tchar) that does not contain ';',
// which separates names in sign-header-key.
func validParamName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validParamValue accepts printable ASCII and spaces (no control characters,
// no bytes >= 0x7f, no leading or trailing space, which HTTP would trim).
func validParamValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return strings.TrimSpace(s) == s
}
