package axissim

import (
	"io"
	"net/http"
	"strconv"
)

// admin serves the unauthenticated fault-injection and inspection endpoints:
//
//	POST /_sim/fault?op=OP&n=N[&http=STATUS][&code=CODE&desc=TEXT][&hang=1][&after=1]
//	POST /_sim/duplicate?op=OP&n=N
//	POST /_sim/inject?organ=CODE&messagetype=edoc|status   body: the raw package
//	GET  /_sim/pending?organ=CODE
//	GET  /_sim/sent?organ=CODE
//	GET  /_sim/status-updates
//	GET  /_sim/fail-reasons
//	GET  /_sim/refusals
//	GET  /_sim/faults          injected faults not yet taken, by operation
func (s *Server) admin(w http.ResponseWriter, r *http.Request, action string) {
	q := r.URL.Query()
	wantMethod := http.MethodGet
	switch action {
	case "fault", "duplicate", "inject":
		wantMethod = http.MethodPost
	}
	if r.Method != wantMethod {
		writeJSON(w, http.StatusMethodNotAllowed, fail(CodeBadRequest, "%s wants %s", action, wantMethod))
		return
	}
	n := 1
	if v := q.Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			writeJSON(w, http.StatusBadRequest, fail(CodeBadRequest, "n must be a non-negative integer"))
			return
		}
	}
	switch action {
	case "fault":
		f := Fault{ErrorCode: q.Get("code"), ErrorDesc: q.Get("desc"), Hang: q.Get("hang") == "1", AfterEffect: q.Get("after") == "1"}
		if v := q.Get("http"); v != "" {
			status, err := strconv.Atoi(v)
			if err != nil || status < 100 || status > 599 {
				writeJSON(w, http.StatusBadRequest, fail(CodeBadRequest, "http must be an HTTP status code"))
				return
			}
			f.HTTPStatus = status
		}
		if f.HTTPStatus == 0 && f.ErrorCode == "" && !f.Hang {
			f.HTTPStatus = http.StatusInternalServerError
		}
		s.FailNext(q.Get("op"), n, f)
		writeJSON(w, http.StatusOK, ok(nil))
	case "duplicate":
		s.DuplicateNext(q.Get("op"), n)
		writeJSON(w, http.StatusOK, ok(nil))
	case "inject":
		mt := q.Get("messagetype")
		if mt == "" {
			mt = "edoc"
		}
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
		if err != nil || len(raw) == 0 || q.Get("organ") == "" {
			writeJSON(w, http.StatusBadRequest, fail(CodeBadRequest, "inject wants organ and a non-empty body"))
			return
		}
		resp := ok(nil)
		resp.DocID = s.Inject(q.Get("organ"), mt, raw)
		writeJSON(w, http.StatusOK, resp)
	case "pending":
		writeJSON(w, http.StatusOK, ok(nonNil(s.Pending(q.Get("organ")))))
	case "sent":
		writeJSON(w, http.StatusOK, ok(nonNil(s.Sent(q.Get("organ")))))
	case "status-updates":
		writeJSON(w, http.StatusOK, ok(s.StatusUpdates()))
	case "faults":
		writeJSON(w, http.StatusOK, ok(s.PendingFaults()))
	case "fail-reasons":
		writeJSON(w, http.StatusOK, ok(s.FailReasons()))
	case "refusals":
		type refusal struct{ Op, SystemID, Err string }
		var out []refusal
		for _, rf := range s.Refusals() {
			out = append(out, refusal{rf.Op, rf.SystemID, rf.Err.Error()})
		}
		writeJSON(w, http.StatusOK, ok(nonNil(out)))
	default:
		writeJSON(w, http.StatusNotFound, fail(CodeBadRequest, "unknown admin action %q", action))
	}
}
