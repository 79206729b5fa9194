package smtp

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Path is a parsed reverse- or forward-path (RFC 5321 §4.1.2). Local
// keeps its quotes when it needs them: a quoted-string whose content is a
// valid dot-string is the same mailbox as that dot-string (§4.1.2) and is
// written unquoted; anything else stays quoted, so "a@b"@example.test can
// never turn into a@b@example.test on its way through.
type Path struct {
	Local  string // "" only for the null reverse-path <>
	Domain string // as sent (not lower-cased); "" for <Postmaster>
}

// String renders the mailbox without angle brackets ("" for <>).
func (p Path) String() string {
	if p.Local == "" {
		return ""
	}
	if p.Domain == "" {
		return p.Local
	}
	return p.Local + "@" + p.Domain
}

// IsNull reports whether p is the null reverse-path <>.
func (p Path) IsNull() bool { return p.Local == "" }

var (
	errPathSyntax = errors.New("syntax error in path")
	errPathLong   = errors.New("path too long")
	errPathUTF8   = errors.New("non-ASCII address without SMTPUTF8")
)

// RFC 5321 §4.5.3.1.
const (
	maxLocalLen  = 64
	maxDomainLen = 255
	maxPathLen   = 256
)

// ParsePath parses "<...>" at the start of s and returns the path and the
// rest of s (the ESMTP parameters). null allows "<>" (reverse-path);
// postmaster allows "<Postmaster>" without domain (RFC 5321 §4.1.1.3);
// utf8ok allows non-ASCII (RFC 6531 §3.3, after SMTPUTF8).
// A source route (A-d-l, "@hop1,@hop2:") is accepted and ignored, as
// RFC 5321 §4.1.1.3 and Appendix C ask.
func ParsePath(s string, null, postmaster, utf8ok bool) (Path, string, error) {
	if !strings.HasPrefix(s, "<") {
		return Path{}, "", errPathSyntax
	}
	end := closingBracket(s)
	if end < 0 {
		return Path{}, "", errPathSyntax
	}
	inner, rest := s[1:end], s[end+1:]
	if rest != "" && rest[0] != ' ' {
		return Path{}, "", errPathSyntax
	}
	rest = strings.TrimLeft(rest, " ")
	if len(inner) > maxPathLen {
		return Path{}, "", errPathLong
	}
	for i := 0; i < len(inner); i++ {
		if c := inner[i]; c < ' ' || c == 0x7f {
			return Path{}, "", errPathSyntax // CR, LF, NUL, controls
		}
		if inner[i] >= 0x80 && !utf8ok {
			return Path{}, "", errPathUTF8
		}
	}
	if !utf8.ValidString(inner) {
		return Path{}, "", errPathSyntax
	}
	if inner == "" {
		if null {
			return Path{}, rest, nil
		}
		return Path{}, "", errPathSyntax
	}
	if postmaster && strings.EqualFold(inner, "postmaster") {
		return Path{Local: "Postmaster"}, rest, nil
	}
	if inner[0] == '@' { // A-d-l ":" (source route)
		colon := strings.IndexByte(inner, ':')
		if colon < 0 {
			return Path{}, "", errPathSyntax
		}
		for _, hop := range strings.Split(inner[:colon], ",") {
			if !strings.HasPrefix(hop, "@") || !validDomain(hop[1:]) {
				return Path{}, "", errPathSyntax
			}
		}
		inner = inner[colon+1:]
	}
	p, err := parseMailbox(inner)
	if err != nil {
		return Path{}, "", err
	}
	return p, rest, nil
}

// closingBracket finds the '>' that closes s[0]=='<', skipping quoted
// strings; -1 if none.
func closingBracket(s string) int {
	inQuote := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == '>':
			return i
		case !inQuote && c == '<':
			return -1
		}
	}
	return -1
}

// parseMailbox parses Local-part "@" (Domain / address-literal).
func parseMailbox(s string) (Path, error) {
	var local string
	var i int
	if strings.HasPrefix(s, `"`) {
		var b strings.Builder
		i = 1
		for ; i < len(s); i++ {
			c := s[i]
			if c == '\\' { // quoted-pairSMTP = %d92 %d32-126
				if i+1 >= len(s) || s[i+1] < 32 || s[i+1] > 126 {
					return Path{}, errPathSyntax
				}
				i++
				b.WriteByte(s[i])
				continue
			}
			if c == '"' {
				break
			}
			b.WriteByte(c)
		}
		if i >= len(s) {
			return Path{}, errPathSyntax
		}
		i++ // closing quote
		local = canonicalLocal(b.String())
	} else {
		at := strings.IndexByte(s, '@')
		if at < 0 {
			return Path{}, errPathSyntax
		}
		i = at
		local = s[:at]
		if !isDotString(local) {
			return Path{}, errPathSyntax
		}
	}
	if i >= len(s) || s[i] != '@' {
		return Path{}, errPathSyntax
	}
	domain := s[i+1:]
	n := len(local)
	if strings.HasPrefix(local, `"`) {
		n -= 2
	}
	if local == "" || n > maxLocalLen || len(domain) > maxDomainLen {
		return Path{}, errPathLong
	}
	if strings.HasPrefix(domain, "[") {
		if !validAddressLiteral(domain) {
			return Path{}, errPathSyntax
		}
	} else if !validDomain(domain) {
		return Path{}, errPathSyntax // also catches a trailing or second '@'
	}
	return Path{Local: local, Domain: domain}, nil
}

// canonicalLocal turns the content of a quoted-string into the shortest
// equivalent local-part: unquoted if it is a dot-string, else quoted.
func canonicalLocal(content string) string {
	if isDotString(content) {
		return content
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(content); i++ {
		if c := content[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(content[i])
	}
	b.WriteByte('"')
	return b.String()
}

// isAtext: RFC 5322 §3.2.3 atext, plus UTF-8 (RFC 6531 §3.3).
func isAtext(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0 || c >= 0x80
}

// isDotString: Atom *("." Atom) (RFC 5321 §4.1.2).
func isDotString(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '.' && !isAtext(s[i]) {
			return false
		}
	}
	return true
}

// validDomain: sub-domain *("." sub-domain), Let-dig [Ldh-str]
// (RFC 5321 §4.1.2), with U-labels allowed as UTF-8 (RFC 6531 §3.3).
// One trailing dot is not allowed.
func validDomain(d string) bool {
	if d == "" || len(d) > maxDomainLen {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c >= 0x80) {
				return false
			}
		}
	}
	return true
}

// validAddressLiteral: "[" (IPv4 / "IPv6:" IPv6) "]" (RFC 5321 §4.1.3).
// General-address-literal is refused.
func validAddressLiteral(s string) bool {
	if len(s) < 3 || s[len(s)-1] != ']' {
		return false
	}
	in := s[1 : len(s)-1]
	if v6, ok := strings.CutPrefix(in, "IPv6:"); ok {
		return strings.Contains(v6, ":") && parseIP(v6) != nil && parseIP(v6).To4() == nil
	}
	ip := parseIP(in)
	return ip != nil && ip.To4() != nil && !strings.Contains(in, ":")
}

// Param is one ESMTP parameter (RFC 5321 §4.1.2 esmtp-param).
type Param struct{ Key, Value string }

// ParseParams parses "KEY[=VALUE] ..." (keys upper-cased). Repeated keys
// and malformed keywords or values are errors.
func ParseParams(s string) ([]Param, error) {
	var out []Param
	seen := map[string]bool{}
	for _, f := range strings.Split(s, " ") {
		if f == "" {
			continue
		}
		k, v, hasV := strings.Cut(f, "=")
		if !validKeyword(k) || (hasV && !validEsmtpValue(v)) {
			return nil, errors.New("malformed parameter " + strconv.Quote(f))
		}
		k = strings.ToUpper(k)
		if seen[k] {
			return nil, errors.New("repeated parameter " + k)
		}
		seen[k] = true
		out = append(out, Param{k, v})
	}
	return out, nil
}

// esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
func validKeyword(k string) bool {
	if k == "" || k[0] == '-' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 (RFC 6531 §3.3).
func validEsmtpValue(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 33 || c == '=' || c == 127 {
			return false
		}
	}
	return utf8.ValidString(v)
}

// DecodeXtext decodes xtext (RFC 3461 §4): "+" HEXCHAR HEXCHAR encodes
// one byte; other characters are literal printable ASCII but '+' and '='.
func DecodeXtext(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			if i+2 >= len(s) || !isUpperHex(s[i+1]) || !isUpperHex(s[i+2]) {
				return "", errors.New("malformed xtext")
			}
			n, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if n < 32 || n == 127 { // controls are never valid decoded
				return "", errors.New("xtext control character")
			}
			b.WriteByte(byte(n))
			i += 2
		case c < 33 || c > 126 || c == '=':
			return "", errors.New("malformed xtext")
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func parseIP(s string) net.IP { return net.ParseIP(s) }

func isUpperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }
