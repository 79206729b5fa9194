package smtp

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		in, local, domain, rest string
		err                     bool
	}{
		{in: "<a@b.example>", local: "a", domain: "b.example"},
		{in: "<a@b.example> SIZE=10", local: "a", domain: "b.example", rest: "SIZE=10"},
		{in: `<"a b"@x.example>`, local: `"a b"`, domain: "x.example"},
		{in: `<"ab"@x.example>`, local: "ab", domain: "x.example"},
		{in: `<"a\"b"@x.example>`, local: `"a\"b"`, domain: "x.example"},
		{in: `<"a@b"@x.example>`, local: `"a@b"`, domain: "x.example"},
		{in: "<@h1.example,@h2.example:a@x.example>", local: "a", domain: "x.example"},
		{in: "<a@[192.0.2.1]>", local: "a", domain: "[192.0.2.1]"},
		{in: "<a@[IPv6:2001:db8::1]>", local: "a", domain: "[IPv6:2001:db8::1]"},
		{in: "<>", local: ""},
		{in: "<a@x.example@>", err: true},
		{in: "<a@@x.example>", err: true},
		{in: "<a.@x.example>", err: true},
		{in: "<a..b@x.example>", err: true},
		{in: "<a@-x.example>", err: true},
		{in: "<a@[300.1.1.1]>", err: true},
		{in: "<a@[tag:foo]>", err: true},
		{in: "<@h.example a@x.example>", err: true},
		{in: "<a\r@x.example>", err: true},
		{in: "<\"a\x00\"@x.example>", err: true},
		{in: "<a@x.example>junk", err: true},
		{in: "<é@x.example>", err: true}, // without SMTPUTF8
		{in: "<" + strings.Repeat("a", 65) + "@x.example>", err: true},
	} {
		p, rest, err := ParsePath(tc.in, true, false, false)
		if (err != nil) != tc.err || err == nil && (p.Local != tc.local || p.Domain != tc.domain || rest != tc.rest) {
			t.Errorf("%q: got %+v %q %v", tc.in, p, rest, err)
		}
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"<a@b.example>", `<"a b"@x> X=1`, "<@h:a@x.example>", "<>", "<Postmaster>",
		"<a@[IPv6:::1]>", `<"\\\""@x>`, "<ü@ü.example> SMTPUTF8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, _, err := ParsePath(s, true, true, true)
		if err != nil || p.IsNull() {
			return
		}
		out := p.String()
		if strings.ContainsAny(out, "\r\n\x00<>") {
			t.Fatalf("%q gave %q", s, out)
		}
		// The canonical form parses to itself.
		q, rest, err := ParsePath("<"+out+">", true, true, true)
		if err != nil || rest != "" || q != p {
			t.Fatalf("%q: %q re-parsed as %+v %q %v", s, out, q, rest, err)
		}
		if p.Domain != "" && strings.Contains(p.Domain, "@") {
			t.Fatalf("%q: domain %q", s, p.Domain)
		}
		if !strings.HasPrefix(p.Local, `"`) && strings.Contains(p.Local, "@") {
			t.Fatalf("%q: unquoted @ in local part %q", s, p.Local)
		}
	})
}

func FuzzParams(f *testing.F) {
	f.Add("SIZE=10 BODY=8BITMIME", "rfc822;a+2Bb@x")
	f.Add("NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x", "+41")
	f.Fuzz(func(t *testing.T, params, xtext string) {
		ps, err := ParseParams(params)
		if err == nil {
			seen := map[string]bool{}
			for _, p := range ps {
				if p.Key == "" || seen[p.Key] || strings.ContainsAny(p.Key+p.Value, " =\r\n\x00") {
					t.Fatalf("%q: %+v", params, ps)
				}
				seen[p.Key] = true
			}
		}
		if d, err := DecodeXtext(xtext); err == nil && strings.ContainsAny(d, "\r\n\x00") {
			t.Fatalf("%q decoded to %q", xtext, d)
		}
	})
}

// FuzzReadData: whatever the input, an accepted message has CRLF line
// ends only, and the data ends exactly after the first <CRLF>.<CRLF>
// that follows a CRLF (or starts the data).
func FuzzReadData(f *testing.F) {
	for _, s := range []string{"a\r\n.\r\n", ".\r\n", "a\n.\r\nb\r\n.\r\n", "..x\r\n.\r\n", "a\r.\r\n\r\n.\r\n", "x\r\n.\n.\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s := &Server{cfg: Config{MaxMessageSize: 1 << 16, MaxLineLength: 998}}
		br := bufio.NewReaderSize(bytes.NewReader(in), 1000)
		c := &conn{s: s, br: br}
		raw, problem, err := c.readData()
		end := bytes.Index(in, []byte("\r\n.\r\n"))
		if bytes.HasPrefix(in, []byte(".\r\n")) {
			end = -2
		}
		if err != nil {
			return // ran out of input
		}
		if problem == nil {
			if bytes.Contains(raw, []byte("\r\n.\r\n")) && !bytes.Contains(in, []byte("\r\n..\r\n")) {
				t.Fatalf("end marker inside data: %q", in)
			}
			for i, b := range raw {
				if b == '\n' && (i == 0 || raw[i-1] != '\r') || b == '\r' && (i+1 >= len(raw) || raw[i+1] != '\n') {
					t.Fatalf("bare line end accepted: %q", in)
				}
			}
		}
		consumed := len(in) - br.Buffered()
		if end == -2 {
			if consumed != 3 {
				t.Fatalf("empty message: consumed %d of %q", consumed, in)
			}
		} else if problem == nil && end >= 0 && consumed < end+5 {
			t.Fatalf("stopped at %d before marker at %d: %q", consumed, end, in)
		}
	})
}
