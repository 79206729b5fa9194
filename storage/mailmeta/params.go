package mailmeta

import (
	"strconv"
	"strings"
)

// isTokenChar reports RFC 2045 §5.1 token characters (no tspecials, no
// controls, no space). 8-bit bytes are accepted, as senders use them.
func isTokenChar(c byte) bool {
	if c <= ' ' || c == 0x7f {
		return false
	}
	return !strings.ContainsRune(`()<>@,;:\"/[]?=`, rune(c))
}

// skipCFWS skips white space and comments (RFC 5322 §3.2.2) from i.
func skipCFWS(s string, i int) int {
	for i < len(s) {
		switch s[i] {
		case ' ', '\t', '\r', '\n':
			i++
		case '(':
			i = skipComment(s, i)
		default:
			return i
		}
	}
	return i
}

// skipComment skips a nested comment starting at s[i] == '(';
// an unterminated comment runs to the end.
func skipComment(s string, i int) int {
	depth := 0
	for i < len(s) {
		switch s[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
		i++
	}
	return len(s)
}

// readToken reads a run of token characters from i.
func readToken(s string, i int) (string, int) {
	j := i
	for j < len(s) && isTokenChar(s[j]) {
		j++
	}
	return s[i:j], j
}

// readQuoted reads a quoted-string at s[i] == '"', unescaping quoted-pairs
// (RFC 5322 §3.2.4); an unterminated string runs to the end.
func readQuoted(s string, i int) (string, int) {
	i++
	var b strings.Builder
	start := i
	simple := true
	for i < len(s) {
		c := s[i]
		if c == '"' {
			if simple {
				return s[start:i], i + 1
			}
			return b.String(), i + 1
		}
		if c == '\\' && i+1 < len(s) {
			if simple {
				b.WriteString(s[start:i])
				simple = false
			}
			i++
			c = s[i]
		}
		if !simple {
			b.WriteByte(c)
		}
		i++
	}
	if simple {
		return s[start:], len(s)
	}
	return b.String(), len(s)
}

// parseMediaType parses a Content-Type value (RFC 2045 §5.1). ok is false
// when type or subtype is missing; the parameters are still returned.
func parseMediaType(v string) (typ, sub string, params []Param, ok bool) {
	i := skipCFWS(v, 0)
	typ, i = readToken(v, i)
	i = skipCFWS(v, i)
	if i < len(v) && v[i] == '/' {
		i = skipCFWS(v, i+1)
		sub, i = readToken(v, i)
	}
	typ, sub = strings.ToLower(typ), strings.ToLower(sub)
	return typ, sub, parseParams(v, i), typ != "" && sub != ""
}

// parseDisposition parses a Content-Disposition value (RFC 2183 §2).
func parseDisposition(v string) (string, []Param) {
	i := skipCFWS(v, 0)
	d, i := readToken(v, i)
	return strings.ToLower(d), parseParams(v, i)
}

type rawParam struct {
	base     string
	section  int // -1 when the key has no "*n" (RFC 2231 §3)
	extended bool
	value    string
}

const maxParamSections = 1000

// parseParams parses "; key=value" pairs from s[i:] leniently, then joins
// RFC 2231 continuations and decodes RFC 2231 charsets. The first value of
// a key wins; keys keep the order of their first appearance.
func parseParams(s string, i int) []Param {
	var raws []rawParam
	for i < len(s) && len(raws) < maxParamSections*4 {
		i = skipCFWS(s, i)
		if i >= len(s) {
			break
		}
		if s[i] == ';' {
			i++
			continue
		}
		key, j := readToken(s, i)
		if key == "" {
			i++ // stray character
			continue
		}
		j = skipCFWS(s, j)
		if j >= len(s) || s[j] != '=' {
			i = j // key without value: ignore
			continue
		}
		j = skipCFWS(s, j+1)
		var val string
		if j < len(s) && s[j] == '"' {
			val, j = readQuoted(s, j)
		} else {
			val, j = readLenientValue(s, j)
		}
		i = j
		raws = append(raws, splitParamKey(strings.ToLower(key), val))
	}
	return joinParams(raws)
}

// readLenientValue reads an unquoted value. Real mail carries unquoted
// values with spaces ("name=my file.pdf"): the value continues past white
// space unless what follows looks like the next "key=" or a comment.
func readLenientValue(s string, i int) (string, int) {
	start := i
	end := i
	for i < len(s) {
		c := s[i]
		if c == ';' {
			break
		}
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			k := i
			for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r' || s[k] == '\n') {
				k++
			}
			if k >= len(s) || s[k] == ';' || s[k] == '(' {
				return s[start:end], k
			}
			if tok, t := readToken(s, k); tok != "" && t < len(s) && s[t] == '=' {
				return s[start:end], k
			}
			i = k
			continue
		}
		i++
		end = i
	}
	return s[start:end], i
}

// splitParamKey splits "name*2*" into its RFC 2231 §3/§4 parts.
func splitParamKey(key, val string) rawParam {
	p := rawParam{base: key, section: -1, value: val}
	if strings.HasSuffix(p.base, "*") {
		p.extended = true
		p.base = p.base[:len(p.base)-1]
	}
	if k := strings.LastIndexByte(p.base, '*'); k > 0 {
		if n, err := strconv.Atoi(p.base[k+1:]); err == nil && n >= 0 && n < maxParamSections {
			p.section = n
			p.base = p.base[:k]
		}
	}
	return p
}

// paramGroup collects the raw pieces of one parameter name.
type paramGroup struct {
	plain, ext *rawParam
	sections   map[int]*rawParam
}

func joinParams(raws []rawParam) []Param {
	if len(raws) == 0 {
		return nil
	}
	groups := make(map[string]*paramGroup, len(raws))
	var order []string
	for i := range raws {
		r := &raws[i]
		g := groups[r.base]
		if g == nil {
			g = &paramGroup{}
			groups[r.base] = g
			order = append(order, r.base)
		}
		switch {
		case r.section < 0 && r.extended:
			if g.ext == nil {
				g.ext = r
			}
		case r.section < 0:
			if g.plain == nil {
				g.plain = r
			}
		default:
			if g.sections == nil {
				g.sections = map[int]*rawParam{}
			}
			if g.sections[r.section] == nil {
				g.sections[r.section] = r
			}
		}
	}
	out := make([]Param, 0, len(order))
	for _, base := range order {
		out = append(out, Param{Key: base, Value: groups[base].value()})
	}
	return out
}

// value assembles a parameter: a single extended value wins, then
// continuations 0..n, then the first plain value (RFC 2231 §3, §4).
func (g *paramGroup) value() string {
	if g.ext != nil {
		cs, _, data := splitExtValue(g.ext.value)
		return charsetToUTF8(cs, percentDecode(data))
	}
	if s0 := g.sections[0]; s0 != nil {
		cs := ""
		var buf []byte
		for n := 0; n < len(g.sections); n++ {
			r := g.sections[n]
			if r == nil {
				break
			}
			v := r.value
			if r.extended {
				if n == 0 {
					cs, _, v = splitExtValue(v)
				}
				buf = append(buf, percentDecode(v)...)
			} else {
				buf = append(buf, v...)
			}
		}
		if s0.extended {
			return charsetToUTF8(cs, buf)
		}
		return validUTF8(string(buf))
	}
	if g.plain != nil {
		return validUTF8(g.plain.value)
	}
	return ""
}

// splitExtValue splits charset'language'value (RFC 2231 §4); a value
// without the two quotes is taken whole.
func splitExtValue(v string) (cs, lang, data string) {
	a := strings.IndexByte(v, '\'')
	if a < 0 {
		return "", "", v
	}
	b := strings.IndexByte(v[a+1:], '\'')
	if b < 0 {
		return "", "", v
	}
	return v[:a], v[a+1 : a+1+b], v[a+2+b:]
}

// percentDecode decodes %XX escapes; a malformed escape is kept as is.
func percentDecode(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) {
			if h, ok := unhex(s[i+1]); ok {
				if l, ok := unhex(s[i+2]); ok {
					out = append(out, h<<4|l)
					i += 2
					continue
				}
			}
		}
		out = append(out, c)
	}
	return out
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// paramGet returns the value of key in ps.
func paramGet(ps []Param, key string) (string, bool) {
	for _, p := range ps {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

// firstToken returns the first token of a structured value, lower-case
// (Content-Transfer-Encoding, RFC 2045 §6.1).
func firstToken(v string) string {
	t, _ := readToken(v, skipCFWS(v, 0))
	return strings.ToLower(t)
}

// parseLanguage splits Content-Language (RFC 3282 §2) into tags.
func parseLanguage(v string) []string {
	var out []string
	for _, t := range strings.Split(v, ",") {
		t, _ = readToken(t, skipCFWS(t, 0))
		if t != "" {
			out = append(out, t)
		}
	}
	return out
}

// stripSpace removes all white space (Content-Location, RFC 2557 §4.4.1).
func stripSpace(v string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, v)
}
