package integration

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/gocql/gocql"

	"github.com/stoa-mail/stoa/integration/harness"
	"github.com/stoa-mail/stoa/integration/testenv"
)

// imapServer starts stoa with two accounts; insecure allows LOGIN on the
// plain port.
func imapServer(t *testing.T, insecure bool, env ...string) *harness.Server {
	t.Helper()
	if insecure {
		env = append(env, "STOA_IMAP_ALLOW_INSECURE_AUTH=true")
	}
	env = append(env, "STOA_IMAP_POLL_INTERVAL=200ms", "STOA_IMAP_AUTH_FAILURE_DELAY=10ms")
	return harness.Start(t, harness.Options{
		Accounts: map[string]string{"alice@example.test": "alicepw", "bob@example.test": "bobpw"},
		Roles:    []string{"imap"},
		Env:      env,
	})
}

// raw is a scripted IMAP conversation over TCP.
type raw struct {
	t  *testing.T
	tb testing.TB // set instead of t by benchmarks
	c  net.Conn
	r  *bufio.Reader
}

func (r *raw) T() testing.TB {
	if r.tb != nil {
		return r.tb
	}
	return r.t
}

func dialRaw(t *testing.T, addr string) *raw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &raw{t: t, c: c, r: bufio.NewReader(c)}
	if g := r.line(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("greeting %q", g)
	}
	return r
}

func (r *raw) line() string {
	r.T().Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := r.r.ReadString('\n')
	if err != nil {
		r.T().Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

func (r *raw) send(s string) {
	r.T().Helper()
	if _, err := r.c.Write([]byte(s + "\r\n")); err != nil {
		r.T().Fatal(err)
	}
}

// until reads lines up to the tagged response of tag.
func (r *raw) until(tag string) ([]string, string) {
	r.T().Helper()
	var out []string
	for {
		l := r.line()
		if strings.HasPrefix(l, tag+" ") {
			return out, l
		}
		out = append(out, l)
	}
}

// cmd sends "tag line" and returns untagged lines and the tagged line.
func (r *raw) cmd(tag, line string) ([]string, string) {
	r.T().Helper()
	r.send(tag + " " + line)
	return r.until(tag)
}

// ok runs a command that must succeed.
func (r *raw) ok(tag, line string) []string {
	r.T().Helper()
	u, st := r.cmd(tag, line)
	if !strings.HasPrefix(st, tag+" OK") {
		r.T().Fatalf("%s %s: %s\n%s", tag, line, st, strings.Join(u, "\n"))
	}
	return u
}

func has(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

func login(t *testing.T, s *harness.Server, user, pw string) *raw {
	r := dialRaw(t, s.Addr["imap"])
	r.ok("L", fmt.Sprintf("LOGIN %s %s", user, pw))
	return r
}

func appendMsg(t *testing.T, r *raw, mbox, msg string) {
	t.Helper()
	msg = strings.ReplaceAll(msg, "\n", "\r\n")
	r.send(fmt.Sprintf("A APPEND %s {%d+}\r\n%s", mbox, len(msg), msg))
	if _, st := r.until("A"); !strings.HasPrefix(st, "A OK [APPENDUID") {
		t.Fatalf("append: %s", st)
	}
}

const simpleMsg = "From: Bob <bob@example.test>\nTo: alice@example.test\nSubject: hello %d\nDate: Mon, 1 Jan 2024 10:00:00 +0000\nMessage-ID: <m%d@example.test>\n\nbody text %d\n"

func TestIMAPAuthAndTLS(t *testing.T) {
	s := imapServer(t, false)
	r := dialRaw(t, s.Addr["imap"])
	u := r.ok("a", "CAPABILITY")
	if !has(u, "STARTTLS") || !has(u, "LOGINDISABLED") || has(u, "AUTH=PLAIN") {
		t.Fatalf("pre-TLS capabilities: %v", u)
	}
	if _, st := r.cmd("b", "LOGIN alice@example.test alicepw"); !strings.Contains(st, "NO [PRIVACYREQUIRED]") {
		t.Fatalf("LOGIN before TLS: %s", st)
	}
	r.ok("c", "STARTTLS")
	tc := tls.Client(r.c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	r.c, r.r = tc, bufio.NewReader(tc)
	u = r.ok("d", "CAPABILITY")
	if !has(u, "AUTH=PLAIN") || has(u, "STARTTLS") {
		t.Fatalf("post-TLS capabilities: %v", u)
	}
	// SASL-IR: \0alice@example.test\0alicepw
	u = r.ok("e", "AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZXB3")
	r.ok("f", "SELECT INBOX")

	// Implicit TLS port.
	c, err := tls.Dial("tcp", s.Addr["imaps"], &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r2 := &raw{t: t, c: c, r: bufio.NewReader(c)}
	r2.line()
	r2.ok("a", "LOGIN alice@example.test alicepw")
}

func TestIMAPFailedLoginsDisconnect(t *testing.T) {
	s := imapServer(t, true)
	r := dialRaw(t, s.Addr["imap"])
	for i := 0; i < 2; i++ {
		if _, st := r.cmd("a", "LOGIN alice@example.test wrong"); !strings.Contains(st, "NO [AUTHENTICATIONFAILED]") {
			t.Fatal(st)
		}
	}
	r.send("b LOGIN alice@example.test wrong")
	if l := r.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("third failure: %q", l)
	}
}

func TestIMAPConnectionLimitPerIP(t *testing.T) {
	s := imapServer(t, true, "STOA_IMAP_MAX_CONNS_PER_IP=2")
	dialRaw(t, s.Addr["imap"])
	dialRaw(t, s.Addr["imap"])
	c, err := net.Dial("tcp", s.Addr["imap"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("third connection: %q", l)
	}
}

// TestIMAPGoIMAPFaults checks each fault of go-imap/v2's server package
// that made us write our own command layer.
func TestIMAPGoIMAPFaults(t *testing.T) {
	s := imapServer(t, true)
	top := t
	r := login(t, s, "alice@example.test", "alicepw")

	t.Run("syntax error is BAD CLIENTBUG", func(t *testing.T) {
		r.t = t
		for _, bad := range []string{`FETCH 1 (FLAGS`, `SELECT`, `STORE 1 +FLAGS (\Seen`, `LIST "" "unterminated`, `BOGUS`, `UID BOGUS 1`} {
			_, st := r.cmd("s", bad)
			if !strings.HasPrefix(st, "s BAD [CLIENTBUG]") {
				t.Errorf("%q: %s", bad, st)
			}
			if strings.Contains(st, `"unterminated`) || strings.Contains(st, "BOGUS") || strings.Contains(st, "(FLAGS") {
				t.Errorf("client input echoed: %s", st)
			}
		}
		r.ok("n", "NOOP")
	})
	t.Run("invalid literal keeps session", func(t *testing.T) {
		r.t = t
		r.send("x APPEND INBOX {999999999999}")
		l := r.line()
		if !strings.HasPrefix(l, "x NO [TOOBIG]") {
			t.Fatalf("oversized literal: %q", l)
		}
		r.send("y APPEND INBOX {99999999999+}")
		if l := r.line(); !strings.HasPrefix(l, "* BYE") {
			t.Fatalf("non-sync literal beyond the cap: %q", l)
		}
		r = login(top, s, "alice@example.test", "alicepw")
		r.t = t
		r.send("z LOGIN {abc}")
		if _, st := r.until("z"); !strings.Contains(st, "BAD") {
			t.Fatal(st)
		}
		r.ok("n", "NOOP")
	})
	t.Run("UTF8=ACCEPT names are not UTF-7 decoded", func(t *testing.T) {
		r.t = t
		r.ok("c1", `CREATE "Entw&APw-rfe"`)
		r.ok("e", "ENABLE UTF8=ACCEPT")
		r.ok("c2", `CREATE "a&b"`)
		r.ok("c3", `CREATE "Café"`)
		u := r.ok("l", `LIST "" "*"`)
		if !has(u, `"Entwürfe"`) || !has(u, `"a&b"`) || !has(u, `"Café"`) {
			t.Fatalf("utf8 list: %v", u)
		}
		r2 := login(top, s, "alice@example.test", "alicepw")
		r2.t = t
		u = r2.ok("l", `LIST "" "*"`)
		if !has(u, `"Entw&APw-rfe"`) || !has(u, `"a&-b"`) || !has(u, `"Caf&AOk-"`) {
			t.Fatalf("utf7 list: %v", u)
		}
	})
	t.Run("IDLE sends pending updates and accepts lower-case done", func(t *testing.T) {
		r.t = t
		r.ok("s", "SELECT INBOX")
		other := login(top, s, "alice@example.test", "alicepw")
		other.t = t
		appendMsg(t, other, "INBOX", fmt.Sprintf(simpleMsg, 1, 1, 1))
		r.send("i IDLE")
		lines := []string{r.line(), r.line()}
		if !has(lines, "+ idling") || !has(lines, "* 1 EXISTS") {
			t.Fatalf("IDLE start: %v", lines)
		}
		appendMsg(t, other, "INBOX", fmt.Sprintf(simpleMsg, 2, 2, 2))
		if l := r.line(); l != "* 2 EXISTS" {
			t.Fatalf("IDLE push: %q", l)
		}
		r.send("done")
		if _, st := r.until("i"); !strings.HasPrefix(st, "i OK") {
			t.Fatal(st)
		}
	})
	t.Run("extensions go-imap lacks", func(t *testing.T) {
		r.t = t
		u := r.ok("c", "CAPABILITY")
		for _, c := range []string{"CONDSTORE", "QRESYNC", "SORT", "THREAD=REFERENCES", "QUOTA", " ID "} {
			if !has(u, c) {
				t.Errorf("missing %s", c)
			}
		}
		if u := r.ok("i", `ID ("name" "test")`); !has(u, `* ID ("name" "Stoa"`) {
			t.Errorf("ID: %v", u)
		}
		if u := r.ok("q", `GETQUOTAROOT INBOX`); !has(u, `* QUOTAROOT INBOX ""`) || !has(u, `* QUOTA "" (`) {
			t.Errorf("QUOTA: %v", u)
		}
		if u := r.ok("so", `SORT (REVERSE SUBJECT) UTF-8 ALL`); !has(u, "* SORT 2 1") {
			t.Errorf("SORT: %v", u)
		}
		if u := r.ok("th", `THREAD REFERENCES UTF-8 ALL`); !has(u, "* THREAD (1)(2)") {
			t.Errorf("THREAD: %v", u)
		}
	})
}

func TestIMAPTwoSessions(t *testing.T) {
	s := imapServer(t, true)
	a := login(t, s, "alice@example.test", "alicepw")
	b := login(t, s, "alice@example.test", "alicepw")
	for i := 1; i <= 3; i++ {
		appendMsg(t, a, "INBOX", fmt.Sprintf(simpleMsg, i, i, i))
	}
	a.ok("e", "ENABLE CONDSTORE")
	a.ok("s", "SELECT INBOX")
	b.ok("s", "SELECT INBOX")

	b.ok("st", `STORE 2 +FLAGS (\Flagged)`)
	if u := a.ok("n", "NOOP"); !has(u, `* 2 FETCH (UID 2 FLAGS (\Flagged) MODSEQ (`) {
		t.Fatalf("flags not seen: %v", u)
	}
	appendMsg(t, b, "INBOX", fmt.Sprintf(simpleMsg, 4, 4, 4))
	b.ok("d", `STORE 1 +FLAGS.SILENT (\Deleted)`)
	b.ok("x", "EXPUNGE")
	// A FETCH by sequence number must not carry the EXPUNGE (RFC 9051 §7.5.1).
	u := a.ok("f", "FETCH 1:* (FLAGS)")
	if has(u, "EXPUNGE") || !has(u, "* 4 EXISTS") {
		t.Fatalf("FETCH during pending expunge: %v", u)
	}
	if u := a.ok("n2", "NOOP"); !has(u, "* 1 EXPUNGE") {
		t.Fatalf("expunge not told: %v", u)
	}
	if u := a.ok("f2", "FETCH 1:* (UID)"); !has(u, "* 3 FETCH (UID 4)") {
		t.Fatalf("renumbering: %v", u)
	}

	// QRESYNC: VANISHED instead of EXPUNGE.
	c := login(t, s, "alice@example.test", "alicepw")
	c.ok("e", "ENABLE QRESYNC")
	c.ok("s", "SELECT INBOX")
	b.ok("d2", `UID STORE 2 +FLAGS.SILENT (\Deleted)`)
	b.ok("x2", "UID EXPUNGE 2")
	if u := c.ok("n", "NOOP"); !has(u, "* VANISHED 2") {
		t.Fatalf("VANISHED: %v", u)
	}
}

func next(n string) string {
	var x uint64
	fmt.Sscan(n, &x)
	return fmt.Sprint(x + 1)
}

var modseqRE = regexp.MustCompile(`HIGHESTMODSEQ (\d+)`)
var uidvRE = regexp.MustCompile(`UIDVALIDITY (\d+)`)

func TestIMAPCondstoreQresync(t *testing.T) {
	s := imapServer(t, true)
	a := login(t, s, "alice@example.test", "alicepw")
	for i := 1; i <= 4; i++ {
		appendMsg(t, a, "INBOX", fmt.Sprintf(simpleMsg, i, i, i))
	}
	a.ok("e", "ENABLE QRESYNC")
	u := a.ok("s", "SELECT INBOX")
	ms, uv := "", ""
	for _, l := range u {
		if m := modseqRE.FindStringSubmatch(l); m != nil {
			ms = m[1]
		}
		if m := uidvRE.FindStringSubmatch(l); m != nil {
			uv = m[1]
		}
	}
	if ms == "" || uv == "" {
		t.Fatalf("SELECT: %v", u)
	}
	// UNCHANGEDSINCE with a stale modseq fails for changed messages.
	a.ok("st", `STORE 1 +FLAGS (\Seen)`)
	_, st := a.cmd("c", fmt.Sprintf(`STORE 1:2 (UNCHANGEDSINCE %s) +FLAGS (\Flagged)`, ms))
	if !strings.Contains(st, "OK [MODIFIED 1]") {
		t.Fatalf("UNCHANGEDSINCE: %s", st)
	}
	u = a.ok("f", fmt.Sprintf("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %s)", ms))
	if len(u) != 2 || !has(u, "UID 1 ") || !has(u, "UID 2 ") || !has(u, "MODSEQ") {
		t.Fatalf("CHANGEDSINCE: %v", u)
	}
	a.ok("d", `UID STORE 3 +FLAGS.SILENT (\Deleted)`)
	a.ok("x", "UID EXPUNGE 3")
	a.ok("cl", "UNSELECT")
	// Wrong UIDVALIDITY: a normal select.
	u = a.ok("s2", fmt.Sprintf("SELECT INBOX (QRESYNC (1 %s))", ms))
	if has(u, "VANISHED") || !has(u, "* 3 EXISTS") {
		t.Fatalf("QRESYNC with wrong uidvalidity: %v", u)
	}
	u = a.ok("s3", fmt.Sprintf("SELECT INBOX (QRESYNC (%s %s 1:4))", uv, ms))
	if !has(u, "* OK [CLOSED]") || !has(u, "* VANISHED (EARLIER) 3") || !has(u, "FETCH (UID 1 FLAGS (\\Seen) MODSEQ") {
		t.Fatalf("QRESYNC: %v", u)
	}
	u = a.ok("v", fmt.Sprintf("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %s VANISHED)", ms))
	if !has(u, "* VANISHED (EARLIER) 3") {
		t.Fatalf("FETCH VANISHED: %v", u)
	}
	// SEARCH MODSEQ and ESEARCH with SEARCHRES.
	u = a.ok("se", fmt.Sprintf("SEARCH RETURN (MIN MAX COUNT SAVE) MODSEQ %s", next(ms)))
	if !has(u, `* ESEARCH (TAG "se") MIN 1 MAX 2 COUNT 2 MODSEQ`) {
		t.Fatalf("ESEARCH: %v", u)
	}
	if u := a.ok("fs", "FETCH $ (UID)"); len(u) != 2 {
		t.Fatalf("SEARCHRES: %v", u)
	}
}

const multipartMsg = `From: "Zoë" <zoe@example.test>
To: alice@example.test, group: a@b.test, c@d.test;
Subject: =?UTF-8?Q?caf=C3=A9?= report
Date: Tue, 2 Jan 2024 11:00:00 +0100
Message-ID: <mp1@example.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX"

--XX
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Hello caf=C3=A9 world
--XX
Content-Type: application/octet-stream; name="a.bin"
Content-Disposition: attachment; filename="a.bin"
Content-Transfer-Encoding: base64

AAECAwQ=
--XX--
`

func TestIMAPFetchSections(t *testing.T) {
	s := imapServer(t, true)
	a := login(t, s, "alice@example.test", "alicepw")
	appendMsg(t, a, "INBOX", multipartMsg)
	a.ok("s", "SELECT INBOX")
	u := a.ok("f", "FETCH 1 (BODYSTRUCTURE ENVELOPE)")
	want := []string{`("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE"`, `"MIXED" ("BOUNDARY" "XX")`,
		`("ATTACHMENT" ("FILENAME" "a.bin"))`, `"=?UTF-8?Q?caf=C3=A9?= report"`, `(NIL NIL "group" NIL)`, `(NIL NIL NIL NIL)`, `"<mp1@example.test>"`}
	for _, w := range want {
		if !has(u, w) {
			t.Errorf("missing %s in %v", w, u)
		}
	}
	u = a.ok("h", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[1]<0.5>)")
	if !has(u, "BODY[HEADER.FIELDS (SUBJECT)] {") || !has(u, "BODY[1]<0> {5}") || !has(u, "Subject: =?UTF-8?Q?caf=C3=A9?= report") {
		t.Errorf("sections: %v", u)
	}
	u = a.ok("b", "FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[1] FLAGS)")
	if !has(u, "BINARY[2] ~{5}") || !has(u, "BINARY.SIZE[1] 17") {
		t.Errorf("binary: %v", u)
	}
	u = a.ok("t", "FETCH 1 (BODY[TEXT])")
	if !has(u, `FLAGS (\Seen)`) {
		t.Errorf("\\Seen not set by BODY[]: %v", u)
	}
	u = a.ok("se", `SEARCH BODY "CAFÉ WORLD"`)
	if !has(u, "* SEARCH 1") {
		t.Errorf("body search: %v", u)
	}
	u = a.ok("se2", `SEARCH SUBJECT "café" FROM zoe HEADER Message-ID mp1 NOT BODY nothere`)
	if !has(u, "* SEARCH 1") {
		t.Errorf("header search: %v", u)
	}
}

func TestIMAPMailboxes(t *testing.T) {
	s := imapServer(t, true)
	a := login(t, s, "alice@example.test", "alicepw")
	a.ok("c", `CREATE "Projects/2024" (USE (\Flagged))`)
	if _, st := a.cmd("c2", `CREATE Projects`); !strings.Contains(st, "NO [ALREADYEXISTS]") {
		t.Fatal(st)
	}
	if _, st := a.cmd("d", `DELETE Projects`); !strings.Contains(st, "NO [HASCHILDREN]") {
		t.Fatal(st)
	}
	if _, st := a.cmd("d2", `DELETE Nope`); !strings.Contains(st, "NO [NONEXISTENT]") {
		t.Fatal(st)
	}
	if _, st := a.cmd("cp", `COPY 1 Nope`); !strings.Contains(st, "BAD") {
		t.Fatal(st) // not selected
	}
	u := a.ok("l", `LIST "" "*" RETURN (SPECIAL-USE STATUS (MESSAGES UIDNEXT SIZE))`)
	if !has(u, `* LIST (\HasNoChildren \Sent) "/" Sent`) && !has(u, `* LIST (\HasNoChildren \Sent) "/" "Sent"`) {
		t.Errorf("LIST: %v", u)
	}
	if !has(u, `\HasChildren`) || !has(u, "* STATUS INBOX (MESSAGES 0 UIDNEXT 1 SIZE 0)") {
		t.Errorf("LIST-STATUS: %v", u)
	}
	a.ok("sub", "SUBSCRIBE Projects/2024")
	u = a.ok("ls", `LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"`)
	if !has(u, `"Projects" ("CHILDINFO" ("SUBSCRIBED"))`) {
		t.Errorf("RECURSIVEMATCH: %v", u)
	}
	a.ok("r", "RENAME Projects Work")
	u = a.ok("l2", `LIST "" "Work/%"`)
	if !has(u, "Work/2024") {
		t.Errorf("RENAME: %v", u)
	}
	appendMsg(t, a, "INBOX", fmt.Sprintf(simpleMsg, 1, 1, 1))
	a.ok("s", "SELECT INBOX")
	if _, st := a.cmd("cp", `COPY 1 Nope`); !strings.Contains(st, "NO [TRYCREATE]") {
		t.Fatal(st)
	}
	if u := a.ok("m", `MOVE 1 Work/2024`); !has(u, "* OK [COPYUID ") || !has(u, "* 1 EXPUNGE") {
		t.Fatalf("MOVE: %v", u)
	}
	u = a.ok("st", `STATUS Work/2024 (MESSAGES UNSEEN DELETED HIGHESTMODSEQ)`)
	if !has(u, "MESSAGES 1 UNSEEN 1 DELETED 0 HIGHESTMODSEQ") {
		t.Errorf("STATUS: %v", u)
	}
	// MULTIAPPEND
	m1, m2 := "Subject: one\r\n\r\nx\r\n", "Subject: two\r\n\r\ny\r\n"
	a.send(fmt.Sprintf("ma APPEND INBOX (\\Seen) {%d+}\r\n%s {%d+}\r\n%s", len(m1), m1, len(m2), m2))
	if _, st := a.until("ma"); !strings.Contains(st, "OK [APPENDUID") || !strings.Contains(st, ":") {
		t.Fatalf("MULTIAPPEND: %s", st)
	}
	a.ok("ns", "NAMESPACE")
}

// TestIMAPClientLibrary drives the server with go-imap/v2's client.
func TestIMAPClientLibrary(t *testing.T) {
	s := imapServer(t, false)
	c, err := imapclient.DialTLS(s.Addr["imaps"], &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice@example.test", "alicepw").Wait(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		msg := strings.ReplaceAll(fmt.Sprintf(simpleMsg, i, i, i), "\n", "\r\n")
		ac := c.Append("INBOX", int64(len(msg)), nil)
		ac.Write([]byte(msg))
		ac.Close()
		if _, err := ac.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 5 {
		t.Fatalf("select: %+v %v", sel, err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3, 4, 5), &imap.FetchOptions{Envelope: true, Flags: true, UID: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 5 || msgs[2].Envelope.Subject != "hello 3" {
		t.Fatalf("fetch: %v %v", len(msgs), err)
	}
	sd, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "hello 4"}}}, nil).Wait()
	if err != nil || len(sd.AllUIDs()) != 1 || sd.AllUIDs()[0] != 4 {
		t.Fatalf("search: %+v %v", sd, err)
	}
	if err := c.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	md, err := c.Move(imap.UIDSetNum(2), "Archive").Wait()
	if err != nil || md.DestUIDs.String() != "1" {
		t.Fatalf("move: %+v %v", md, err)
	}
	st, err := c.Status("Archive", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || *st.NumMessages != 1 {
		t.Fatalf("status: %v", err)
	}
	lst, err := c.List("", "*", nil).Collect()
	if err != nil || len(lst) < 6 {
		t.Fatalf("list: %v %v", lst, err)
	}
	// IDLE: another client's append arrives as EXISTS.
	var mu sync.Mutex
	exists := uint32(0)
	c2, err := imapclient.DialTLS(s.Addr["imaps"], &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				mu.Lock()
				exists = *d.NumMessages
				mu.Unlock()
			}
		}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Login("alice@example.test", "alicepw").Wait()
	c2.Select("INBOX", nil).Wait()
	idle, err := c2.Idle()
	if err != nil {
		t.Fatal(err)
	}
	msg := "Subject: pushed\r\n\r\nhi\r\n"
	ac := c.Append("INBOX", int64(len(msg)), nil)
	ac.Write([]byte(msg))
	ac.Close()
	ac.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := exists
		mu.Unlock()
		if n == 5 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	idle.Close()
	idle.Wait()
	if exists != 5 {
		t.Fatalf("IDLE push: exists=%d", exists)
	}
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not installed", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

func TestIMAPPythonImaplib(t *testing.T) {
	py := harness.Python(t)
	s := imapServer(t, false)
	script := filepath.Join(harness.RepoRoot(), "integration", "testdata", "imap", "imaplib_client.py")
	host, port, _ := net.SplitHostPort(s.Addr["imap"])
	cmd := exec.Command(py, script, host, port, "alice@example.test", "alicepw")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ALL OK") {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
}

func TestIMAPMbsync(t *testing.T) {
	mbsync := needTool(t, "mbsync")
	s := imapServer(t, false)
	r := loginTLS(t, s)
	for i := 1; i <= 3; i++ {
		appendMsg(t, r, "INBOX", fmt.Sprintf(simpleMsg, i, i, i))
	}
	dir := t.TempDir()
	maildir := filepath.Join(dir, "mail")
	os.MkdirAll(maildir, 0o700)
	host, port, _ := net.SplitHostPort(s.Addr["imaps"])
	cfg := fmt.Sprintf(`IMAPAccount stoa
Host %s
Port %s
User alice@example.test
Pass alicepw
%s IMAPS
CertificateFile %s

IMAPStore remote
Account stoa

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns INBOX
Create Both
Expunge Both
SyncState *
`, host, port, tlsKeyword(mbsync), filepath.Join(s.DataDir, "tls", "cert.pem"), maildir, maildir)
	rc := filepath.Join(dir, "mbsyncrc")
	os.WriteFile(rc, []byte(cfg), 0o600)
	run := func() {
		t.Helper()
		out, err := exec.Command(mbsync, "-c", rc, "-a").CombinedOutput()
		if err != nil {
			t.Fatalf("mbsync: %v\n%s", err, out)
		}
	}
	run()
	files, _ := filepath.Glob(filepath.Join(maildir, "INBOX", "cur", "*"))
	news, _ := filepath.Glob(filepath.Join(maildir, "INBOX", "new", "*"))
	if len(files)+len(news) != 3 {
		t.Fatalf("pulled %d+%d messages", len(files), len(news))
	}
	// Local → remote: a new local message, and a local flag change.
	local := "From: me@example.test\r\nSubject: local one\r\n\r\nlocal body\r\n"
	os.WriteFile(filepath.Join(maildir, "INBOX", "new", "1700000000.local.host"), []byte(local), 0o600)
	all := append(files, news...)
	os.Rename(all[0], strings.SplitN(all[0], ":2,", 2)[0]+":2,FS")
	run()
	u := r.ok("s", "SELECT INBOX")
	if !has(u, "* 4 EXISTS") {
		t.Fatalf("after push: %v", u)
	}
	u = r.ok("f", "FETCH 1:* (FLAGS ENVELOPE)")
	if !has(u, "local one") || !has(u, `\Flagged`) {
		t.Fatalf("remote state: %v", u)
	}
	// Remote delete → local delete.
	r.ok("d", `STORE 2 +FLAGS.SILENT (\Deleted)`)
	r.ok("x", "EXPUNGE")
	run()
	files, _ = filepath.Glob(filepath.Join(maildir, "INBOX", "cur", "*"))
	news, _ = filepath.Glob(filepath.Join(maildir, "INBOX", "new", "*"))
	if len(files)+len(news) != 3 {
		t.Fatalf("after remote expunge: %d local messages", len(files)+len(news))
	}
}

// tlsKeyword: isync 1.5 renamed SSLType to TLSType.
func tlsKeyword(mbsync string) string {
	out, _ := exec.Command(mbsync, "--version").CombinedOutput()
	v := strings.TrimSpace(strings.TrimPrefix(string(out), "isync "))
	if strings.HasPrefix(v, "1.4") || strings.HasPrefix(v, "1.3") {
		return "SSLType"
	}
	return "TLSType"
}

func loginTLS(t *testing.T, s *harness.Server) *raw {
	c, err := tls.Dial("tcp", s.Addr["imaps"], &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &raw{t: t, c: c, r: bufio.NewReader(c)}
	r.line()
	r.ok("L", "LOGIN alice@example.test alicepw")
	return r
}

func TestIMAPMutt(t *testing.T) {
	mutt := needTool(t, "mutt")
	script := needTool(t, "script") // mutt needs a terminal
	s := imapServer(t, true)
	r := login(t, s, "alice@example.test", "alicepw")
	for i := 1; i <= 2; i++ {
		appendMsg(t, r, "INBOX", fmt.Sprintf(simpleMsg, i, i, i))
	}
	dir := t.TempDir()
	host, port, _ := net.SplitHostPort(s.Addr["imap"])
	rc := filepath.Join(dir, "muttrc")
	os.WriteFile(rc, []byte(fmt.Sprintf(`set folder="imap://alice%%40example.test@%s:%s/"
set spoolfile="+INBOX"
set imap_pass="alicepw"
set ssl_starttls=no
set ssl_force_tls=no
set header_cache=""
set message_cachedir=""
set record=""
set move=no
set mark_old=no
`, host, port)), 0o600)
	// Batch: flag every message, write the change back, quit.
	keys := `push "<tag-pattern>~A<enter><tag-prefix><flag-message><sync-mailbox><exit>"`
	cmdline := fmt.Sprintf("%s -n -F %s -e '%s'", mutt, rc, keys)
	cmd := exec.Command(script, "-qec", cmdline, "/dev/null")
	cmd.Env = append(os.Environ(), "TERM=xterm", "HOME="+dir)
	done := make(chan error, 1)
	var out []byte
	go func() {
		var err error
		out, err = cmd.CombinedOutput()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("mutt: %v\n%q", err, out)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("mutt did not finish")
	}
	u := r.ok("s", "SELECT INBOX")
	u = r.ok("f", "FETCH 1:* (FLAGS)")
	if len(u) != 2 || !has(u[:1], `\Flagged`) || !has(u[1:], `\Flagged`) {
		t.Fatalf("after mutt: %v\n%q", u, out)
	}
}

// ---- make bench-imap: figures printed, never asserted (DESIGN §6) ----

// serverPID finds the stoa process serving s (by its configuration path).
func serverPID(s *harness.Server) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(b), s.Config) && strings.Contains(string(b), "serve") {
			return pid
		}
	}
	return 0
}

func rssKB(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			var kb int
			fmt.Sscan(strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:")), &kb)
			return kb
		}
	}
	return 0
}

// benchServer starts the IMAP server on the embedded engine, or on
// Cassandra (a fresh keyspace on STOA_TEST_CASSANDRA) when
// STOA_BENCH_ENGINE=cassandra.
func benchServer(b *testing.B) *harness.Server {
	env := []string{"STOA_IMAP_ALLOW_INSECURE_AUTH=true", "STOA_IMAP_MAX_CONNS_PER_IP=20000"}
	if os.Getenv("STOA_BENCH_ENGINE") == "cassandra" {
		env = append(env, cassandraKeyspace(b)...)
	}
	return harness.Start(b, harness.Options{
		Accounts: map[string]string{"alice@example.test": "alicepw"},
		Roles:    []string{"imap"},
		Env:      env,
	})
}

// cassandraKeyspace creates and migrates a keyspace of its own on
// STOA_TEST_CASSANDRA, dropped at the end, and returns the server's
// environment for it.
func cassandraKeyspace(tb testing.TB) []string {
	cass := testenv.Cassandra(tb)
	ks := "stoa_bench_" + randomSuffix(tb)
	env := []string{"STOA_STORAGE_ENGINE=cassandra", "STOA_CASSANDRA_HOSTS=" + cass,
		"STOA_CASSANDRA_KEYSPACE=" + ks, "STOA_CASSANDRA_SIMPLE_REPLICATION=1"}
	mig := exec.Command(harness.Binary(tb), "migrate")
	mig.Env = append(append(os.Environ(), env...), "STOA_SERVER_DATA_DIR="+tb.TempDir())
	if out, err := mig.CombinedOutput(); err != nil {
		tb.Fatalf("stoa migrate (keyspace %s): %v\n%s", ks, err, out)
	}
	tb.Cleanup(func() {
		cl := gocql.NewCluster(strings.Split(cass, ",")...)
		cl.Timeout = 30 * time.Second
		if s, err := cl.CreateSession(); err == nil {
			s.Query("DROP KEYSPACE IF EXISTS " + ks).Exec()
			s.Close()
		}
	})
	return env
}

func benchLogin(b *testing.B, addr string) *raw {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	r := &raw{tb: b, c: c, r: bufio.NewReaderSize(c, 4096)}
	r.line()
	r.ok("L", "LOGIN alice@example.test alicepw")
	return r
}

// BenchmarkIMAPOps: 10 concurrent clients, each in its own mailbox, loop
// APPEND, SELECT, FETCH, STORE, SEARCH, EXPUNGE for 10 s.
func BenchmarkIMAPOps(b *testing.B) {
	s := benchServer(b)
	const clients = 10
	const dur = 10 * time.Second
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	perCmd := map[string]int{}
	for i := 0; i < clients; i++ {
		r := benchLogin(b, s.Addr["imap"])
		box := fmt.Sprintf("Bench%d", i)
		r.ok("c", "CREATE "+box)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.c.Close()
			n := 0
			counts := map[string]int{}
			end := time.Now().Add(dur)
			for k := 1; time.Now().Before(end); k++ {
				msg := strings.ReplaceAll(fmt.Sprintf(simpleMsg, k, k, k), "\n", "\r\n")
				r.send(fmt.Sprintf("A APPEND %s {%d+}\r\n%s", box, len(msg), msg))
				r.until("A")
				r.ok("S", "SELECT "+box)
				r.ok("F", "UID FETCH 1:* (FLAGS ENVELOPE)")
				r.ok("T", fmt.Sprintf(`UID STORE %d +FLAGS.SILENT (\Seen)`, k))
				r.ok("Q", "UID SEARCH UNSEEN SUBJECT hello")
				if k%5 == 0 {
					r.ok("D", `UID STORE 1:* +FLAGS.SILENT (\Deleted)`)
					r.ok("X", "EXPUNGE")
					counts["STORE"]++
					counts["EXPUNGE"]++
					n += 2
				}
				counts["APPEND"]++
				counts["SELECT"]++
				counts["FETCH"]++
				counts["STORE"]++
				counts["SEARCH"]++
				n += 5
			}
			mu.Lock()
			total += n
			for k, v := range counts {
				perCmd[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	ops := float64(total) / dur.Seconds()
	b.ReportMetric(ops, "ops/s")
	fmt.Printf("IMAP ops: %d clients, %.0f commands/s (%v)\n", clients, ops, perCmd)
}

// BenchmarkIMAPIdleMemory: resident memory per IDLE connection.
func BenchmarkIMAPIdleMemory(b *testing.B) {
	s := benchServer(b)
	pid := serverPID(s)
	if pid == 0 {
		b.Fatal("server pid not found")
	}
	n := 2000
	if v := os.Getenv("STOA_BENCH_IDLE_CONNS"); v != "" {
		fmt.Sscan(v, &n)
	}
	const warm = 100
	var conns []*raw
	open := func(k int) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		sem := make(chan struct{}, 2)
		for i := 0; i < k; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				r := benchLogin(b, s.Addr["imap"])
				r.ok("S", "SELECT INBOX")
				r.send("I IDLE")
				r.line()
				mu.Lock()
				conns = append(conns, r)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	open(warm)
	time.Sleep(3 * time.Second) // let the heap settle after the logins' hashing
	base := rssKB(pid)
	start := time.Now()
	open(n)
	time.Sleep(3 * time.Second)
	after := rssKB(pid)
	per := float64(after-base) / float64(n)
	b.ReportMetric(per, "KB/conn")
	fmt.Printf("IMAP idle memory: %d IDLE connections opened in %v; RSS %d KB -> %d KB: %.1f KB per connection; 10,000 connections ≈ %.0f MB\n",
		n, time.Since(start).Round(time.Second), base, after, per, per*10000/1024)
	for _, r := range conns {
		r.c.Close()
	}
}

// BenchmarkIMAPFetch1000: latency of UID FETCH 1:1000 (ENVELOPE FLAGS).
func BenchmarkIMAPFetch1000(b *testing.B) {
	s := benchServer(b)
	r := benchLogin(b, s.Addr["imap"])
	var sb strings.Builder
	sb.WriteString("A APPEND INBOX")
	for k := 1; k <= 1000; k++ {
		msg := strings.ReplaceAll(fmt.Sprintf(simpleMsg, k, k, k), "\n", "\r\n")
		fmt.Fprintf(&sb, " {%d+}\r\n%s", len(msg), msg)
	}
	r.send(sb.String())
	if _, st := r.until("A"); !strings.HasPrefix(st, "A OK") {
		b.Fatal(st)
	}
	r.ok("S", "SELECT INBOX")
	var ds []time.Duration
	for i := 0; i < 30; i++ {
		t0 := time.Now()
		u := r.ok("F", "UID FETCH 1:1000 (ENVELOPE FLAGS)")
		ds = append(ds, time.Since(t0))
		if len(u) != 1000 {
			b.Fatalf("%d responses", len(u))
		}
	}
	sortDurations(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "ms-p50")
	fmt.Printf("IMAP UID FETCH 1:1000 (ENVELOPE FLAGS): p50 %v, p90 %v, min %v (30 runs)\n",
		ds[len(ds)/2].Round(time.Microsecond*100), ds[len(ds)*9/10].Round(time.Microsecond*100), ds[0].Round(time.Microsecond*100))
}

func sortDurations(ds []time.Duration) {
	for i := 1; i < len(ds); i++ {
		for j := i; j > 0 && ds[j] < ds[j-1]; j-- {
			ds[j], ds[j-1] = ds[j-1], ds[j]
		}
	}
}

// TestIMAPLimits: refused literals and long lines leave the session usable.
func TestIMAPLimits(t *testing.T) {
	s := imapServer(t, true, "STOA_IMAP_MAX_LITERAL=1024", "STOA_IMAP_MAX_LINE_LENGTH=200", "STOA_STORAGE_MAX_MESSAGE_SIZE=500")
	r := login(t, s, "alice@example.test", "alicepw")
	// Above APPENDLIMIT (RFC 7889): refused before the client sends it.
	if u := r.ok("cap", "CAPABILITY"); !has(u, "APPENDLIMIT=500") {
		t.Fatalf("APPENDLIMIT: %v", u)
	}
	r.send("e APPEND INBOX {800}")
	if l := r.line(); !strings.HasPrefix(l, "e NO [TOOBIG]") {
		t.Fatalf("APPENDLIMIT literal: %q", l)
	}
	// Synchronizing literal too large: no continuation, NO [TOOBIG].
	r.send("a APPEND INBOX {2000}")
	if l := r.line(); !strings.HasPrefix(l, "a NO [TOOBIG]") {
		t.Fatalf("sync literal: %q", l)
	}
	r.ok("n1", "NOOP")
	// Non-synchronizing literal too large but under the discard cap: read,
	// discarded with the rest of its command, answered, session goes on.
	big := strings.Repeat("x", 2000)
	r.send("b APPEND INBOX {2000+}\r\n" + big + " {3+}\r\nabc")
	if l := r.line(); !strings.HasPrefix(l, "b NO [TOOBIG]") {
		t.Fatalf("non-sync literal: %q", l)
	}
	r.ok("n2", "NOOP")
	// Overlong line: BAD, not echoed, session goes on.
	r.send("c LIST \"\" " + strings.Repeat("y", 500))
	if l := r.line(); !strings.HasPrefix(l, "c BAD [TOOBIG]") || strings.Contains(l, "yyy") {
		t.Fatalf("long line: %q", l)
	}
	r.ok("n3", "NOOP")
	// A literal inside the limit still works, with its continuation.
	r.send("d APPEND INBOX {12}")
	if l := r.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("continuation: %q", l)
	}
	r.send("Subject: x\r\n")
	if _, st := r.until("d"); !strings.HasPrefix(st, "d OK [APPENDUID") {
		t.Fatal(st)
	}
}

// TestIMAPRev2Transcript logs a short IMAP4rev2 conversation (run with -v to read it).
func TestIMAPRev2Transcript(t *testing.T) {
	s := imapServer(t, true)
	r := login(t, s, "alice@example.test", "alicepw")
	appendMsg(t, r, "INBOX", multipartMsg)
	appendMsg(t, r, "INBOX", fmt.Sprintf(simpleMsg, 1, 1, 1))
	for _, c := range []string{"ENABLE IMAP4rev2 UTF8=ACCEPT", "SELECT INBOX", "LIST \"\" %", "STATUS INBOX (MESSAGES UIDNEXT UNSEEN SIZE)",
		"SEARCH UNSEEN", "UID SEARCH RETURN (COUNT) ALL", "FETCH 1:2 (UID FLAGS INTERNALDATE RFC822.SIZE BODYSTRUCTURE)", "FETCH 2 BODY", "NAMESPACE"} {
		u, st := r.cmd("t", c)
		if !strings.HasPrefix(st, "t OK") {
			t.Errorf("%s: %s", c, st)
		}
		t.Logf("C: t %s\n%s\n%s", c, strings.Join(u, "\n"), st)
	}
	u := r.ok("s", "SELECT INBOX")
	if has(u, "RECENT") {
		t.Errorf("IMAP4rev2 SELECT sent RECENT: %v", u)
	}
	if u := r.ok("e", "SEARCH ALL"); !has(u, `* ESEARCH (TAG "e") ALL 1:2`) {
		t.Errorf("IMAP4rev2 SEARCH: %v", u)
	}
}

// TestIMAPMoreExtensions: SASL without initial response, BINARY literal8
// APPEND, UTF8 APPEND, CREATE-SPECIAL-USE, QUOTA, THREAD=ORDEREDSUBJECT.
func TestIMAPMoreExtensions(t *testing.T) {
	s := imapServer(t, true)
	r := dialRaw(t, s.Addr["imap"])
	r.send("a AUTHENTICATE PLAIN")
	if l := r.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("SASL continuation: %q", l)
	}
	r.send("AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZXB3")
	if _, st := r.until("a"); !strings.HasPrefix(st, "a OK") {
		t.Fatal(st)
	}
	bin := "Subject: bin\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\x02\r\n"
	r.send(fmt.Sprintf("b APPEND INBOX ~{%d+}\r\n%s", len(bin), bin))
	if _, st := r.until("b"); !strings.HasPrefix(st, "b OK [APPENDUID") {
		t.Fatalf("literal8 APPEND: %s", st)
	}
	r.ok("e", "ENABLE UTF8=ACCEPT")
	u8 := "Subject: héllo wörld\r\nFrom: Jörg <jörg@example.test>\r\n\r\nbody\r\n"
	r.send(fmt.Sprintf("c APPEND INBOX UTF8 (~{%d+}\r\n%s)", len(u8), u8))
	if _, st := r.until("c"); !strings.HasPrefix(st, "c OK [APPENDUID") {
		t.Fatalf("UTF8 APPEND: %s", st)
	}
	r.ok("d", `CREATE Important (USE (\Flagged))`)
	if _, st := r.cmd("d2", `CREATE Bad (USE (\Nonsense))`); !strings.Contains(st, "NO [USEATTR]") {
		t.Fatalf("USEATTR: %s", st)
	}
	if u := r.ok("l", `LIST (SPECIAL-USE) "" "*"`); !has(u, `\Flagged) "/" "Important"`) || has(u, "INBOX") {
		t.Fatalf("LIST SPECIAL-USE: %v", u)
	}
	r.ok("s", "SELECT INBOX")
	if u := r.ok("f", "FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])"); !has(u, "BINARY[1] ~{5}") || !has(u, "BINARY.SIZE[1] 5") {
		t.Fatalf("BINARY: %v", u)
	}
	if u := r.ok("q", `GETQUOTA ""`); !has(u, `* QUOTA "" (`) {
		t.Fatalf("GETQUOTA: %v", u)
	}
	if _, st := r.cmd("q2", `SETQUOTA "" (STORAGE 10)`); !strings.Contains(st, "NO") {
		t.Fatalf("SETQUOTA: %s", st)
	}
	if u := r.ok("t", "THREAD ORDEREDSUBJECT UTF-8 ALL"); !has(u, "* THREAD (1)(2)") {
		t.Fatalf("ORDEREDSUBJECT: %v", u)
	}
	if u := r.ok("se", `SEARCH SUBJECT "WÖRLD"`); !has(u, "* SEARCH 2") {
		t.Fatalf("UTF-8 search: %v", u)
	}
}

// TestIMAPQuota: QUOTA figures (RFC 9208) and [OVERQUOTA] on APPEND/COPY.
func TestIMAPQuota(t *testing.T) {
	s := imapServer(t, true)
	if out, err := s.Stoa("account", "add", "carol@example.test", "--password", "carolpw", "--quota-bytes", "4096", "--quota-messages", "2"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	r := login(t, s, "carol@example.test", "carolpw")
	appendMsg(t, r, "INBOX", fmt.Sprintf(simpleMsg, 1, 1, 1))
	if u := r.ok("q", "GETQUOTAROOT INBOX"); !has(u, `* QUOTA "" (STORAGE 1 4 MESSAGE 1 2)`) {
		t.Fatalf("quota: %v", u)
	}
	appendMsg(t, r, "INBOX", fmt.Sprintf(simpleMsg, 2, 2, 2))
	msg := "Subject: three\r\n\r\nx\r\n"
	r.send(fmt.Sprintf("a APPEND INBOX {%d+}\r\n%s", len(msg), msg))
	if _, st := r.until("a"); !strings.Contains(st, "NO [OVERQUOTA]") {
		t.Fatalf("over quota append: %s", st)
	}
	r.ok("s", "SELECT INBOX")
	if _, st := r.cmd("c", "COPY 1 Archive"); !strings.Contains(st, "NO [OVERQUOTA]") {
		t.Fatalf("over quota copy: %s", st)
	}
}
