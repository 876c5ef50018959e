package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"lienthong/envelope"
	"lienthong/envelope/dsig"
	"lienthong/envelope/trust"
	"lienthong/envelope/verify"
)

const verifyUsage = `cách dùng / usage: hubctl verify --trust PEM_FILE_OR_DIR [--crl FILE]… [--directory FILE] [--policy require|record] [--domain NAME] FILE
  Kiểm tra chữ ký số ngoại tuyến, in báo cáo (JSON) / verify offline and print the report (JSON).
  Mã thoát / exit status: 0 hợp lệ / valid, 1 không hợp lệ / invalid, 2 sai cách dùng / usage error.
  --trust      tệp PEM các CA tin cậy, hoặc thư mục (mỗi miền một thư mục con) / anchors PEM file, or a trust dir
  --crl        tệp CRL (lặp lại được) / CRL file (repeatable)
  --directory  danh bạ đơn vị (JSON như hubd serve --directory): kiểm tra người ký thuộc đơn vị gửi
               / organs file: checks the signer-to-organ binding
  --policy     require (mặc định: không ký = không hợp lệ / default: unsigned is invalid) hoặc / or record
  --domain     miền tin cậy trong thư mục --trust / trust domain within a --trust dir (default: agency)
`

// NewCRLChecker, when set (by the revocation package's hubctl glue), turns
// --crl files into a revocation checker for the chosen domain.
var NewCRLChecker = newCRLChecker

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// invalidError is a document that does not verify: exit status 1.
type invalidError struct{ code, reason string }

func (e *invalidError) Error() string {
	return fmt.Sprintf("KHÔNG HỢP LỆ / INVALID [%s]: %s", e.code, e.reason)
}

// cmdVerify verifies FILE offline and prints its report to out.
func cmdVerify(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() { fmt.Fprint(errOut, verifyUsage) }
	trustPath := fs.String("trust", "", "anchors PEM file or trust directory")
	var crls listFlag
	fs.Var(&crls, "crl", "CRL file (repeatable)")
	dirFile := fs.String("directory", "", "organs file (JSON)")
	policy := fs.String("policy", "", "require or record")
	domain := fs.String("domain", "", "trust domain within a --trust directory")
	maxBytes := fs.Int64("max-bytes", 32<<20, "largest document read")
	if err := fs.Parse(args); err != nil {
		return usageErr("%v", err)
	}
	if *trustPath == "" || fs.NArg() != 1 {
		fs.Usage()
		return usageErr("cần --trust và một tệp / --trust and one file are required")
	}
	if *policy != "" && !trust.Policy(*policy).Valid() {
		return usageErr("--policy %q: require hoặc / or record", *policy)
	}
	store, dom, err := loadTrust(*trustPath, *domain, trust.Policy(*policy))
	if err != nil {
		return usageErr("--trust: %v", err)
	}
	if len(crls) > 0 {
		if NewCRLChecker == nil {
			return usageErr("--crl: bản hubctl này chưa có kiểm tra thu hồi / revocation checking is not available in this build")
		}
		rc, err := NewCRLChecker(crls)
		if err != nil {
			return usageErr("--crl: %v", err)
		}
		d, _ := store.Domain(dom)
		cp := *d
		cp.Revocation = rc
		if err := store.Add(&cp); err != nil {
			return usageErr("%v", err)
		}
	}
	var dir map[string]verify.Binding
	if *dirFile != "" {
		if dir, err = loadBindings(*dirFile); err != nil {
			return usageErr("--directory: %v", err)
		}
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return usageErr("%v", err)
	}
	raw, err := io.ReadAll(io.LimitReader(f, *maxBytes+1))
	f.Close()
	if err != nil {
		return usageErr("%v", err)
	}

	v, err := verify.New(verify.Config{Trust: store, Limits: envelope.Limits{MaxBytes: *maxBytes},
		Attachments: verify.AttachmentSignatures{Envelope: envelope.Limits{MaxBytes: *maxBytes}}})
	if err != nil {
		return err
	}
	rep, verr := offlineVerify(ctx, v, raw, *maxBytes, dom, dir, dirFile)
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if _, err := out.Write(append(b, '\n')); err != nil {
		return err
	}
	if verr != nil {
		var ie *invalidError
		if errors.As(verr, &ie) {
			return ie
		}
		return verr
	}
	msg := "HỢP LỆ / VALID"
	if rep.Outcome != verify.OutcomeValid {
		msg += fmt.Sprintf(" (policy %s: %s)", rep.Policy, rep.Outcome)
	} else if s := rep.Signatures[0]; s.Signer != nil {
		msg += ": " + s.Signer.Subject
		if s.Organ != "" {
			msg += " — " + s.Organ
		}
		for _, ps := range rep.Signatures[1:] {
			if ps.Role == "payload" && ps.Signer != nil {
				msg += "; văn bản bên trong / payload: " + ps.Signer.Subject
			}
		}
	}
	fmt.Fprintln(errOut, msg)
	return nil
}

// offlineVerify parses and verifies raw as the hub would. An invalid
// document gives a report and an *invalidError.
func offlineVerify(ctx context.Context, v *verify.Verifier, raw []byte, maxBytes int64, dom string,
	dir map[string]verify.Binding, dirFile *string) (*verify.Report, error) {
	invalid := func(code, reason string) (*verify.Report, error) {
		return &verify.Report{Outcome: verify.OutcomeInvalid, Code: code, Reason: reason, Domain: dom,
			Signatures: []verify.Signature{}, Attachments: []verify.Attachment{}}, &invalidError{code, reason}
	}
	if int64(len(raw)) > maxBytes {
		return invalid(string(envelope.CodeTooLarge), fmt.Sprintf("over the limit of %d bytes", maxBytes))
	}
	doc, err := envelope.Parse(raw, envelope.Limits{MaxBytes: maxBytes})
	if err != nil {
		var ee *envelope.Error
		if errors.As(err, &ee) {
			return invalid(string(ee.Code), ee.Msg)
		}
		return nil, err
	}
	var b verify.Binding
	if dir != nil {
		var ok bool
		if b, ok = dir[doc.From.Code]; !ok {
			return invalid("unknown_sender", fmt.Sprintf("sender organ %s is not in %s", doc.From.Code, *dirFile))
		}
	}
	rep, err := v.VerifyIn(ctx, doc, dom, b, dir != nil)
	var ve *dsig.VerifyError
	if errors.As(err, &ve) {
		return rep, &invalidError{ve.Code, ve.Reason}
	}
	return rep, err
}

// loadTrust reads a PEM file (one domain, named after the policy's default
// use, "agency") or a trust directory, applying policy when given.
func loadTrust(path, domain string, policy trust.Policy) (*trust.Store, string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, "", err
	}
	var s *trust.Store
	if st.IsDir() {
		if s, err = trust.LoadDir(path); err != nil {
			return nil, "", err
		}
		if domain == "" {
			if names := s.Names(); len(names) == 1 {
				domain = names[0]
			} else {
				domain = verify.DomainAgency
			}
		}
	} else {
		if domain == "" {
			domain = verify.DomainAgency
		}
		s = trust.NewStore()
		if err := s.AddPEMFile(domain, trust.PolicyRequire, path); err != nil {
			return nil, "", err
		}
	}
	d, ok := s.Domain(domain)
	if !ok {
		return nil, "", fmt.Errorf("no trust domain %q in %s (have %v)", domain, path, s.Names())
	}
	if policy != "" {
		cp := *d
		cp.Policy = policy
		if err := s.Add(&cp); err != nil {
			return nil, "", err
		}
	}
	return s, domain, nil
}

// loadBindings reads the organs of a directory file (the format of
// `hubd serve --directory`), by code and by old code.
func loadBindings(path string) (map[string]verify.Binding, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var df struct {
		Organs []struct {
			Code             string   `json:"code"`
			Delivery         string   `json:"delivery"`
			OldCodes         []string `json:"old_codes"`
			CertFingerprints []string `json:"cert_fingerprints"`
		} `json:"organs"`
	}
	if err := json.Unmarshal(b, &df); err != nil {
		return nil, err
	}
	out := map[string]verify.Binding{}
	for _, o := range df.Organs {
		bind := verify.Binding{Code: o.Code, OldCodes: o.OldCodes, CertFingerprints: o.CertFingerprints, Delivery: o.Delivery}
		for i, fp := range bind.CertFingerprints {
			bind.CertFingerprints[i] = strings.ToLower(strings.ReplaceAll(fp, ":", ""))
		}
		out[o.Code] = bind
		for _, c := range o.OldCodes {
			out[c] = bind
		}
	}
	return out, nil
}
