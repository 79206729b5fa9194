package mailmeta

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var fuzzSeeds = []string{
	"",
	"Subject: x\r\n\r\nbody",
	"From: \"A\" <a@b>, Team: c@d;\nTo: undisclosed-recipients:;\n\nx\n",
	altHeader + "--XX\n\none\n--XX\nContent-Type: text/html\n\n<p>two</p>\n--XX--\n",
	"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\na\r\n--i--\r\n--o--\r\n",
	"Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\n1\n--d\n--d--\n",
	"Content-Type: text/plain; name*0*=utf-8''%E2%82%AC; name*1=x\nContent-Transfer-Encoding: base64\n\nSGVsbG8=\n",
	"Content-Type: text/html; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n<script>x</script><p>a=E9&amp;</p>",
	"From x\nSubject: =?utf-8?q?a?= =?bogus?b?????=\nReferences: <a> <b> <a>\n\n",
	"Content-Type: multipart/mixed; boundary=\"\"\n\n--\n\n--\n",
}

// watchdog fails (and so records the input) when fn does not return in
// time: Parse and ExtractText must never hang.
func watchdog(t *testing.T, fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		panic("did not return within 10s")
	}
}

// checkFuzz runs Parse with the defaults and with tiny limits.
func checkFuzz(t *testing.T, data []byte) {
	for _, lim := range []Limits{DefaultLimits(), {MaxDepth: 2, MaxParts: 4, MaxHeaders: 3, MaxHeaderBytes: 40, MaxPreview: 5}} {
		m := Parse(data, lim)
		if s := checkMeta(m, data, lim); s != "" {
			t.Fatalf("limits %+v: %s", lim, s)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
		f.Add([]byte(crlf(s)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		watchdog(t, func() { checkFuzz(t, data) })
	})
}

func FuzzExtractText(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), 64)
	}
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		if max < -1 || max > 1<<16 {
			max = 1 << 16
		}
		lim := Limits{MaxDepth: 4, MaxParts: 20}
		var tx Text
		watchdog(t, func() { tx = ExtractText(data, lim, max) })
		capB := max
		if capB <= 0 {
			capB = DefaultMaxText
		}
		if len(tx.Plain) > capB || len(tx.HTML) > capB {
			t.Fatalf("over cap %d: %d %d", capB, len(tx.Plain), len(tx.HTML))
		}
		if !utf8.ValidString(tx.Plain) || !utf8.ValidString(tx.HTML) {
			t.Fatal("invalid UTF-8")
		}
		for _, n := range tx.AttachmentNames {
			if !utf8.ValidString(n) || strings.TrimSpace(n) == "" {
				t.Fatalf("attachment name %q", n)
			}
		}
		if len(tx.AttachmentNames) > lim.MaxParts {
			t.Fatal("more names than parts")
		}
	})
}

// TestFuzzSeeds runs the seeds (and their CRLF forms) as plain tests.
func TestFuzzSeeds(t *testing.T) {
	for _, s := range fuzzSeeds {
		checkFuzz(t, []byte(s))
		checkFuzz(t, []byte(crlf(s)))
	}
}
