// Package axissim simulates the national document-exchange axis (VNPT VXP
// REST service) for tests and for `hubd dev`: it serves the operations the
// axis client uses (sendEdoc, getReceivedEdocList, getEdoc, updateStatus,
// getSentEdocList, getAgenciesList), authenticates every request with the
// same HMAC header check (axis.Verifier), keeps a queue per organ in memory,
// and can be told to fail, hang or repeat list entries.
//
// Refusals. The real axis's error codes are not published; the simulator
// answers every failure with a JSON body {"status":"FAIL","ErrorCode":…,
// "ErrorDesc":…} and uses these codes (borrowed from a provincial axis where
// one exists; simulator-only otherwise):
//
//	15  authentication failed (bad HMAC, unknown systemid, stale timestamp,
//	    replay) — HTTP 401; ErrorDesc names the reason
//	2   bad request (missing or invalid parameter)            — HTTP 200
//	3   unknown docId (or not addressed to the caller)         — HTTP 200
//	10  invalid package (not XML, hash-file mismatch)          — HTTP 200
//	18  no recipient found                                      — HTTP 200
//	99  simulated failure (fault injection)
//
// Authentication failures use HTTP 401 so that the client never retries them;
// business refusals use HTTP 200 as the SDK-era services do.
//
// State is in memory only and is lost when the process exits. The admin
// endpoints under /_sim/ (Config.Admin) are unauthenticated: run the
// simulator on loopback only.
package axissim
