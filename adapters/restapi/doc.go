// Package restapi is the hub's HTTP edge for NA agencies, auditors and
// operators: submission (POST /v1/documents), tracking, content, the pull
// inbox, health and metrics. It authenticates every call (bearer token or
// mutual-TLS client certificate), enforces least privilege per organ and role,
// and turns every error into one RFC 9457 problem document with a stable
// machine code — the single place where errors become HTTP.
package restapi
