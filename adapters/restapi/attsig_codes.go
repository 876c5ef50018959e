package restapi

import (
	"lienthong/envelope/attsig"
	"lienthong/envelope/dsig"
)

// The rejection codes of attachment signatures (envelope/attsig) and of
// revocation checking, with their bilingual titles, added to the one error
// mapping (problem.go). Codes shared with dsig keep dsig's entry.
func init() {
	for code, k := range map[string]problemKind{
		dsig.CodeRevocationUnknown: {422, "Không xác định được tình trạng thu hồi chứng thư số / Revocation status could not be established"},
		attsig.CodeMalformed:       {422, "Chữ ký CMS của tệp đính kèm không hợp lệ / Malformed CMS signature on an attachment"},
		attsig.CodeNotDetached:     {422, "Chữ ký CMS phải tách rời / CMS signature must be detached"},
		attsig.CodeSignerCount:     {422, "Chữ ký CMS phải có đúng một người ký / CMS signature must have exactly one signer"},
		attsig.CodeContentMismatch: {422, "Tệp đính kèm đã bị thay đổi sau khi ký / Attachment altered after signing"},
		attsig.CodeSigningTime:     {422, "Thời điểm ký nằm ngoài hiệu lực chứng thư / Claimed signing time outside the certificate's validity"},
		attsig.CodeSigningCert:     {422, "Thuộc tính signingCertificate không khớp chứng thư người ký / signingCertificate attribute names another certificate"},
		attsig.CodeOrphan:          {422, "Tệp chữ ký .p7s không có tệp tương ứng / Detached signature without its attachment"},
		attsig.CodePDFMalformed:    {422, "Chữ ký trong tệp PDF không hợp lệ / Malformed PDF signature"},
		attsig.CodePDFByteRange:    {422, "Chữ ký PDF không bao trùm toàn bộ tệp / PDF signature does not cover the whole file"},
		attsig.CodePDFSubFilter:    {422, "Kiểu chữ ký PDF không được hỗ trợ / PDF signature sub-filter not supported"},
		attsig.CodePDFTooMany:      {422, "Tệp PDF có quá nhiều chữ ký / Too many signatures in a PDF"},
	} {
		if _, ok := kinds[code]; !ok {
			kinds[code] = k
		}
	}
}
