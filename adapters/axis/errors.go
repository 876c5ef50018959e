package axis

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// ErrResponseTooLarge: the axis answered with more bytes than the configured limit.
var ErrResponseTooLarge = errors.New("axis: response too large")

// ErrBadResponse: the axis answered with something that is not the expected
// JSON (or, for getEdoc, data that is not base64).
var ErrBadResponse = errors.New("axis: malformed response")

// APIError is a refusal by the axis: a JSON answer whose ErrorCode is not "0",
// or a non-2xx HTTP status. Code and Desc are the axis's ErrorCode and
// ErrorDesc (empty when the body was not JSON); HTTPStatus is the HTTP status
// code. Only HTTPStatus >= 500 and 429 make it retryable.
type APIError struct {
	Op         string // the operation, e.g. "getEdoc"
	Code       string // ErrorCode
	Desc       string // ErrorDesc, or a snippet of a non-JSON body
	Status     string // the "status" field (OK or FAIL)
	HTTPStatus int
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("axis %s: HTTP %d: %s", e.Op, e.HTTPStatus, e.Desc)
	}
	return fmt.Sprintf("axis %s: ErrorCode %s: %s (HTTP %d)", e.Op, e.Code, e.Desc, e.HTTPStatus)
}

// Temporary reports whether the refusal may go away by itself (HTTP 5xx or 429).
func (e *APIError) Temporary() bool {
	return e.HTTPStatus >= 500 || e.HTTPStatus == 429
}

// IsRetryable reports whether err is worth retrying later: HTTP 5xx/429,
// network errors and timeouts. An ErrorCode other than "0" on a 2xx answer,
// other 4xx answers, oversize or malformed responses and a cancelled context
// are not.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Temporary()
	}
	if errors.Is(err, ErrResponseTooLarge) || errors.Is(err, ErrBadResponse) || errors.Is(err, ErrHeaderValue) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var attemptErr *transportError
	return errors.As(err, &attemptErr)
}

// transportError marks a failure to get an HTTP answer at all (connection
// refused or reset, truncated body, per-attempt timeout).
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }
