package mailmeta

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"
)

func init() { noRecover = true }

// crlf turns the LF line ends of a test literal into CRLF.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// checkMeta asserts the structural invariants promised by the package
// for any input; it returns the first violation or "".
func checkMeta(m *Meta, raw []byte, lim Limits) string {
	lim = lim.withDefaults()
	if m == nil || m.Body == nil {
		return "nil meta or body"
	}
	if m.Size != int64(len(raw)) {
		return fmt.Sprintf("Size %d != len %d", m.Size, len(raw))
	}
	for _, d := range m.Defects {
		if strings.Contains(d, "internal error") {
			return "recovered panic: " + d
		}
	}
	b := m.Body
	if b.HeaderStart != 0 || b.End != int64(len(raw)) {
		return fmt.Sprintf("top part spans [%d,%d), want [0,%d)", b.HeaderStart, b.End, len(raw))
	}
	count := 0
	var check func(p *Part, depth int, lo, hi int64, label string) string
	check = func(p *Part, depth int, lo, hi int64, label string) string {
		count++
		if depth > lim.MaxDepth {
			return label + ": depth over limit"
		}
		if !(lo <= p.HeaderStart && p.HeaderStart <= p.BodyStart && p.BodyStart <= p.End && p.End <= hi) {
			return fmt.Sprintf("%s: offsets %d %d %d not within [%d,%d]", label, p.HeaderStart, p.BodyStart, p.End, lo, hi)
		}
		if p.Size != p.End-p.BodyStart {
			return label + ": Size != End-BodyStart"
		}
		if p.Type == "" || p.Subtype == "" || p.Type != strings.ToLower(p.Type) || p.Subtype != strings.ToLower(p.Subtype) {
			return label + ": bad type " + p.Type + "/" + p.Subtype
		}
		if p.Type == "multipart" {
			if len(p.Children) == 0 {
				return label + ": multipart without children"
			}
			prev := p.BodyStart
			for i, c := range p.Children {
				if c.HeaderStart < prev {
					return fmt.Sprintf("%s: child %d starts at %d before %d", label, i+1, c.HeaderStart, prev)
				}
				if s := check(c, depth+1, p.BodyStart, p.End, fmt.Sprintf("%s.%d", label, i+1)); s != "" {
					return s
				}
				prev = c.End
			}
		} else if len(p.Children) > 0 {
			return label + ": leaf with children"
		}
		if p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global") {
			if p.Message == nil || p.Envelope == nil {
				return label + ": message part without Message/Envelope"
			}
			if p.Message.HeaderStart != p.BodyStart || p.Message.End != p.End {
				return label + ": enclosed message does not span the body"
			}
			if s := check(p.Message, depth+1, p.BodyStart, p.End, label+".M"); s != "" {
				return s
			}
		} else if p.Message != nil {
			return label + ": Message on a non-message part"
		}
		return ""
	}
	if s := check(b, 0, 0, int64(len(raw)), "T"); s != "" {
		return s
	}
	if count > lim.MaxParts {
		return fmt.Sprintf("%d parts > MaxParts %d", count, lim.MaxParts)
	}
	if n := utf8.RuneCountInString(m.Preview); n > lim.MaxPreview {
		return fmt.Sprintf("preview %d runes", n)
	}
	if len(m.Headers) > lim.MaxHeaders {
		return "too many headers"
	}
	if len(m.InReplyTo) > 100 || len(m.References) > 100 {
		return "msg-id list over cap"
	}
	if s := checkSections(m); s != "" {
		return s
	}
	for _, a := range m.Attachments {
		if _, ok := m.Section(sectionPath(a.Part)); !ok {
			return "attachment section does not resolve: " + a.Part
		}
	}
	if s := jsonRoundTrip(m); s != "" {
		return s
	}
	return ""
}

func sectionPath(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ".") {
		n := 0
		fmt.Sscan(f, &n)
		out = append(out, n)
	}
	return out
}

// jsonRoundTrip checks that the stored (JSON) form decodes to the same Meta.
func jsonRoundTrip(m *Meta) string {
	b, err := json.Marshal(m)
	if err != nil {
		return "json: " + err.Error()
	}
	var back Meta
	if err := json.Unmarshal(b, &back); err != nil {
		return "json: " + err.Error()
	}
	if !back.Date.Equal(m.Date) {
		return "json: date differs"
	}
	a := *m
	a.Date, back.Date = a.Date.UTC(), back.Date.UTC()
	if !reflect.DeepEqual(&a, &back) {
		return "json: round trip differs (invalid UTF-8 or empty non-nil slice?)"
	}
	return ""
}

// checkSections numbers every part as IMAP does (RFC 9051 §6.4.5) and
// checks that Section finds it.
func checkSections(m *Meta) string {
	var bad string
	var msg func(top *Part, path []int)
	var part func(p *Part, path []int)
	part = func(p *Part, path []int) {
		if bad != "" {
			return
		}
		if got, ok := m.Section(path); !ok || got != p {
			bad = fmt.Sprintf("Section(%v) does not find its part", path)
			return
		}
		if p.Type == "multipart" {
			for i, c := range p.Children {
				part(c, append(append([]int(nil), path...), i+1))
			}
		}
		if p.Message != nil {
			msg(p.Message, path)
		}
	}
	// msg numbers the parts of a message whose section prefix is path.
	msg = func(top *Part, path []int) {
		if top.Type == "multipart" {
			for i, c := range top.Children {
				part(c, append(append([]int(nil), path...), i+1))
			}
			return
		}
		part(top, append(append([]int(nil), path...), 1))
	}
	msg(m.Body, nil)
	return bad
}
