package mailmeta

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// adversarialCap is a hard bound for ~1 MB hostile inputs. Linear code
// takes milliseconds; the quadratic paths this guards against took
// seconds already at 240 KB. Timings are logged, not compared.
const adversarialCap = 5 * time.Second

func TestAdversarialInputs(t *testing.T) {
	long := strings.Repeat("-", 10000)
	cases := map[string]string{
		"encoded words":        "Subject: " + strings.Repeat("=?a?b?c", 140000) + "?=\r\n\r\n",
		"subject blobs":        "Subject: " + strings.Repeat("[x] ", 250000) + "\r\n\r\n",
		"subject re":           "Subject: " + strings.Repeat("Re: [a] ", 120000) + "x\r\n\r\n",
		"fwd wrappers":         "Subject: " + strings.Repeat("[fwd: ", 150000) + "x" + strings.Repeat("]", 150000) + "\r\n\r\n",
		"date words":           "Date: " + strings.Repeat("1 ", 500000) + "\r\n\r\n",
		"addresses no commas":  "To: " + strings.Repeat("a@b ", 250000) + "\r\n\r\n",
		"addresses":            "To: " + strings.Repeat("\"n\" <a@b>, ", 90000) + "\r\n\r\n",
		"open comments":        "From: " + strings.Repeat("(", 1000000) + "\r\n\r\n",
		"quoted words":         "From: " + strings.Repeat("\"a\" ", 250000) + "\r\n\r\n",
		"angles":               "From: " + strings.Repeat("<", 1000000) + "\r\n\r\n",
		"groups":               "From: " + strings.Repeat("a:", 500000) + "\r\n\r\n",
		"long boundary":        "Content-Type: multipart/mixed; boundary=\"" + long + "\"\r\n\r\n" + strings.Repeat("-", 1000000),
		"long boundary lines":  "Content-Type: multipart/mixed; boundary=\"" + long + "\"\r\n\r\n" + strings.Repeat(long[1:]+"\n", 100),
		"near boundaries":      "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat("--bx\r\n", 200000),
		"parts with headers":   "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat("--b\r\n"+strings.Repeat("a:b\r\n", 200)+"\r\n", 1000),
		"nested multiparts":    strings.Repeat("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n", 20000),
		"nested messages":      strings.Repeat("Content-Type: message/rfc822\r\n\r\n", 20000) + strings.Repeat("x", 500000),
		"html tags":            "Content-Type: text/html\r\n\r\n" + strings.Repeat("<a ", 300000),
		"html scripts":         "Content-Type: text/html\r\n\r\n" + strings.Repeat("<script>", 120000),
		"html end tags":        "Content-Type: text/html\r\n\r\n<script>" + strings.Repeat("</", 500000),
		"html comments":        "Content-Type: text/html\r\n\r\n" + strings.Repeat("<!--", 250000),
		"rfc2231 sections":     "Content-Type: text/plain" + strings.Repeat("; a*1*=b", 120000) + "\r\n\r\n",
		"distinct params":      "Content-Type: text/plain" + distinctParams(60000) + "\r\n\r\n",
		"unquoted value":       "Content-Type: text/plain; a=" + strings.Repeat("b ", 500000) + "\r\n\r\n",
		"references":           "References: " + strings.Repeat("<a@b> ", 170000) + "\r\n\r\n",
		"many fields":          strings.Repeat("X: y\r\n", 170000) + "\r\n",
		"continuations":        "X: y\r\n" + strings.Repeat(" y\r\n", 250000) + "\r\n",
		"one long line":        "Subject: " + strings.Repeat("x", 1000000),
		"base64 noise":         "Content-Transfer-Encoding: base64\r\n\r\n" + strings.Repeat("=*", 500000),
		"quoted-printable eqs": "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + strings.Repeat("= \r\n=", 200000),
	}
	lim := DefaultLimits()
	for name, raw := range cases {
		var m *Meta
		var tx Text
		start := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			m = Parse([]byte(raw), lim)
			tx = ExtractText([]byte(raw), lim, 0)
		}()
		select {
		case <-done:
		case <-time.After(adversarialCap):
			t.Fatalf("%s: Parse+ExtractText did not return within %v", name, adversarialCap)
		}
		t.Logf("%-22s %8d bytes: %v", name, len(raw), time.Since(start))
		if s := checkMeta(m, []byte(raw), lim); s != "" {
			t.Errorf("%s: %s", name, s)
		}
		if len(tx.Plain) > DefaultMaxText || len(tx.HTML) > DefaultMaxText {
			t.Errorf("%s: text over cap", name)
		}
	}
}

func distinctParams(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "; p%d=v", i)
	}
	return b.String()
}
