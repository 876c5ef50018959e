package restapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"lienthong/envelope"
	"lienthong/routing/intake"
	"lienthong/routing/ledger"
)

// Problem is an RFC 9457 problem document with the hub's stable code.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Code     string `json:"code"`
	Instance string `json:"instance,omitempty"`
}

// problemKind is the fixed part of a problem: status and a bilingual title.
type problemKind struct {
	status int
	title  string
}

// kinds maps every stable code to its HTTP status and bilingual title.
var kinds = map[string]problemKind{
	string(envelope.CodeNotXML):          {400, "Nội dung không phải XML hợp lệ / Body is not well-formed XML"},
	string(envelope.CodeBadEncoding):     {400, "Mã hóa ký tự không hợp lệ (chỉ nhận UTF-8) / Invalid character encoding (UTF-8 only)"},
	string(envelope.CodeUnknownEnvelope): {400, "Không nhận dạng được gói tin (không phải edXML hay phong bì Lienthong) / Unknown envelope (neither edXML nor the hub envelope)"},
	string(envelope.CodeMissingFrom):     {400, "Thiếu đơn vị gửi (From) / Missing sender (From)"},
	string(envelope.CodeMissingTo):       {400, "Thiếu đơn vị nhận (To) / Missing recipient (To)"},
	string(envelope.CodeMissingDocID):    {400, "Thiếu mã định danh văn bản (DocumentId) / Missing DocumentId"},
	string(envelope.CodeBadOrganCode):    {400, "Mã định danh cơ quan không hợp lệ / Malformed organ code"},
	string(envelope.CodeTooLarge):        {413, "Gói tin vượt quá dung lượng cho phép / Document exceeds the size limit"},
	string(envelope.CodeTooDeep):         {400, "Gói tin lồng quá sâu / Document nesting too deep"},
	string(envelope.CodeBadBase64):       {400, "Tệp đính kèm mã hóa base64 không hợp lệ / Attachment is not valid base64"},
	string(envelope.CodeManifest):        {400, "Danh mục tệp đính kèm không khớp / Attachment manifest mismatch"},
	string(envelope.CodeBadStatus):       {400, "Gói tin trạng thái không hợp lệ / Invalid status package"},
	string(envelope.CodeBadBusiness):     {400, "Loại nghiệp vụ văn bản không hợp lệ / Invalid business document type"},
	string(intake.CodeForbiddenSender):   {403, "Không được gửi thay đơn vị khác / You may not submit as another organ"},
	string(intake.CodeUnknownSender):     {422, "Đơn vị gửi không có trong danh bạ / Sender organ not in the directory"},
	string(intake.CodeUnknownRecipient):  {422, "Đơn vị nhận không có trong danh bạ / Recipient organ not in the directory"},
	string(intake.CodeConflict):          {409, "Mã văn bản đã được dùng cho nội dung khác / DocumentId already used with other content"},
	string(intake.CodeVerification):      {422, "Chữ ký số không hợp lệ / Signature verification failed"},
	ledger.FlowUnknownOriginal:           {422, "Không tìm thấy văn bản gốc / Unknown original document"},
	ledger.FlowNotRecipient:              {403, "Đơn vị không phải là nơi nhận văn bản gốc / Organ is not a recipient of the original"},
	ledger.FlowIllegalTransition:         {409, "Trạng thái không hợp lệ ở bước hiện tại / Status not allowed in the current state"},
	ledger.FlowNoPendingRecall:           {409, "Không có yêu cầu thu hồi đang chờ / No pending recall to answer"},
	ledger.FlowRecalled:                  {409, "Văn bản đã bị thu hồi / Document was recalled"},
	ledger.FlowSuperseded:                {409, "Văn bản đã được cập nhật hoặc thay thế / Document was updated or replaced"},
	"unauthenticated":                    {401, "Chưa xác thực / Authentication required"},
	"forbidden":                          {403, "Không có quyền / Not allowed for this role"},
	"not_found":                          {404, "Không tìm thấy / Not found"},
	"purged":                             {410, "Nội dung đã được xóa theo thời hạn lưu trữ; bằng chứng vẫn còn / Content purged after its retention period; its evidence remains"},
	"unavailable":                        {503, "Hệ thống tạm thời không sẵn sàng, vui lòng thử lại / Temporarily unavailable, retry later"},
	"bad_request":                        {400, "Yêu cầu không hợp lệ / Bad request"},
	"method_not_allowed":                 {405, "Phương thức không được hỗ trợ / Method not allowed"},
	"unsupported_media_type":             {415, "Kiểu nội dung không được hỗ trợ (cần application/xml) / Unsupported media type (send application/xml)"},
	"internal":                           {500, "Lỗi hệ thống / Internal error"},
}

// apiError is an error raised by a handler with a stable code.
type apiError struct {
	code   string
	detail string
}

func (e *apiError) Error() string { return e.code + ": " + e.detail }

func fail(code, detail string) error { return &apiError{code: code, detail: detail} }

// toProblem is the one translation from any error to a problem document.
func toProblem(err error) Problem {
	code, detail := "internal", "internal error"
	var ae *apiError
	var ee *envelope.Error
	var ie *intake.Error
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ae):
		code, detail = ae.code, ae.detail
	case errors.As(err, &ee):
		code, detail = string(ee.Code), ee.Msg
	case errors.As(err, &ie):
		code, detail = string(ie.Code), ie.Msg
	case errors.Is(err, ledger.ErrNotFound):
		code, detail = "not_found", "no such document for this caller"
	case errors.Is(err, ledger.ErrUnavailable):
		code, detail = "unavailable", "the ledger database is unavailable; nothing was accepted"
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			code, detail = "not_found", "no such route"
		case http.StatusMethodNotAllowed:
			code, detail = "method_not_allowed", "method not allowed"
		case http.StatusRequestEntityTooLarge:
			code, detail = string(envelope.CodeTooLarge), "request body over the limit"
		case http.StatusUnauthorized:
			code, detail = "unauthenticated", "missing or invalid credentials"
		default:
			code, detail = "bad_request", http.StatusText(he.Code)
		}
		// A handler's own message (e.g. the log API's "parameter index must
		// be a non-negative integer") says more than the status text.
		if m, ok := he.Message.(string); ok && m != "" && m != http.StatusText(he.Code) {
			detail = m
		}
	}
	k, ok := kinds[code]
	if !ok {
		k = kinds["internal"]
	}
	return Problem{Type: "https://lienthong.quochoi.vn/problems/" + code, Title: k.title, Status: k.status,
		Detail: detail, Code: code}
}

func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	p := toProblem(err)
	p.Instance = c.Request().URL.Path
	if p.Status >= 500 && p.Code == "internal" {
		s.cfg.Logger.ErrorContext(c.Request().Context(), "request failed", "path", c.Request().URL.Path, "error", err)
	}
	if p.Status == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", "5")
	}
	c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(p.Status)
	_ = json.NewEncoder(c.Response()).Encode(p)
}
