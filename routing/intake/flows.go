package intake

import (
	"errors"

	"lienthong/envelope"
	"lienthong/routing/ledger"
)

// flowOf says how a parsed document takes part in the business flows:
// recipients are its canonical recipient organs (for a status package, the
// one organ named by ResponseFor/OrganId).
func flowOf(doc *envelope.Document, recipients []string) *ledger.Flow {
	f := &ledger.Flow{Kind: ledger.FlowNew, DueDate: doc.DueDate}
	switch {
	case doc.Format == envelope.FormatEdXMLStatus && doc.Status != nil:
		f = &ledger.Flow{Kind: ledger.FlowStatus, Target: doc.DocumentID, Code: doc.Status.Code,
			Description: doc.Status.Description}
		if len(recipients) > 0 {
			f.Addressee = recipients[0]
		}
	case doc.Format != envelope.FormatEdXML:
	case doc.BusinessDocType == envelope.BusinessRevocation:
		f.Kind, f.DueDate = ledger.FlowRevocation, ""
		for _, rf := range doc.ResponseFor {
			if rf.DocumentID != "" {
				f.Target = rf.DocumentID
				break
			}
		}
	case doc.BusinessDocType == envelope.BusinessUpdate:
		f.Kind, f.Target = ledger.FlowUpdate, doc.BusinessDocumentID
	case doc.BusinessDocType == envelope.BusinessReplacement:
		f.Kind, f.Target = ledger.FlowReplacement, doc.DocumentID
		if len(doc.ReplacedDocumentIDs) > 0 {
			f.Target = doc.ReplacedDocumentIDs[0]
		}
	}
	return f
}

// flowRefusal turns a refusal of the business-flow state machine into the
// intake's typed error; ok is false for any other error.
func flowRefusal(err error) (*Error, bool) {
	var fe *ledger.FlowError
	if !errors.As(err, &fe) {
		return nil, false
	}
	return &Error{Code: Code(fe.Code), Msg: fe.Msg, Err: err}, true
}
