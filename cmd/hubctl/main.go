// Command hubctl is the Lienthong command line for agencies, auditors and
// operators: submit a document, follow its delivery, read an inbox and
// acknowledge what was taken.
//
//	hubctl [global flags] submit FILE        gửi văn bản / submit a document
//	hubctl [global flags] status ID          trạng thái / state per recipient
//	hubctl [global flags] events ID          lịch sử / event history
//	hubctl [global flags] content ID [-o F]  nội dung gốc / the original bytes
//	hubctl [global flags] inbox              hộp thư đến / pull inbox
//	hubctl [global flags] ack ID             xác nhận đã nhận / acknowledge
//	hubctl new --from CODE --to CODE[,CODE]  tạo văn bản edXML mẫu / write a sample edXML
//	hubctl sign --key KEY --cert CERT IN     ký số / sign (XML-DSig)
//	hubctl verify --trust PEM|DIR FILE       kiểm tra chữ ký / verify offline (exit 0/1/2)
//
// Global flags: --credentials FILE (default ./var/dev/credentials.json, or
// LT_CREDENTIALS), --server URL (LT_SERVER), --token TOKEN (LT_TOKEN),
// --as CODE|auditor|operator (which identity of the credentials file to use),
// --json (print the server's JSON as is).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"lienthong/cmd/internal/sample"
	"lienthong/envelope"
)

const usage = `hubctl — dòng lệnh Lienthong / the Lienthong command line

  hubctl [cờ chung / global flags] <lệnh / verb> [đối số / args]

  submit FILE          gửi văn bản (edXML hoặc phong bì Lienthong) / submit a document
  status ID            trạng thái theo từng đơn vị nhận / state per recipient
  events ID            lịch sử sự kiện / event history
  content ID [-o F]    tải nội dung gốc / download the original bytes
  inbox                hộp thư đến (đơn vị nhận kiểu pull) / pull inbox
  ack ID               xác nhận đã nhận / acknowledge a document
  new --from C --to C1,C2 [--number N] [--subject S] [--unsigned]   tạo văn bản edXML mẫu (ký bằng khóa trong
                       tệp credentials nếu có) / write a sample edXML (signed with the sender's key from the credentials file, if any)
  sign --key KEY --cert CERT [--chain FILE] IN > OUT   ký số / sign an edXML or hub envelope
  verify --trust PEM_FILE_OR_DIR [--directory F] FILE  kiểm tra chữ ký ngoại tuyến / verify offline
  report ID CODE [--description T] [--recipient C]   báo trạng thái edXML (01–06, 13, 15, 16) / report a status
  evidence fetch ID [-o F]                tải gói bằng chứng (kiểm toán viên) / download an evidence bundle (auditor)
  evidence verify BUNDLE --hub-cert PEM   kiểm tra gói bằng chứng ngoại tuyến / verify an evidence bundle offline
  log consistency --old CHECKPOINT --hub-cert PEM   nhật ký chỉ được nối thêm / the log only grew since CHECKPOINT
  principals                              danh sách thông tin xác thực (vận hành) / list API credentials (operator)
  principals revoke ID [--reason TEXT]    thu hồi thông tin xác thực (vận hành) / revoke an API credential (operator)
  limits CODE [--max-attempts N] [--max-age D] [--push-pipeline N]   giới hạn giao văn bản của một đơn vị: xem, hoặc
                       đổi những giá trị được nêu (vận hành) / an organ's delivery limits: show, or change those given (operator)

Cờ chung / global flags:
  --credentials FILE   mặc định / default ./var/dev/credentials.json (LT_CREDENTIALS)
  --server URL         địa chỉ API / API URL (LT_SERVER)
  --token TOKEN        mã truy cập / bearer token (LT_TOKEN)
  --as CODE            dùng danh tính nào trong tệp credentials / identity: organ code, auditor, operator
  --json               in JSON gốc / print raw JSON
`

type client struct {
	server, token string
	raw           bool
	http          *http.Client
	out           io.Writer
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "hubctl: %v\n", err)
		os.Exit(exitCode(err))
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	g := flag.NewFlagSet("hubctl", flag.ContinueOnError)
	g.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	credPath := g.String("credentials", envOr("LT_CREDENTIALS", "./var/dev/credentials.json"), "credentials file")
	server := g.String("server", os.Getenv("LT_SERVER"), "API URL")
	token := g.String("token", os.Getenv("LT_TOKEN"), "bearer token")
	as := g.String("as", os.Getenv("LT_AS"), "identity from the credentials file")
	raw := g.Bool("json", false, "print raw JSON")
	if err := g.Parse(args); err != nil {
		return err
	}
	rest := g.Args()
	if len(rest) == 0 {
		g.Usage()
		return errors.New("thiếu lệnh / missing verb")
	}
	verb, vargs := rest[0], rest[1:]
	switch verb {
	case "new":
		return cmdNew(vargs, out, *credPath)
	case "sign":
		return cmdSign(vargs, out, os.Stderr)
	case "verify":
		return cmdVerify(ctx, vargs, out, os.Stderr)
	}
	if verb == "evidence" && (len(vargs) == 0 || vargs[0] != "fetch") { // offline: no server, no token
		return cmdEvidence(vargs, out)
	}
	creds, credErr := loadCreds(*credPath)
	c := &client{server: *server, token: *token, raw: *raw, http: &http.Client{Timeout: 5 * time.Minute}, out: out}
	if c.server == "" && creds != nil {
		c.server = creds.APIURL
	}
	if c.server == "" {
		return fmt.Errorf("không biết địa chỉ máy chủ: dùng --server hoặc tệp credentials / no server: use --server or a credentials file (%v)", credErr)
	}
	pick := func(defaultOrgan string) error {
		if c.token != "" {
			return nil
		}
		if creds == nil {
			return fmt.Errorf("không có mã truy cập: dùng --token hoặc --credentials / no token: use --token or --credentials (%v)", credErr)
		}
		who := *as
		if who == "" {
			who = defaultOrgan
		}
		tok, err := creds.token(who)
		c.token = tok
		return err
	}
	switch verb {
	case "submit":
		if len(vargs) != 1 {
			return errors.New("cách dùng / usage: hubctl submit FILE")
		}
		body, err := os.ReadFile(vargs[0])
		if err != nil {
			return err
		}
		from := ""
		if doc, err := envelope.Parse(body, envelope.Limits{}); err == nil {
			from = doc.From.Code // submit as the document's sender by default
		}
		if err := pick(from); err != nil {
			return err
		}
		return c.submit(ctx, body)
	case "status", "events", "content", "ack":
		if len(vargs) < 1 {
			return fmt.Errorf("cách dùng / usage: hubctl %s ID", verb)
		}
		if err := pick(""); err != nil {
			return err
		}
		switch verb {
		case "status":
			return c.status(ctx, vargs[0])
		case "events":
			return c.events(ctx, vargs[0])
		case "ack":
			return c.ack(ctx, vargs[0])
		default:
			fs := flag.NewFlagSet("content", flag.ContinueOnError)
			o := fs.String("o", "-", "output file (- = stdout)")
			if err := fs.Parse(vargs[1:]); err != nil {
				return err
			}
			return c.content(ctx, vargs[0], *o)
		}
	case "report":
		if err := pick(""); err != nil {
			return err
		}
		return c.cmdReport(ctx, vargs)
	case "inbox":
		if err := pick(""); err != nil {
			return err
		}
		return c.inbox(ctx)
	case "evidence": // fetch
		if err := pick("auditor"); err != nil {
			return err
		}
		return c.fetchBundle(ctx, vargs[1:])
	case "principals":
		if err := pick("operator"); err != nil {
			return err
		}
		return c.principals(ctx, vargs)
	case "limits":
		if err := pick("operator"); err != nil {
			return err
		}
		return c.limits(ctx, vargs)
	case "log":
		if len(vargs) == 0 || vargs[0] != "consistency" {
			return errors.New("cách dùng / usage: hubctl log consistency --old CHECKPOINT_FILE --hub-cert PEM")
		}
		if err := pick(""); err != nil {
			return err
		}
		return c.logConsistency(ctx, vargs[1:])
	default:
		g.Usage()
		return fmt.Errorf("lệnh không hợp lệ / unknown verb %q", verb)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// creds is the part of credentials.json that hubctl reads.
type creds struct {
	APIURL string `json:"api_url"`
	Organs []struct {
		Code  string `json:"code"`
		Token string `json:"token"`
	} `json:"organs"`
	Auditor  string `json:"auditor_token"`
	Operator string `json:"operator_token"`
}

func loadCreds(path string) (*creds, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c creds
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

func (c *creds) token(who string) (string, error) {
	switch who {
	case "auditor":
		return c.Auditor, nil
	case "operator":
		return c.Operator, nil
	case "":
		if len(c.Organs) > 0 {
			return c.Organs[0].Token, nil
		}
	}
	for _, o := range c.Organs {
		if o.Code == who {
			return o.Token, nil
		}
	}
	return "", fmt.Errorf("không có danh tính %q trong tệp credentials / no identity %q in the credentials file", who, who)
}

type httpError struct {
	status int
	body   []byte
}

func (e *httpError) Error() string {
	var p struct {
		Title, Detail, Code string
	}
	if json.Unmarshal(e.body, &p) == nil && p.Code != "" {
		return fmt.Sprintf("HTTP %d [%s] %s — %s", e.status, p.Code, p.Title, p.Detail)
	}
	return fmt.Sprintf("HTTP %d: %s", e.status, strings.TrimSpace(string(e.body)))
}

func (c *client) do(ctx context.Context, method, path string, body []byte) ([]byte, int, error) {
	return c.doType(ctx, method, path, "application/xml", body)
}

// doType is do with the body's content type.
func (c *client) doType(ctx context.Context, method, path, ctype string, body []byte) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.server, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("không kết nối được máy chủ / cannot reach the server: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		return nil, resp.StatusCode, &httpError{status: resp.StatusCode, body: b}
	}
	return b, resp.StatusCode, nil
}

func (c *client) submit(ctx context.Context, body []byte) error {
	b, status, err := c.do(ctx, http.MethodPost, "/v1/documents", body)
	if err != nil {
		return err
	}
	if c.raw {
		_, err := c.out.Write(b)
		return err
	}
	var r struct {
		ID         string `json:"id"`
		DocumentID string `json:"document_id"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("unexpected answer: %w", err)
	}
	if status == http.StatusOK {
		fmt.Fprintf(c.out, "Văn bản đã được tiếp nhận trước đó / already accepted before: %s\n", r.ID)
	} else {
		fmt.Fprintf(c.out, "Đã tiếp nhận / accepted: %s\n", r.ID)
	}
	fmt.Fprintf(c.out, "  DocumentId: %s\n  Theo dõi / follow: hubctl status %s\n", r.DocumentID, r.ID)
	return nil
}

func (c *client) status(ctx context.Context, id string) error {
	b, _, err := c.do(ctx, http.MethodGet, "/v1/documents/"+id, nil)
	if err != nil || c.raw {
		if err == nil {
			_, err = c.out.Write(b)
		}
		return err
	}
	var d struct {
		ID, Sender, Subject, SHA256 string
		DocumentID                  string `json:"document_id"`
		Recipients                  []struct {
			Organ, State string
			Attempts     int
			LastError    string `json:"last_error"`
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "Văn bản / document %s\n  DocumentId: %s\n  Gửi bởi / sender: %s\n  Trích yếu / subject: %s\n  SHA-256: %s\n",
		d.ID, d.DocumentID, d.Sender, d.Subject, d.SHA256)
	fmt.Fprintln(c.out, "  Đơn vị nhận / recipients:")
	for _, r := range d.Recipients {
		line := fmt.Sprintf("    %-16s %-13s (lần gửi / attempts: %d)", r.Organ, r.State, r.Attempts)
		if r.LastError != "" {
			line += "  lỗi / error: " + r.LastError
		}
		fmt.Fprintln(c.out, line)
	}
	return nil
}

func (c *client) events(ctx context.Context, id string) error {
	b, _, err := c.do(ctx, http.MethodGet, "/v1/documents/"+id+"/events", nil)
	if err != nil || c.raw {
		if err == nil {
			_, err = c.out.Write(b)
		}
		return err
	}
	var r struct {
		Events []struct {
			At        time.Time
			Kind      string
			Recipient string
			Detail    json.RawMessage
		}
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	for _, e := range r.Events {
		fmt.Fprintf(c.out, "%s  %-13s %-16s %s\n", e.At.Local().Format("2006-01-02 15:04:05.000"), e.Kind, e.Recipient, e.Detail)
	}
	return nil
}

func (c *client) content(ctx context.Context, id, out string) error {
	b, _, err := c.do(ctx, http.MethodGet, "/v1/documents/"+id+"/content", nil)
	if err != nil {
		return err
	}
	if out == "-" {
		_, err = c.out.Write(b)
		return err
	}
	return os.WriteFile(out, b, 0o644)
}

func (c *client) inbox(ctx context.Context) error {
	b, _, err := c.do(ctx, http.MethodGet, "/v1/inbox", nil)
	if err != nil || c.raw {
		if err == nil {
			_, err = c.out.Write(b)
		}
		return err
	}
	var r struct {
		Organ     string
		Documents []struct {
			ID, Sender, Subject string
			DocumentID          string `json:"document_id"`
			Sequence            int64
		}
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	if len(r.Documents) == 0 {
		fmt.Fprintf(c.out, "Hộp thư đến của %s trống / inbox of %s is empty\n", r.Organ, r.Organ)
		return nil
	}
	fmt.Fprintf(c.out, "Hộp thư đến / inbox of %s:\n", r.Organ)
	for _, d := range r.Documents {
		fmt.Fprintf(c.out, "  #%d  %s  từ / from %s  %s — %s\n", d.Sequence, d.ID, d.Sender, d.DocumentID, d.Subject)
	}
	fmt.Fprintln(c.out, "Xác nhận / acknowledge: hubctl ack ID")
	return nil
}

func (c *client) ack(ctx context.Context, id string) error {
	b, _, err := c.do(ctx, http.MethodPost, "/v1/inbox/"+id+"/ack", nil)
	if err != nil || c.raw {
		if err == nil {
			_, err = c.out.Write(b)
		}
		return err
	}
	fmt.Fprintf(c.out, "Đã xác nhận / acknowledged: %s\n", id)
	return nil
}

func cmdNew(args []string, out io.Writer, credPath string) error {
	fs := flag.NewFlagSet("new", flag.ContinueOnError)
	from := fs.String("from", "", "sender organ code")
	to := fs.String("to", "", "recipient organ codes, comma-separated")
	number := fs.String("number", fmt.Sprint(time.Now().Unix()%100000), "document number (số)")
	subject := fs.String("subject", "", "subject (trích yếu)")
	unsigned := fs.Bool("unsigned", false, "do not sign with the sender's key from the credentials file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from == "" || *to == "" {
		return errors.New("cách dùng / usage: hubctl new --from CODE --to CODE[,CODE]")
	}
	var tos []string
	for _, t := range strings.Split(*to, ",") {
		if t = strings.TrimSpace(t); t != "" {
			tos = append(tos, t)
		}
	}
	doc := sample.EdXML(sample.Doc{From: *from, To: tos, Number: *number, Subject: *subject})
	if !*unsigned {
		var err error
		if doc, err = signAsDemoOrgan(doc, credPath, *from); err != nil {
			return err
		}
	}
	_, err := out.Write(doc)
	return err
}
