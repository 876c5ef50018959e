package logverify

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ReceiptNS is the namespace of receipts (schemas/receipt.xsd).
const ReceiptNS = "urn:lienthong:receipt:1"

// maxReceipt bounds the size of a receipt ParseReceipt reads.
const maxReceipt = 1 << 20

// Receipt says that the hub recorded event Event of document Accepted.DocumentID
// for Recipient, and where both events sit in the evidence log. It holds
// everything needed to rebuild both leaves, so that a receipt is proven by two
// inclusion proofs and a signed checkpoint, and needs no signature of its own.
// Its XML form (Encode) is canonical: ParseReceipt refuses any other spelling,
// so changing any byte of a receipt is detected.
type Receipt struct {
	Recipient     string // the recipient this receipt is for
	Sender        string // the document's sender, as the accepted event recorded it
	AcceptedIndex uint64 // leaf index of the document's accepted event
	Accepted      Leaf   // the accepted event (document id, digest)
	EventIndex    uint64 // leaf index of the event
	Event         Leaf   // the event this receipt is about
}

// NewReceipt builds the receipt of event (at eventIndex) for recipient, from
// the document's accepted leaf. It checks what a verifier checks.
func NewReceipt(recipient string, acceptedIndex uint64, accepted Leaf, eventIndex uint64, event Leaf) (Receipt, error) {
	r := Receipt{Recipient: recipient, AcceptedIndex: acceptedIndex, Accepted: accepted, EventIndex: eventIndex, Event: event}
	var d acceptedDetail
	if err := json.Unmarshal([]byte(accepted.Detail), &d); err != nil {
		return Receipt{}, fmt.Errorf("%w: accepted event detail: %v", ErrInvalid, err)
	}
	r.Sender = d.Sender
	return r, r.check()
}

// acceptedDetail is what a receipt reads from the accepted event's detail.
type acceptedDetail struct {
	Sender     string   `json:"sender"`
	Recipients []string `json:"recipients"`
	SHA256     string   `json:"sha256"`
}

// check: the two leaves belong together and name this recipient and sender.
func (r Receipt) check() error {
	a, e := r.Accepted, r.Event
	switch {
	case a.Kind != "accepted" || len(a.DocumentSHA256) == 0:
		return fmt.Errorf("%w: receipt: leaf %d is not an accepted event with a digest", ErrInvalid, r.AcceptedIndex)
	case a.DocumentID == "" || e.DocumentID != a.DocumentID:
		return fmt.Errorf("%w: receipt: event %d is of document %q, not %q", ErrInvalid, e.EventID, e.DocumentID, a.DocumentID)
	case e.Kind == "accepted" && (e.EventID != a.EventID || r.EventIndex != r.AcceptedIndex):
		return fmt.Errorf("%w: receipt: a second accepted event", ErrInvalid)
	}
	var d acceptedDetail
	if err := json.Unmarshal([]byte(a.Detail), &d); err != nil {
		return fmt.Errorf("%w: accepted event detail: %v", ErrInvalid, err)
	}
	if d.Sender != r.Sender {
		return fmt.Errorf("%w: receipt names sender %q, the accepted event %q", ErrInvalid, r.Sender, d.Sender)
	}
	if d.SHA256 != "" && d.SHA256 != hex.EncodeToString(a.DocumentSHA256) {
		return fmt.Errorf("%w: accepted event detail digest differs from the leaf's", ErrInvalid)
	}
	if r.Recipient == "" {
		return fmt.Errorf("%w: receipt names no recipient", ErrInvalid)
	}
	if e.Recipient != "" && e.Recipient != r.Recipient {
		return fmt.Errorf("%w: receipt for %q about an event of recipient %q", ErrInvalid, r.Recipient, e.Recipient)
	}
	if e.Recipient == "" && !slices.Contains(d.Recipients, r.Recipient) {
		return fmt.Errorf("%w: %q is not a recipient of the accepted document", ErrInvalid, r.Recipient)
	}
	return nil
}

// Encode returns the canonical XML of the receipt.
func (r Receipt) Encode() []byte {
	var b bytes.Buffer
	esc := func(s string) string {
		var e bytes.Buffer
		_ = xml.EscapeText(&e, []byte(s))
		return e.String()
	}
	at := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	a, e := r.Accepted, r.Event
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<Receipt xmlns="` + ReceiptNS + `" version="1">` + "\n")
	fmt.Fprintf(&b, "  <Document id=\"%s\">\n", esc(a.DocumentID))
	fmt.Fprintf(&b, "    <Digest algorithm=\"sha-256\">%s</Digest>\n", hex.EncodeToString(a.DocumentSHA256))
	fmt.Fprintf(&b, "    <Sender>%s</Sender>\n", esc(r.Sender))
	fmt.Fprintf(&b, "    <Accepted leafIndex=\"%d\" eventId=\"%d\" state=\"%s\" at=\"%s\">%s</Accepted>\n",
		r.AcceptedIndex, a.EventID, esc(a.State), at(a.At), esc(a.Detail))
	b.WriteString("  </Document>\n")
	fmt.Fprintf(&b, "  <Recipient>%s</Recipient>\n", esc(r.Recipient))
	fmt.Fprintf(&b, "  <Event leafIndex=\"%d\" eventId=\"%d\" kind=\"%s\" state=\"%s\"", r.EventIndex, e.EventID, esc(e.Kind), esc(e.State))
	if e.Recipient != "" {
		fmt.Fprintf(&b, " recipient=\"%s\"", esc(e.Recipient))
	}
	fmt.Fprintf(&b, " at=\"%s\">%s</Event>\n", at(e.At), esc(e.Detail))
	b.WriteString("</Receipt>\n")
	return b.Bytes()
}

// AcceptedLeaf and EventLeaf return the canonical bytes of the two leaves.
func (r Receipt) AcceptedLeaf() []byte { return r.Accepted.Encode() }

// EventLeaf returns the canonical bytes of the event's leaf.
func (r Receipt) EventLeaf() []byte { return r.Event.Encode() }

type xmlReceipt struct {
	XMLName  xml.Name `xml:"urn:lienthong:receipt:1 Receipt"`
	Version  string   `xml:"version,attr"`
	Document struct {
		ID       string `xml:"id,attr"`
		Digest   string `xml:"urn:lienthong:receipt:1 Digest"`
		Sender   string `xml:"urn:lienthong:receipt:1 Sender"`
		Accepted struct {
			LeafIndex string `xml:"leafIndex,attr"`
			EventID   string `xml:"eventId,attr"`
			State     string `xml:"state,attr"`
			At        string `xml:"at,attr"`
			Detail    string `xml:",chardata"`
		} `xml:"urn:lienthong:receipt:1 Accepted"`
	} `xml:"urn:lienthong:receipt:1 Document"`
	Recipient string `xml:"urn:lienthong:receipt:1 Recipient"`
	Event     struct {
		LeafIndex string `xml:"leafIndex,attr"`
		EventID   string `xml:"eventId,attr"`
		Kind      string `xml:"kind,attr"`
		State     string `xml:"state,attr"`
		Recipient string `xml:"recipient,attr"`
		At        string `xml:"at,attr"`
		Detail    string `xml:",chardata"`
	} `xml:"urn:lienthong:receipt:1 Event"`
}

// ParseReceipt parses a receipt and accepts only its canonical form (what
// Encode writes), whose leaves belong together.
func ParseReceipt(b []byte) (Receipt, error) {
	if len(b) > maxReceipt {
		return Receipt{}, fmt.Errorf("%w: receipt of %d bytes", ErrInvalid, len(b))
	}
	var x xmlReceipt
	if err := xml.Unmarshal(b, &x); err != nil {
		return Receipt{}, fmt.Errorf("%w: receipt is not well-formed: %v", ErrInvalid, err)
	}
	if x.Version != "1" {
		return Receipt{}, fmt.Errorf("%w: receipt version %q", ErrInvalid, x.Version)
	}
	num := func(what, s string) (uint64, error) {
		n, err := strconv.ParseUint(s, 10, 63)
		if err != nil || strconv.FormatUint(n, 10) != s {
			return 0, fmt.Errorf("%w: receipt %s %q", ErrInvalid, what, s)
		}
		return n, nil
	}
	tm := func(what, s string) (time.Time, error) {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || !strings.HasSuffix(s, "Z") {
			return time.Time{}, fmt.Errorf("%w: receipt %s time %q", ErrInvalid, what, s)
		}
		return t.UTC(), nil
	}
	var r Receipt
	var err error
	var n uint64
	r.Recipient, r.Sender = x.Recipient, x.Document.Sender
	dig, err := hex.DecodeString(x.Document.Digest)
	if err != nil || len(dig) != 32 {
		return Receipt{}, fmt.Errorf("%w: receipt digest %q", ErrInvalid, x.Document.Digest)
	}
	xa := x.Document.Accepted
	if r.AcceptedIndex, err = num("accepted leafIndex", xa.LeafIndex); err != nil {
		return Receipt{}, err
	}
	if n, err = num("accepted eventId", xa.EventID); err != nil {
		return Receipt{}, err
	}
	r.Accepted = Leaf{EventID: int64(n), DocumentID: x.Document.ID, Kind: "accepted", State: xa.State, Detail: xa.Detail, DocumentSHA256: dig}
	if r.Accepted.At, err = tm("accepted", xa.At); err != nil {
		return Receipt{}, err
	}
	xe := x.Event
	if r.EventIndex, err = num("event leafIndex", xe.LeafIndex); err != nil {
		return Receipt{}, err
	}
	if n, err = num("event eventId", xe.EventID); err != nil {
		return Receipt{}, err
	}
	r.Event = Leaf{EventID: int64(n), DocumentID: x.Document.ID, Recipient: xe.Recipient, Kind: xe.Kind, State: xe.State, Detail: xe.Detail}
	if r.Event.At, err = tm("event", xe.At); err != nil {
		return Receipt{}, err
	}
	if xe.Kind == "accepted" {
		r.Event.DocumentSHA256 = dig
	}
	if err := r.check(); err != nil {
		return Receipt{}, err
	}
	if !bytes.Equal(r.Encode(), b) {
		return Receipt{}, fmt.Errorf("%w: receipt is not in canonical form (bytes were changed)", ErrInvalid)
	}
	return r, nil
}
