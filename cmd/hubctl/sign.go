package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"lienthong/cmd/internal/keyfile"
	"lienthong/envelope"
	"lienthong/envelope/dsig"
	"lienthong/envelope/verify"
)

const signUsage = `cách dùng / usage: hubctl sign --key KEY [--cert CERT] [--chain FILE] [-o OUT] IN
  Ký số văn bản edXML hoặc phong bì Lienthong (XML-DSig, RSA-SHA256 hoặc ECDSA, c14n độc quyền)
  Sign an edXML package or a hub envelope (enveloped XML-DSig over the whole document).
  --key      khóa PEM (PKCS#8/PKCS#1/SEC1) hoặc tệp PKCS#12 / PEM key or PKCS#12 file
  --cert     chứng thư số PEM / signer certificate PEM (optional with PKCS#12)
  --chain    chứng thư trung gian PEM / intermediate certificates PEM
  mật khẩu PKCS#12 / PKCS#12 password: LT_PKCS12_PASSWORD or --password-file
`

// cmdSign signs IN and writes the signed bytes to out (or -o).
func cmdSign(args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() { fmt.Fprint(errOut, signUsage) }
	key := fs.String("key", "", "key file")
	cert := fs.String("cert", "", "certificate file")
	chain := fs.String("chain", "", "intermediates file")
	pwFile := fs.String("password-file", "", "file holding the PKCS#12 password")
	o := fs.String("o", "-", "output file (- = stdout)")
	if err := fs.Parse(args); err != nil {
		return usageErr("%v", err)
	}
	if *key == "" || fs.NArg() != 1 {
		fs.Usage()
		return usageErr("cần --key và một tệp / --key and one input file are required")
	}
	pw := os.Getenv("LT_PKCS12_PASSWORD")
	if *pwFile != "" {
		b, err := os.ReadFile(*pwFile)
		if err != nil {
			return usageErr("%v", err)
		}
		pw = strings.TrimRight(string(b), "\r\n")
	}
	signer, err := keyfile.Load(*key, *cert, *chain, pw)
	if err != nil {
		return fmt.Errorf("khóa ký / signing key: %w", err)
	}
	raw, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return usageErr("%v", err)
	}
	doc, err := envelope.Parse(raw, envelope.Limits{})
	if err != nil {
		return fmt.Errorf("văn bản không hợp lệ / not a document the hub accepts: %w", err)
	}
	// A hub envelope keeps the signature of its payload (a signed Akoma
	// Ntoso act), which the envelope signature then covers.
	signed, err := dsig.SignWith(raw, signer, dsig.SignOptions{Location: verify.Location(doc.Format), ReplacePlaceholder: true,
		KeepSignatures: doc.Format == envelope.FormatHub})
	if err != nil {
		return fmt.Errorf("ký số thất bại / signing failed: %w", err)
	}
	if *o == "-" {
		_, err = out.Write(signed)
		return err
	}
	if err := os.WriteFile(*o, signed, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(errOut, "Đã ký / signed: %s (%s)\n", *o, signer.Chain()[0].Subject)
	return nil
}

// usageError is a command-line mistake: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErr(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// exitCode is the process exit status for err: 0, 2 for usage errors, 1
// otherwise (an invalid document, a failed request).
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

// signAsDemoOrgan signs doc with organ's key and certificate when the
// credentials file (the dev hub's credentials.json) lists them; without such
// an entry doc is returned as is.
func signAsDemoOrgan(doc []byte, credPath, organ string) ([]byte, error) {
	b, err := os.ReadFile(credPath)
	if err != nil {
		return doc, nil
	}
	var c struct {
		Organs []struct{ Code, Cert, Key string } `json:"organs"`
	}
	if json.Unmarshal(b, &c) != nil {
		return doc, nil
	}
	for _, o := range c.Organs {
		if o.Code != organ || o.Key == "" || o.Cert == "" {
			continue
		}
		s, err := keyfile.Load(o.Key, o.Cert, "", "")
		if err != nil {
			return nil, fmt.Errorf("khóa ký của / signing key of %s: %w", organ, err)
		}
		return dsig.SignWith(doc, s, dsig.SignOptions{Location: dsig.EdXMLHeader, ReplacePlaceholder: true})
	}
	return doc, nil
}
