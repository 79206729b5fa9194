package smtp

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/stoa-mail/stoa/antispam"
	"github.com/stoa-mail/stoa/frontend/smtp/testdns"
	"github.com/stoa-mail/stoa/storage"
)

func TestMXDeliver(t *testing.T) {
	e := newEnv(t, Config{}, Options{})
	c := e.dial("mx")
	ehlo := c.cmd("EHLO client.remote.example", "250")
	for _, ext := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING", "DSN", "SIZE ", "STARTTLS"} {
		if !strings.Contains(ehlo, ext) {
			t.Errorf("EHLO lacks %s: %q", ext, ehlo)
		}
	}
	if strings.Contains(ehlo, "AUTH") {
		t.Errorf("MX advertises AUTH: %q", ehlo)
	}
	msg := simpleMsg + "..dot-stuffed\r\n"
	r := c.transaction("carol@remote.example", []string{"alice@local.test", "bob+tag@local.test", "ALICE@LOCAL.TEST"}, msg)
	if !strings.HasPrefix(r, "250 2.0.0 ok, id ") {
		t.Fatal(r)
	}
	c.cmd("QUIT", "221")
	a, b := e.messages(e.alice, storage.RoleInbox), e.messages(e.bob, storage.RoleInbox)
	if len(a) != 1 || len(b) != 1 {
		t.Fatalf("alice %d, bob %d messages (one each expected)", len(a), len(b))
	}
	if a[0] != b[0] {
		t.Error("recipients got different bytes")
	}
	if !strings.HasPrefix(a[0], "Received: from client.remote.example ([127.0.0.1])\r\n\tby mx.local.test (Stoa) with ESMTP id ") {
		t.Errorf("Received: %q", a[0])
	}
	// The id in the reply is the one in the Received field (and the log).
	if id := strings.Fields(strings.TrimPrefix(r, "250 2.0.0 ok, id "))[0]; !strings.Contains(a[0], "with ESMTP id "+id+";") {
		t.Errorf("reply %q, Received: %q", r, a[0])
	}
	if strings.Contains(a[0], "for <") {
		t.Error("Received names a recipient of a multi-recipient message")
	}
	if !strings.HasSuffix(a[0], "\r\n.dot-stuffed\r\n") || !strings.Contains(a[0], simpleMsg) {
		t.Errorf("body: %q", a[0])
	}
}

func TestMXRecipientChecks(t *testing.T) {
	e := newEnv(t, Config{}, Options{})
	ctx := context.Background()
	if err := e.st.AddAlias(ctx, e.alice.ID, `"john doe"@local.test`); err != nil {
		t.Fatal(err)
	}
	c := e.dial("mx")
	c.cmd("EHLO client.remote.example", "250")
	c.cmd("MAIL FROM:<carol@remote.example>", "250")
	for _, tc := range []struct{ rcpt, want string }{
		{"<nobody@local.test>", "550 5.1.1"},
		{"<bob@remote.example>", "550 5.7.1"},
		// Open-relay tricks (each must stay local or be refused).
		{"<bob%remote.example@local.test>", "550 5.1.1"},
		{"<@local.test:bob@remote.example>", "550 5.7.1"},
		{"<@local.test,@other.example:bob@remote.example>", "550 5.7.1"},
		{"<bob@remote.example@>", "501"},
		{"<bob@remote.example@local.test>", "501"},
		{"<bob@local.test@remote.example>", "501"},
		{`<"bob@remote.example"@local.test>`, "550 5.1.1"},
		{`<"bob@remote.example">`, "501"},
		{"<bob@[192.0.2.1]>", "550 5.7.1"},
		{"<bob!remote.example@local.test>", "550 5.1.1"},
		{"<bob@remote.example.>", "501"},
		{"bob@local.test", "501"},
		{"<bob@local.test", "501"},
		{"<>", "501"},
		{"<bob@loc\x01al.test>", "501"},
		// Quoted local-parts keep their quotes; equivalent quoting is canonical.
		{`<"john doe"@local.test>`, "250"},
		{`<"bob"@local.test>`, "250"},
		{"<@hop.example:alice@local.test>", "250"},
		{"<Postmaster>", "550 5.1.1"}, // no postmaster account in this store
	} {
		if r := c.cmd("RCPT TO:"+tc.rcpt, ""); !strings.HasPrefix(r, tc.want) {
			t.Errorf("RCPT TO:%s: want %s, got %q", tc.rcpt, tc.want, r)
		}
	}
	c.cmd("DATA", "354")
	c.send(simpleMsg + ".\r\n")
	c.expect("250")
	if n := e.count(e.alice, storage.RoleInbox); n != 1 {
		t.Errorf("alice has %d messages", n)
	}
	if n := e.count(e.bob, storage.RoleInbox); n != 1 {
		t.Errorf("bob has %d messages", n)
	}
	if q, _ := e.st.Queue(ctx, 0); len(q) != 0 {
		t.Errorf("MX queued %d messages for relay", len(q))
	}
}

func TestCRLFNULInCommands(t *testing.T) {
	e := newEnv(t, Config{}, Options{})
	c := e.dial("mx")
	c.cmd("EHLO x.example", "250")
	c.cmd("MAIL FROM:<a\x00b@remote.example>", "500 5.5.2")
	c.cmd("MAIL FROM:<a\rb@remote.example>", "500 5.5.2")
	c.cmd("MAIL FROM:<carol@remote.example>", "250")
	c.cmd("RCPT TO:<ali\x00ce@local.test>", "500")
}

func TestMXRefusesAuth(t *testing.T) {
	e := newEnv(t, Config{AllowInsecureAuth: true}, Options{})
	c := e.dial("mx")
	c.cmd("EHLO x.example", "250")
	c.cmd("AUTH PLAIN "+plain("alice@local.test", "alice-pw"), "502 5.5.1")
	c.startTLS()
	if r := c.cmd("EHLO x.example", "250"); strings.Contains(r, "AUTH") {
		t.Errorf("MX advertises AUTH after STARTTLS: %q", r)
	}
	c.cmd("AUTH PLAIN "+plain("alice@local.test", "alice-pw"), "502 5.5.1")
}

func plain(user, pw string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pw))
}

// TestSmuggling: only <CRLF>.<CRLF> ends DATA; the other dot lines are
// data, and the bare line ends make the message refused as a whole.
func TestSmuggling(t *testing.T) {
	e := newEnv(t, Config{}, Options{})
	for _, end := range []string{"\n.\r\n", "\n.\n", "\r\n.\n", "\r.\r\n", "\r\n.\r"} {
		t.Run(fmt.Sprintf("%q", end), func(t *testing.T) {
			c := e.dial("mx")
			c.cmd("EHLO x.example", "250")
			c.cmd("MAIL FROM:<carol@remote.example>", "250")
			c.cmd("RCPT TO:<alice@local.test>", "250")
			c.cmd("DATA", "354")
			smuggled := "MAIL FROM:<admin@local.test>\r\nRCPT TO:<bob@local.test>\r\nDATA\r\nFrom: admin@local.test\r\n\r\nsmuggled\r\n"
			c.send("From: carol@remote.example\r\n\r\nfirst" + end + smuggled + ".\r\n")
			c.expect("554 5.6.0")
			c.cmd("NOOP", "250") // the session is in sync: one reply only
		})
	}
	if n := e.count(e.alice, storage.RoleInbox) + e.count(e.bob, storage.RoleInbox); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

func TestBareLFRefused(t *testing.T) {
	e := newEnv(t, Config{}, Options{})
	c := e.dial("mx")
	c.cmd("EHLO x.example", "250")
	if r := c.transaction("carol@remote.example", []string{"alice@local.test"}, "Subject: x\n\nbody\n\r\n"); !strings.HasPrefix(r, "554 5.6.0") {
		t.Fatal(r)
	}
	if r := c.transaction("carol@remote.example", []string{"alice@local.test"}, "Subject: x\r\n\r\nbo\rdy\r\n"); !strings.HasPrefix(r, "554 5.6.0") {
		t.Fatal(r)
	}
	if n := e.count(e.alice, storage.RoleInbox); n != 0 {
		t.Errorf("%d stored", n)
	}
}

// A first line starting with white space must not fold into the
// Authentication-Results field the server prepends (header injection).
func TestLeadingFoldRefused(t *testing.T) {
	e := newEnv(t, Config{}, Options{})
	c := e.dial("mx")
	c.cmd("EHLO x.example", "250")
	forged := "\tdkim=pass header.d=bank.example header.s=sel;\r\nFrom: Bank <alerts@bank.example>\r\nSubject: x\r\n\r\nbody\r\n"
	if r := c.transaction("carol@remote.example", []string{"alice@local.test"}, forged); !strings.HasPrefix(r, "554 5.6.0") {
		t.Fatal(r)
	}
	if n := e.count(e.alice, storage.RoleInbox); n != 0 {
		t.Errorf("%d stored", n)
	}
}

func TestBDAT(t *testing.T) {
	e := newEnv(t, Config{MaxMessageSize: 1000}, Options{})
	c := e.dial("mx")
	c.cmd("EHLO x.example", "250")

	// Chunks without a transaction are consumed and refused.
	c.send("BDAT 12\r\nMAIL FROM:<>")
	c.expect("503 5.5.1")
	c.cmd("NOOP", "250")

	// A good message in three chunks, pipelined.
	c.cmd("MAIL FROM:<carol@remote.example>", "250")
	c.cmd("RCPT TO:<alice@local.test>", "250")
	p1, p2, p3 := "From: carol@remote.example\r\n", "Subject: chunks\r\n\r\n", "body\r\n"
	c.send(fmt.Sprintf("BDAT %d\r\n%sBDAT %d\r\n%sBDAT %d LAST\r\n%s", len(p1), p1, len(p2), p2, len(p3), p3))
	c.expect("250")
	c.expect("250")
	c.expect("250 2.0.0 ok")
	msgs := e.messages(e.alice, storage.RoleInbox)
	if len(msgs) != 1 || !strings.HasSuffix(msgs[0], p1+p2+p3) {
		t.Fatalf("%q", msgs)
	}

	// Too big: the chunk is still consumed and the session goes on.
	c.cmd("MAIL FROM:<carol@remote.example>", "250")
	c.cmd("RCPT TO:<alice@local.test>", "250")
	big := strings.Repeat("x", 2000)
	c.send("BDAT 2000 LAST\r\n" + big)
	c.expect("552 5.3.4")
	c.cmd("NOOP", "250")

	// Bare LF inside BDAT.
	c.cmd("MAIL FROM:<carol@remote.example>", "250")
	c.cmd("RCPT TO:<alice@local.test>", "250")
	c.send("BDAT 8 LAST\r\nSubj\nx\r\n")
	c.expect("554 5.6.0")

	// DATA after BDAT started.
	c.cmd("MAIL FROM:<carol@remote.example>", "250")
	c.cmd("RCPT TO:<alice@local.test>", "250")
	c.send("BDAT 3\r\nabc")
	c.expect("250")
	c.cmd("DATA", "503")
	c.cmd("RSET", "250")

	// Unparsable size: reply and close, the "chunk" is never read as commands.
	for _, bad := range []string{"BDAT 1x", "BDAT -1", "BDAT", "BDAT 5 NOTLAST", "BDAT +5", "BDAT 99999999999999999999"} {
		c := e.dial("mx")
		c.cmd("EHLO x.example", "250")
		c.cmd("MAIL FROM:<carol@remote.example>", "250")
		c.cmd("RCPT TO:<alice@local.test>", "250")
		c.send(bad + "\r\nRSET\r\n")
		c.expect("501 5.5.4")
		if !c.closed() {
			t.Errorf("%s: connection not closed", bad)
		}
	}
	if n := e.count(e.alice, storage.RoleInbox); n != 1 {
		t.Errorf("%d stored", n)
	}
}

func TestLimits(t *testing.T) {
	e := newEnv(t, Config{MaxRecipients: 2, MaxMessageSize: 4000, MaxHeaders: 10, MaxMIMEDepth: 3, MaxMIMEParts: 5}, Options{})
	c := e.dial("mx")
	c.cmd("EHLO x.example", "250")
	c.cmd("MAIL FROM:<carol@remote.example> SIZE=5000", "552 5.3.4")
	c.cmd("MAIL FROM:<carol@remote.example> SIZE=100 BODY=8BITMIME", "250")
	c.cmd("RCPT TO:<alice@local.test>", "250")
	c.cmd("RCPT TO:<bob@local.test>", "250")
	c.cmd("RCPT TO:<alice+x@local.test>", "452 4.5.3")
	c.cmd("RSET", "250")

	for _, tc := range []struct{ name, msg, want string }{
		{"size", "Subject: x\r\n\r\n" + strings.Repeat("0123456789\r\n", 400), "552 5.3.4"},
		{"line", "Subject: x\r\n\r\n" + strings.Repeat("x", 5000) + "\r\n", "500 5.5.2"},
		{"headers", strings.Repeat("X-A: b\r\n", 11) + "\r\nbody\r\n", "552 5.6.0"},
		{"depth", nest(5), "554 5.6.0"},
		{"parts", "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat("--b\r\n\r\nx\r\n", 8) + "--b--\r\n", "554 5.6.0"},
	} {
		if r := c.transaction("carol@remote.example", []string{"alice@local.test"}, tc.msg); !strings.HasPrefix(r, tc.want) {
			t.Errorf("%s: want %s, got %q", tc.name, tc.want, r)
		}
	}
	if r := c.transaction("carol@remote.example", []string{"alice@local.test"}, nest(2)); !strings.HasPrefix(r, "250") {
		t.Errorf("shallow nesting refused: %q", r)
	}
	if n := e.count(e.alice, storage.RoleInbox); n != 1 {
		t.Errorf("%d stored", n)
	}
	// A command line over the limit is refused and the session ends.
	c.send("NOOP " + strings.Repeat("x", 5000) + "\r\n")
	c.expect("500 5.5.2")
	if !c.closed() {
		t.Error("not closed after a long command line")
	}
}

func nest(depth int) string {
	var b strings.Builder
	for i := 0; i < depth; i++ {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("\r\ndeep\r\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.String()
}

// smtp.max_conns_per_ip and smtp.max_conns answer 421 (RFC 5321 §3.8),
// counted per service: a flood on MX leaves submission and LMTP alone, and
// LMTP (the site's own MTAs) has no per-address limit.
func TestConnLimits(t *testing.T) {
	for _, tc := range []struct {
		cfg           Config
		first, second string
		want          string
	}{
		{Config{MaxConnsPerIP: 1}, "mx", "mx", "421 4.7.0"},
		{Config{MaxConns: 1}, "mx", "mx", "421 4.3.2"},
		{Config{MaxConnsPerIP: 1}, "mx", "submission", "220 "},
		{Config{MaxConns: 1}, "mx", "submission", "220 "},
		{Config{MaxConns: 1}, "submission", "submissions", ""}, // 465: a bare close, no plain text
		{Config{MaxConnsPerIP: 1}, "lmtp", "lmtp", "220 "},
		{Config{MaxConns: 1}, "lmtp", "lmtp", "421 4.3.2"},
	} {
		e := newEnv(t, tc.cfg, Options{})
		c := e.dial(tc.first)
		nc, err := net.Dial("tcp", e.addr[tc.second])
		if err != nil {
			t.Fatal(err)
		}
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 100)
		n, err := nc.Read(buf)
		if tc.want == "" && (n > 0 || err != io.EOF) {
			t.Errorf("%+v: %s after %s: %q, %v (want a close)", tc.cfg, tc.second, tc.first, buf[:n], err)
		} else if !strings.HasPrefix(string(buf[:n]), tc.want) {
			t.Errorf("%+v: %s after %s: %q", tc.cfg, tc.second, tc.first, buf[:n])
		}
		nc.Close()
		c.cmd("QUIT", "221")
	}
}

func TestStartTLSInjection(t *testing.T) {
	e := newEnv(t, Config{}, Options{})
	c := e.dial("submission")
	c.cmd("EHLO x.example", "250")
	c.send("STARTTLS\r\nAUTH PLAIN " + plain("alice@local.test", "alice-pw") + "\r\n")
	c.expect("554 5.5.1")
	if !c.closed() {
		t.Error("not closed")
	}
}

func TestPipelining(t *testing.T) {
	e := newEnv(t, Config{}, Options{})
	c := e.dial("mx")
	c.send("EHLO x.example\r\nMAIL FROM:<carol@remote.example>\r\nRCPT TO:<nobody@local.test>\r\nRCPT TO:<alice@local.test>\r\nDATA\r\n")
	for _, want := range []string{"250", "250", "550", "250", "354"} {
		c.expect(want)
	}
	c.send(simpleMsg + ".\r\nQUIT\r\n")
	c.expect("250")
	c.expect("221")
}

func TestSubmission(t *testing.T) {
	e := newEnv(t, Config{}, Options{})
	ctx := context.Background()
	c := e.dial("submission")
	if r := c.cmd("EHLO client", "250"); strings.Contains(r, "AUTH") {
		t.Errorf("AUTH offered before TLS: %q", r)
	}
	c.cmd("AUTH PLAIN "+plain("alice@local.test", "alice-pw"), "538 5.7.11")
	c.cmd("MAIL FROM:<alice@local.test>", "530 5.7.0")
	c.startTLS()
	if r := c.cmd("EHLO client", "250"); !strings.Contains(r, "AUTH PLAIN LOGIN") {
		t.Errorf("no AUTH after TLS: %q", r)
	}
	c.cmd("AUTH PLAIN "+plain("alice@local.test", "wrong"), "535 5.7.8")
	c.cmd("AUTH PLAIN "+plain("alice@local.test", "alice-pw"), "235")
	c.cmd("MAIL FROM:<bob@local.test>", "553 5.7.1")
	c.cmd("MAIL FROM:<>", "553 5.7.1")

	// From header owned by someone else.
	c.cmd("MAIL FROM:<alice+x@local.test>", "250")
	c.cmd("RCPT TO:<bob@local.test>", "250")
	c.cmd("DATA", "354")
	c.send("From: bob@local.test\r\nSubject: x\r\n\r\nhi\r\n.\r\n")
	c.expect("553 5.7.1")
	// Two From fields.
	c.cmd("MAIL FROM:<alice@local.test>", "250")
	c.cmd("RCPT TO:<bob@local.test>", "250")
	c.cmd("DATA", "354")
	c.send("From: alice@local.test\r\nFrom: alice@local.test\r\n\r\nhi\r\n.\r\n")
	c.expect("554 5.6.0")

	// Local and remote recipients, DSN parameters for the queue.
	c.cmd("MAIL FROM:<alice@local.test> RET=HDRS ENVID=QQ+2B1 SMTPUTF8", "250")
	c.cmd("RCPT TO:<bob@local.test>", "250")
	c.cmd("RCPT TO:<dave@remote.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;dave@remote.example", "250")
	c.cmd(`RCPT TO:<"odd@name"@remote.example>`, "250")
	c.cmd("RCPT TO:<jörg@bücher.example>", "250")
	c.cmd("DATA", "354")
	c.send("From: Alice <alice@local.test>\r\nTo: bob@local.test\r\nSubject: sub\r\n\r\nhello\r\n.\r\n")
	c.expect("250")
	c.cmd("QUIT", "221")

	msgs := e.messages(e.bob, storage.RoleInbox)
	if len(msgs) != 1 {
		t.Fatalf("bob has %d messages", len(msgs))
	}
	for _, h := range []string{"\r\nMessage-ID: <", "\r\nDate: ", "with ESMTPSA id"} {
		if !strings.Contains(msgs[0], h) {
			t.Errorf("missing %q in %q", h, msgs[0])
		}
	}
	q, err := e.st.Queue(ctx, 0)
	if err != nil || len(q) != 1 {
		t.Fatalf("queue: %v %d", err, len(q))
	}
	qe := q[0]
	if qe.From != "alice@local.test" || qe.Account != e.alice.ID || qe.Ret != "HDRS" || qe.EnvID != "QQ+1" || !qe.SMTPUTF8 || len(qe.Recipients) != 3 {
		t.Errorf("entry %+v", qe)
	}
	r0 := qe.Recipients[0]
	if r0.Address != "dave@remote.example" || r0.Notify != "SUCCESS,FAILURE" || r0.ORcpt != "rfc822;dave@remote.example" {
		t.Errorf("rcpt %+v", r0)
	}
	if qe.Recipients[1].Address != `"odd@name"@remote.example` || qe.Recipients[2].Address != "jörg@bücher.example" {
		t.Errorf("quoted/UTF-8 recipients: %+v", qe.Recipients)
	}
}

func TestSubmissionsLogin(t *testing.T) {
	e := newEnv(t, Config{}, Options{})
	nc, err := tlsDial(e.addr["submissions"])
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, nc: nc, r: newReader(nc)}
	c.expect("220")
	if r := c.cmd("EHLO client", "250"); !strings.Contains(r, "AUTH PLAIN LOGIN") {
		t.Errorf("%q", r)
	}
	c.cmd("AUTH LOGIN", "334 VXNlcm5hbWU6")
	c.cmd(base64.StdEncoding.EncodeToString([]byte("alice@local.test")), "334 UGFzc3dvcmQ6")
	c.cmd(base64.StdEncoding.EncodeToString([]byte("alice-pw")), "235")
	c.cmd("AUTH PLAIN", "503")
	if r := c.transaction("alice@local.test", []string{"bob@local.test"}, "From: alice@local.test\r\n\r\nx\r\n"); !strings.HasPrefix(r, "250") {
		t.Fatal(r)
	}
}

// TestAuthFailureLimits: failures lock one (address, login) pair and one
// address, never the account from elsewhere.
func TestAuthFailureLimits(t *testing.T) {
	e := newEnv(t, Config{AllowInsecureAuth: true, AuthFailuresPerLogin: 3, AuthFailuresPerIP: 100}, Options{})
	c := dialFrom(t, e.addr["submission"], "127.0.0.2")
	c.cmd("EHLO client", "250")
	for i := 0; i < 3; i++ {
		c.cmd("AUTH PLAIN "+plain("alice@local.test", "guess"), "535")
	}
	c.cmd("AUTH PLAIN "+plain("alice@local.test", "alice-pw"), "454 4.7.0")
	// The owner, from another address, still logs in.
	o := dialFrom(t, e.addr["submission"], "127.0.0.3")
	o.cmd("EHLO client", "250")
	o.cmd("AUTH PLAIN "+plain("alice@local.test", "alice-pw"), "235")
	// Another login from the first address is not affected.
	d := dialFrom(t, e.addr["submission"], "127.0.0.2")
	d.cmd("EHLO client", "250")
	d.cmd("AUTH PLAIN "+plain("bob@local.test", "bob-pw"), "235")
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, Config{AllowInsecureAuth: true, RateLimitPerHour: 2}, Options{})
	c := e.dial("submission")
	c.cmd("EHLO client", "250")
	c.cmd("AUTH PLAIN "+plain("alice@local.test", "alice-pw"), "235")
	for i := 0; i < 2; i++ {
		c.transaction("alice@local.test", []string{"bob@local.test"}, "From: alice@local.test\r\n\r\nx\r\n")
	}
	c.cmd("MAIL FROM:<alice@local.test>", "451 4.7.1")
}

func TestLMTP(t *testing.T) {
	e := newEnv(t, Config{}, Options{})
	ctx := context.Background()
	full, err := e.st.AddAccount(ctx, "full@local.test", "pw", storage.AccountOptions{QuotaBytes: 10})
	if err != nil {
		t.Fatal(err)
	}
	c := e.dial("lmtp")
	c.cmd("EHLO x", "500")
	c.cmd("LHLO mta.local.test", "250")
	c.cmd("MAIL FROM:<carol@remote.example>", "250")
	c.cmd("RCPT TO:<alice@local.test>", "250")
	c.cmd("RCPT TO:<full@local.test>", "250")
	c.cmd("RCPT TO:<bob@local.test>", "250")
	c.cmd("RCPT TO:<x@remote.example>", "550 5.1.2")
	c.cmd("DATA", "354")
	c.send(simpleMsg + ".\r\n")
	// RFC 2033 §4.2: one reply per accepted recipient, in order.
	c.expect("250")
	c.expect("452 4.2.2")
	c.expect("250")
	c.cmd("NOOP", "250")
	if e.count(e.alice, storage.RoleInbox) != 1 || e.count(e.bob, storage.RoleInbox) != 1 || e.count(full, storage.RoleInbox) != 0 {
		t.Error("wrong counts")
	}
	// LMTP with BDAT too.
	c.cmd("MAIL FROM:<carol@remote.example>", "250")
	c.cmd("RCPT TO:<alice@local.test>", "250")
	c.cmd("RCPT TO:<bob@local.test>", "250")
	c.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(simpleMsg), simpleMsg))
	c.expect("250")
	c.expect("250")
}

func TestAntispamHook(t *testing.T) {
	chk := antispam.CheckerFunc(func(_ context.Context, env antispam.Envelope, header, raw []byte) antispam.Verdict {
		switch {
		case strings.Contains(string(header), "Subject: junk"):
			return antispam.Verdict{Action: antispam.Junk, Headers: []antispam.Header{{Name: "X-Spam", Value: "yes"}}}
		case strings.Contains(string(header), "Subject: reject"):
			return antispam.Verdict{Action: antispam.Reject, Reason: "looks like spam\r\nto me"}
		}
		return antispam.Verdict{}
	})
	e := newEnv(t, Config{}, Options{Checker: chk})
	c := e.dial("mx")
	c.cmd("EHLO x.example", "250")
	if r := c.transaction("carol@remote.example", []string{"alice@local.test"}, "From: c@remote.example\r\nSubject: junk\r\n\r\nx\r\n"); !strings.HasPrefix(r, "250") {
		t.Fatal(r)
	}
	if r := c.transaction("carol@remote.example", []string{"alice@local.test"}, "From: c@remote.example\r\nSubject: reject\r\n\r\nx\r\n"); !strings.HasPrefix(r, "550 5.7.1 looks like spam  to me") {
		t.Fatal(r)
	}
	junk := e.messages(e.alice, storage.RoleJunk)
	if len(junk) != 1 || e.count(e.alice, storage.RoleInbox) != 0 || !strings.Contains(junk[0], "\r\nX-Spam: yes\r\n") {
		t.Errorf("junk %q, inbox %d", junk, e.count(e.alice, storage.RoleInbox))
	}
}

func TestAuthenticationResults(t *testing.T) {
	dns, err := testdns.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	dns.SetTXT("sel._domainkey.remote.example", "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(pub))
	dns.SetTXT("remote.example", "v=spf1 ip4:127.0.0.1 -all")
	dns.SetTXT("_dmarc.remote.example", "v=DMARC1; p=reject")
	dns.SetTXT("spoof.example", "v=spf1 -all")
	dns.SetTXT("_dmarc.spoof.example", "v=DMARC1; p=quarantine")
	e := newEnv(t, Config{}, Options{Resolver: ResolverAt(dns.Addr)})

	msg := "From: Carol <carol@mail.remote.example>\r\nTo: alice@local.test\r\nSubject: signed\r\n" +
		"Authentication-Results: mx.local.test; spf=pass; dkim=pass; dmarc=pass\r\n\r\nSigned body.\r\n"
	var signed strings.Builder
	if err := dkim.Sign(&signed, strings.NewReader(msg), &dkim.SignOptions{Domain: "remote.example", Selector: "sel", Signer: priv}); err != nil {
		t.Fatal(err)
	}
	c := e.dial("mx")
	c.cmd("EHLO mail.remote.example", "250")
	if r := c.transaction("carol@remote.example", []string{"alice@local.test"}, signed.String()); !strings.HasPrefix(r, "250") {
		t.Fatal(r)
	}
	spoof := "From: ceo@spoof.example\r\nSubject: pay\r\n\r\nx\r\n"
	if r := c.transaction("ceo@spoof.example", []string{"alice@local.test"}, spoof); !strings.HasPrefix(r, "250") {
		t.Fatal(r)
	}
	msgs := e.messages(e.alice, storage.RoleInbox)
	if len(msgs) != 2 {
		t.Fatal(len(msgs))
	}
	hdr := func(m string) string { return m[:strings.Index(m, "\r\n\r\n")] }
	good := hdr(msgs[0])
	for _, want := range []string{"Authentication-Results: mx.local.test;", "spf=pass smtp.mailfrom=remote.example", "dkim=pass header.d=remote.example", "dmarc=pass header.from=mail.remote.example"} {
		if !strings.Contains(good, want) {
			t.Errorf("missing %q in\n%s", want, good)
		}
	}
	if strings.Count(good, "Authentication-Results: mx.local.test") != 1 {
		t.Errorf("forged Authentication-Results kept:\n%s", good)
	}
	bad := hdr(msgs[1])
	for _, want := range []string{"spf=fail", "dkim=none", "dmarc=fail reason=\"p=quarantine\""} {
		if !strings.Contains(bad, want) {
			t.Errorf("missing %q in\n%s", want, bad)
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	e := newEnv(t, Config{ReadTimeout: 300 * time.Millisecond}, Options{})
	c := e.dial("mx")
	c.cmd("EHLO x.example", "250")
	time.Sleep(600 * time.Millisecond)
	c.expect("421 4.4.2")
}

// A TLS hello dripped a byte at a time renews the read timeout on every
// byte; smtp.tls_handshake_timeout bounds the handshake as a whole (port
// 465 and STARTTLS).
func TestTLSHandshakeTimeout(t *testing.T) {
	e := newEnv(t, Config{TLSHandshakeTimeout: 500 * time.Millisecond}, Options{})
	drip := func(t *testing.T, nc net.Conn) {
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			hello := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := nc.Write(hello[i%len(hello) : i%len(hello)+1]); err != nil {
					return
				}
			}
		}()
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, nc); err != nil {
			t.Fatalf("dripped hello: %v (want the server to close it)", err)
		}
	}
	t.Run("465", func(t *testing.T) {
		nc, err := net.Dial("tcp", e.addr["submissions"])
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		drip(t, nc)
	})
	t.Run("STARTTLS", func(t *testing.T) {
		c := e.dial("submission")
		c.cmd("EHLO x.example", "250")
		c.cmd("STARTTLS", "220")
		drip(t, c.nc)
	})
}
