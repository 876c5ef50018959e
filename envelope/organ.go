package envelope

import "fmt"

// MaxOrganCodeLen is the longest organ code accepted (QĐ 20/2020 as
// summarised in edxml.md §10).
const MaxOrganCodeLen = 35

// IsCanonicalOrganCode reports whether code has the canonical QĐ 20/2020 shape
// NNN.NN.NN.XNN (three digits, two, two, then a capital letter and two
// digits), e.g. "000.00.00.C01".
func IsCanonicalOrganCode(code string) bool {
	if len(code) != 13 {
		return false
	}
	for i := 0; i < 13; i++ {
		c := code[i]
		switch i {
		case 3, 6, 9:
			if c != '.' {
				return false
			}
		case 10:
			if c < 'A' || c > 'Z' {
				return false
			}
		default:
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

// ValidateOrganCode checks an organ code as the axis accepts it. A canonical
// code (see IsCanonicalOrganCode) returns (true, nil). Other dotted forms
// ("H37.DN.001", "02.29.W00"), legacy short codes ("G12") and numeric
// enterprise codes ("020100107370") of at most 35 characters return
// (false, nil): accepted, to be flagged as non-canonical. Anything else (empty,
// longer than 35 characters, characters other than [A-Za-z0-9.], empty dot
// segments) is an *Error with CodeBadOrganCode.
func ValidateOrganCode(code string) (canonical bool, err error) {
	if p := organCodeProblem(code); p != "" {
		return false, &Error{Code: CodeBadOrganCode, Msg: fmt.Sprintf("organ code %q: %s", code, p)}
	}
	return IsCanonicalOrganCode(code), nil
}

// organCodeProblem returns why code is not an organ code, or "".
func organCodeProblem(code string) string {
	switch {
	case code == "":
		return "empty"
	case len(code) > MaxOrganCodeLen:
		return fmt.Sprintf("longer than %d characters", MaxOrganCodeLen)
	}
	prevDot := true // a leading dot is an empty segment
	for i := 0; i < len(code); i++ {
		c := code[i]
		switch {
		case c == '.':
			if prevDot {
				return "empty segment between dots"
			}
			prevDot = true
			continue
		case c >= '0' && c <= '9', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		default:
			return "only letters, digits and dots are allowed"
		}
		prevDot = false
	}
	if prevDot {
		return "empty segment between dots"
	}
	return ""
}
