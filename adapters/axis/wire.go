package axis

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// wireResponse is the common answer shape: {status, ErrorCode, ErrorDesc, DocId, data}.
// Field names match case-insensitively (encoding/json), so "docId" also fills DocID.
type wireResponse struct {
	Status    flexString      `json:"status"`
	ErrorCode flexString      `json:"ErrorCode"`
	ErrorDesc flexString      `json:"ErrorDesc"`
	DocID     flexString      `json:"DocId"`
	Data      json.RawMessage `json:"data"`
}

// decodeData decodes the data field into v; an absent or null data leaves v
// at its zero value.
func (r *wireResponse) decodeData(op string, v any) error {
	if len(r.Data) == 0 || string(r.Data) == "null" {
		return nil
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		return fmt.Errorf("%w: %s: data: %v", ErrBadResponse, op, err)
	}
	return nil
}

// flexString takes a JSON string, number, boolean or null (and keeps any other
// JSON value as its text), because the axis's field types are undocumented:
// ids and codes may arrive as numbers.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*f = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	default:
		*f = flexString(b)
	}
	return nil
}

type wireListItem struct {
	DocID       flexString `json:"docId"`
	ServiceType flexString `json:"serviceType"`
	MessageType flexString `json:"messageType"`
	CreatedTime flexString `json:"created_time"`
	UpdatedTime flexString `json:"updated_time"`
	From        flexString `json:"from"`
	To          flexString `json:"to"`
	Status      flexString `json:"status"`
	StatusDesc  flexString `json:"status_desc"`
}

type wireSentItem struct {
	ServiceType       flexString `json:"serviceType"`
	SenderDocID       flexString `json:"senderDocId"`
	ReceiverDocID     flexString `json:"receiverDocId"`
	FromCode          flexString `json:"fromCode"`
	ToCode            flexString `json:"toCode"`
	Title             flexString `json:"title"`
	Notation          flexString `json:"notation"`
	MessageType       flexString `json:"messageType"`
	SentTime          flexString `json:"sentTime"`
	ReceivedTime      flexString `json:"receivedTime"`
	SendStatus        flexString `json:"sendStatus"`
	SendStatusDesc    flexString `json:"sendStatusDesc"`
	ReceiveStatus     flexString `json:"receiveStatus"`
	ReceiveStatusDesc flexString `json:"receiveStatusDesc"`
}

type wireAgency struct {
	ID      flexString `json:"id"`
	PID     flexString `json:"pid"`
	Code    flexString `json:"code"`
	Name    flexString `json:"name"`
	Mail    flexString `json:"mail"`
	OldCode flexString `json:"oldCode"`
}
