// Package axis is the hub's edge to the national document-exchange axis
// (Trục liên thông văn bản quốc gia, VNPT "VXP" REST service).
//
// It holds a clean-room client for the axis API (sendEdoc, getReceivedEdocList,
// getEdoc, updateStatus, getSentEdocList, getAgenciesList) that signs every
// request the way SDKVXP 2.0.1 does (HMAC-SHA256 over a JSON copy of the
// XroadVnpt-* headers, see SignHeaders), the matching server-side check
// (Verifier.VerifyHeaders), and the inbound Poller that takes packages from
// the axis into the hub through an Acceptor and marks them consumed only after
// the hub has made them durable.
//
// The package does no database I/O and never re-serialises a document: the
// bytes given to SendEdoc are sent as they are, and the bytes GetEdoc returns
// are exactly what the axis served (base64-decoded). The secret is never
// logged. A simulator of the axis lives in axis/axissim.
package axis
