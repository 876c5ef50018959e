package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"lienthong/envelope/dsig"
	"lienthong/envelope/verify"
	"lienthong/routing/ledger"
)

// verificationLedger is what the verification route reads.
type verificationLedger interface {
	Verification(ctx context.Context, id string) (json.RawMessage, error)
}

// mountVerification registers GET /v1/documents/{id}/verification.
func (s *Server) mountVerification(v1 *echo.Group) {
	v1.GET("/documents/:id/verification", s.getVerification)
}

// getVerification serves a document's verification report, with the same
// read authorisation as the document. A document accepted while the hub had
// no trust configuration has no stored report: its outcome is not_checked.
func (s *Server) getVerification(c echo.Context) error {
	id := c.Param("id")
	if err := s.mayRead(c, id); err != nil {
		return err
	}
	ctx := c.Request().Context()
	vl, ok := s.l.(verificationLedger)
	var rep json.RawMessage
	var err error = ledger.ErrNotFound
	if ok {
		rep, err = vl.Verification(ctx, id)
	}
	if errors.Is(err, ledger.ErrNotFound) {
		if _, derr := s.l.Document(ctx, id); derr != nil {
			return derr
		}
		return c.JSON(http.StatusOK, map[string]any{"document": id, "outcome": verify.OutcomeNotChecked,
			"signatures": []any{}, "attachments": []any{}})
	}
	if err != nil {
		return err
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(rep, &body); err != nil {
		return err
	}
	doc, _ := json.Marshal(id)
	body["document"] = doc
	return c.JSON(http.StatusOK, body)
}

// The signature rejection codes and their bilingual titles, added to the one
// error mapping (problem.go): documents refused as XML are 400, signatures
// and bindings 422.
func init() {
	for code, k := range map[string]problemKind{
		dsig.CodeDoctype:            {400, "Không chấp nhận khai báo DOCTYPE / DOCTYPE not allowed"},
		dsig.CodeDuplicateAttr:      {400, "Thuộc tính bị lặp / Duplicate attribute"},
		dsig.CodeCommentInjection:   {422, "Chú thích chen vào nội dung được ký / Comment injected into signed text"},
		dsig.CodeMissing:            {422, "Văn bản chưa được ký số / Document is not signed"},
		dsig.CodePlaceholder:        {422, "Chữ ký không kiểm tra được (không thuộc XML-DSig) / Signature is a placeholder, not XML-DSig"},
		dsig.CodeMultiple:           {422, "Có nhiều hơn một chữ ký / More than one signature"},
		dsig.CodeMisplaced:          {422, "Chữ ký không đúng vị trí / Signature at the wrong place"},
		dsig.CodeMalformed:          {422, "Cấu trúc chữ ký không hợp lệ / Malformed signature"},
		dsig.CodeNotWholeDoc:        {422, "Chữ ký không bao trùm toàn bộ văn bản / Signature does not cover the whole document"},
		dsig.CodeDuplicateID:        {422, "Mã định danh phần tử bị lặp / Duplicate element id"},
		dsig.CodeSHA1:               {422, "Thuật toán SHA-1 không được chấp nhận / SHA-1 not allowed"},
		dsig.CodeMD5:                {422, "Thuật toán MD5 không được chấp nhận / MD5 not allowed"},
		dsig.CodeHMAC:               {422, "Chữ ký HMAC không được chấp nhận / HMAC signatures not allowed"},
		dsig.CodeAlgorithm:          {422, "Thuật toán không được chấp nhận / Algorithm not allowed"},
		dsig.CodeNoCertificate:      {422, "Chữ ký thiếu chứng thư số / Signature carries no certificate"},
		dsig.CodeUnknownSigner:      {422, "Chứng thư số không thuộc tổ chức chứng thực tin cậy / Signer certificate not issued by a trusted CA"},
		dsig.CodeExpired:            {422, "Chứng thư số đã hết hạn / Signer certificate expired"},
		dsig.CodeNotYetValid:        {422, "Chứng thư số chưa có hiệu lực / Signer certificate not yet valid"},
		dsig.CodeKeyUsage:           {422, "Chứng thư số không dùng để ký / Certificate not allowed for signing"},
		dsig.CodeWeakKey:            {422, "Khóa ký quá yếu / Signer key too weak"},
		dsig.CodeRevoked:            {422, "Chứng thư số đã bị thu hồi / Signer certificate revoked"},
		dsig.CodeInvalid:            {422, "Chữ ký số không hợp lệ / Signature does not verify"},
		verify.CodeSignerMismatch:   {422, "Người ký không thuộc đơn vị gửi / Signer is bound to another organ"},
		verify.CodeSignerNotBound:   {422, "Chứng thư số chưa gắn với đơn vị gửi / Signer certificate not bound to the sender"},
		verify.CodeSignedMetadata:   {422, "Thông tin văn bản khác với nội dung được ký / Metadata differs from the signed content"},
		verify.CodeUntrustedChannel: {422, "Kênh gửi chưa được cấu hình tin cậy / No trust domain for this channel"},
	} {
		if _, ok := kinds[code]; !ok { // envelope codes (not_xml, bad_encoding, too_deep) keep their entry
			kinds[code] = k
		}
	}
}
