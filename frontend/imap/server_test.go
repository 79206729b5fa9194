package imap

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/stoa-mail/stoa/frontend/internal/testtls"
	"github.com/stoa-mail/stoa/indexer"
	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/embedded"
	"github.com/stoa-mail/stoa/storage/failpoint"
	"github.com/stoa-mail/stoa/storage/mailmeta"
)

// testServer runs the server in-process over the embedded engine with one
// account (u@example.test) whose INBOX holds a message per body, logs in,
// selects INBOX and returns a function that sends a command and returns
// its response lines.
func testServer(t *testing.T, s Searcher, bodies ...string) (*Server, func(tag, line string) []string) {
	t.Helper()
	srv, connect := testServerConns(t, s, bodies...)
	return srv, connect()
}

// testServerConns is testServer for tests that need several sessions:
// each call of connect opens one.
func testServerConns(t *testing.T, s Searcher, bodies ...string) (*Server, func() func(tag, line string) []string) {
	t.Helper()
	srv, addr := testListener(t, s, bodies...)
	connect := func() func(tag, line string) []string {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		br := bufio.NewReader(c)
		cmd := func(tag, line string) []string {
			c.Write([]byte(tag + " " + line + "\r\n"))
			var out []string
			for {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				l, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				out = append(out, strings.TrimRight(l, "\r\n"))
				if strings.HasPrefix(l, tag+" ") {
					return out
				}
			}
		}
		br.ReadString('\n')
		cmd("a", "LOGIN u@example.test pw")
		cmd("b", "SELECT INBOX")
		return cmd
	}
	return srv, connect
}

// testListener starts the server (one account, u@example.test / pw, with a
// message per body in INBOX) and returns its address.
func testListener(t *testing.T, s Searcher, bodies ...string) (*Server, string) {
	t.Helper()
	return testListenerConfig(t, Config{AllowInsecureAuth: true}, s, bodies...)
}

// testListenerConfig is testListener with a configuration.
func testListenerConfig(t *testing.T, cfg Config, s Searcher, bodies ...string) (*Server, string) {
	t.Helper()
	eng, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	st := storage.New(eng, storage.Config{PasswordCost: storage.PasswordCost{Time: 1, MemoryK: 64, Threads: 1}})
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	a, err := st.AddAccount(ctx, "u@example.test", "pw", storage.AccountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inbox, _ := st.MailboxByName(ctx, a.ID, "INBOX")
	for _, body := range bodies {
		if _, err := st.Append(ctx, a.ID, inbox.ID, []byte("Subject: s\r\n\r\n"+body+"\r\n"), nil, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	srv := New(st, nil, cfg, nil, prometheus.NewRegistry())
	srv.Searcher = s
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln, false)
	t.Cleanup(func() { srv.Close() })
	return srv, ln.Addr().String()
}

type fakeSearcher struct{ calls int }

func (f *fakeSearcher) Search(ctx context.Context, account string, mailbox uint32, q TextQuery) ([]uint32, bool, error) {
	f.calls++
	if q.Field == "BODY" && q.Value == "indexed" {
		return []uint32{2}, true, nil
	}
	return nil, false, nil // not answerable: the server scans
}

// TestServerSearcher checks that text keys go to the Searcher, with the
// scan as fallback.
func TestServerSearcher(t *testing.T) {
	fs := &fakeSearcher{}
	srv, cmd := testServer(t, fs, "plain words", "indexed words", "more words")
	if got := cmd("c", "SEARCH BODY indexed"); got[0] != "* SEARCH 2" {
		t.Fatalf("indexed: %v", got)
	}
	if got := cmd("d", "SEARCH BODY more"); got[0] != "* SEARCH 3" {
		t.Fatalf("fallback scan: %v", got)
	}
	if got := cmd("e", "SEARCH NOT BODY WORDS"); got[0] != "* SEARCH" {
		t.Fatalf("case-insensitive scan: %v", got)
	}
	if fs.calls != 3 {
		t.Fatalf("searcher calls: %d", fs.calls)
	}
	var m dto.Metric
	srv.m.commands.WithLabelValues("SEARCH").Write(&m)
	if n := m.GetCounter().GetValue(); n != 3 {
		t.Fatalf("commands metric: %v", n)
	}
	srv.m.sessions.Write(&m)
	if n := m.GetGauge().GetValue(); n != 1 {
		t.Fatalf("sessions gauge: %v", n)
	}
}

type setSearcher map[string][]uint32

func (f setSearcher) Search(ctx context.Context, account string, mailbox uint32, q TextQuery) ([]uint32, bool, error) {
	return f[q.Value], true, nil
}

// TestSearchFromIndexOnly: when the index answers every key, SEARCH does
// not read the records; sequence numbers, UID and sequence sets, NOT, OR,
// ESEARCH and a key that needs the records (FLAGGED) must give the same
// answers as ever, in a mailbox where an expunge shifted the numbers.
func TestSearchFromIndexOnly(t *testing.T) {
	_, cmd := testServer(t, setSearcher{"alpha": {1, 3, 5}, "beta": {3, 4, 6}}, "1", "2", "3", "4", "5", "6")
	cmd("c", `UID STORE 2 +FLAGS.SILENT (\Deleted)`)
	cmd("d", "EXPUNGE") // view: UIDs 1 3 4 5 6 = sequence numbers 1-5
	cmd("e", `UID STORE 5 +FLAGS.SILENT (\Flagged)`)
	for _, c := range []struct{ cmd, want string }{
		{"SEARCH BODY alpha", "* SEARCH 1 2 4"},
		{"UID SEARCH BODY alpha", "* SEARCH 1 3 5"},
		{"SEARCH OR BODY alpha BODY beta", "* SEARCH 1 2 3 4 5"},
		{"SEARCH NOT BODY alpha", "* SEARCH 3 5"},
		{"UID SEARCH BODY alpha UID 2:4", "* SEARCH 3"},
		{"SEARCH BODY beta 1:3", "* SEARCH 2 3"},
		{"SEARCH BODY alpha FLAGGED", "* SEARCH 4"},
		{"SEARCH BODY gamma", "* SEARCH"},
		{"UID SEARCH RETURN (COUNT MIN MAX) BODY beta", `* ESEARCH (TAG "q") UID COUNT 3 MIN 3 MAX 6`},
		{"SEARCH RETURN (ALL) BODY beta", `* ESEARCH (TAG "q") ALL 2:3,5`},
	} {
		if got := cmd("q", c.cmd); got[0] != c.want {
			t.Errorf("%s: %q, want %q", c.cmd, got, c.want)
		}
	}
}

// wordSearcher never answers from an index (as when it lags) but matches
// scanned messages with the index's word semantics.
type wordSearcher struct{ prepared int }

func (w *wordSearcher) Search(ctx context.Context, account string, mailbox uint32, q TextQuery) ([]uint32, bool, error) {
	return nil, false, nil
}

func (w *wordSearcher) Prepare(account string, e *storage.Email, meta *mailmeta.Meta, raw []byte) func(TextQuery) bool {
	w.prepared++
	d := indexer.BuildDoc(account, *e, meta, raw, mailmeta.Limits{})
	return func(q TextQuery) bool {
		return q.Field == "BODY" && indexer.Match(d, indexer.Body(q.Value))
	}
}

// TestScanMatchesLikeIndex: while the index cannot answer, the scan uses
// the Matcher, so "voice" does not find "invoice" on either path; without
// a Matcher the scan is a substring search (RFC 9051 §6.4.4).
func TestScanMatchesLikeIndex(t *testing.T) {
	for _, c := range []struct {
		name string
		s    Searcher
		want map[string]string
	}{
		{"matcher", &wordSearcher{}, map[string]string{"voice": "* SEARCH", "INVOICE": "* SEARCH 1", "invoice attached": "* SEARCH 1"}},
		{"substring", nil, map[string]string{"voice": "* SEARCH 1", "INVOICE": "* SEARCH 1", "invoice attached": "* SEARCH 1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, cmd := testServer(t, c.s, "The invoice attached.")
			for q, want := range c.want {
				if got := cmd("q", "SEARCH BODY \""+q+"\""); got[0] != want {
					t.Errorf("SEARCH BODY %q: %q, want %q", q, got, want)
				}
			}
			if w, ok := c.s.(*wordSearcher); ok && w.prepared == 0 {
				t.Error("the scan did not use the Matcher")
			}
		})
	}
}

// TestFetchInOrder: metadata and blobs are read several at a time, yet
// the responses come in sequence order with each message's own data,
// across windows and after an expunge shifted the numbers.
func TestFetchInOrder(t *testing.T) {
	const n = 150 // more than two metadata windows and many blob windows
	bodies := make([]string, n)
	for i := range bodies {
		bodies[i] = fmt.Sprintf("body-%03d", i+1)
	}
	_, cmd := testServer(t, nil, bodies...)
	cmd("c", `UID STORE 10 +FLAGS.SILENT (\Deleted)`)
	cmd("d", "EXPUNGE")
	for _, items := range []string{"(UID ENVELOPE FLAGS)", "(UID BODYSTRUCTURE)", "(UID BODY.PEEK[TEXT])"} {
		got := cmd("f", "FETCH 1:* "+items)
		lines := 0
		for _, l := range got {
			if !strings.HasPrefix(l, "* ") || !strings.Contains(l, "FETCH") {
				continue
			}
			lines++
			var seq, uid int
			if _, err := fmt.Sscanf(l, "* %d FETCH (UID %d", &seq, &uid); err != nil {
				t.Fatalf("%s: %q: %v", items, l, err)
			}
			want := seq
			if seq >= 10 {
				want = seq + 1 // UID 10 is gone
			}
			if seq != lines || uid != want {
				t.Fatalf("%s: response #%d is seq %d UID %d, want seq %d UID %d", items, lines, seq, uid, lines, want)
			}
		}
		if lines != n-1 {
			t.Fatalf("%s: %d responses, want %d", items, lines, n-1)
		}
	}
	// Literal bodies: each message's own text, in order.
	got := strings.Join(cmd("g", "UID FETCH 1:* (BODY.PEEK[TEXT])"), "\n")
	last := -1
	for i := 1; i <= n; i++ {
		k := strings.Index(got, fmt.Sprintf("body-%03d", i))
		if i == 10 {
			if k >= 0 {
				t.Fatal("expunged message fetched")
			}
			continue
		}
		if k < 0 || k < last {
			t.Fatalf("body-%03d at %d (previous at %d)", i, k, last)
		}
		last = k
	}
}

// TestSearchPendingExpunge: messages another session expunged, which this
// session has not been told of yet (no EXPUNGE during SEARCH, RFC 9051
// §7.5.1), are not search results even for keys the index answers alone
// (NOT, ALL); sequence numbers stay those of the session's view.
func TestSearchPendingExpunge(t *testing.T) {
	_, connect := testServerConns(t, setSearcher{"apple": {1, 2, 3, 4}}, "1", "2", "3", "4")
	a, b := connect(), connect()
	b("c", `STORE 2 +FLAGS.SILENT (\Deleted)`)
	b("d", "EXPUNGE")
	for _, c := range []struct{ cmd, want string }{
		{"SEARCH NOT TEXT apple", "* SEARCH"},
		{"SEARCH ALL", "* SEARCH 1 3 4"},
		{"SEARCH TEXT apple", "* SEARCH 1 3 4"},
		{"SEARCH RETURN (COUNT) ALL", `* ESEARCH (TAG "q") COUNT 3`},
	} {
		if got := a("q", c.cmd); got[0] != c.want {
			t.Errorf("%s: %q, want %q", c.cmd, got, c.want)
		}
	}
}

// TestSearchResSaved: RFC 5182 — SELECT/EXAMINE/UNSELECT reset $, and
// SAVE with MIN and/or MAX (but not ALL or COUNT) saves only those.
func TestSearchResSaved(t *testing.T) {
	_, cmd := testServer(t, setSearcher{"apple": {1, 2, 3, 4}}, "1", "2", "3", "4")
	for _, c := range []struct{ ret, want string }{
		{"(SAVE MIN)", "* SEARCH 1"},
		{"(SAVE MAX)", "* SEARCH 4"},
		{"(SAVE MIN MAX)", "* SEARCH 1 4"},
		{"(SAVE MIN COUNT)", "* SEARCH 1 2 3 4"},
		{"(SAVE)", "* SEARCH 1 2 3 4"},
	} {
		cmd("s", "UID SEARCH RETURN "+c.ret+" TEXT apple")
		if got := cmd("q", "UID SEARCH UID $"); got[0] != c.want {
			t.Errorf("after RETURN %s: $ is %q, want %q", c.ret, got, c.want)
		}
	}
	for _, reset := range []string{"SELECT INBOX", "EXAMINE INBOX", "UNSELECT"} {
		cmd("s", "UID SEARCH RETURN (SAVE) TEXT apple")
		cmd("r", reset)
		if reset == "UNSELECT" {
			cmd("r2", "SELECT INBOX")
		}
		if got := cmd("q", "UID SEARCH UID $"); got[0] != "* SEARCH" {
			t.Errorf("after %s: $ is %q, want empty", reset, got)
		}
	}
}

// TestSearchLimits: an overlong text key or too many text keys get NO
// [LIMIT] (a 1 MB phrase exhausted OpenSearch's heap), and the session
// goes on.
func TestSearchLimits(t *testing.T) {
	_, cmd := testServer(t, setSearcher{"apple": {1}}, "apple")
	long := strings.Repeat("apple ", 200) // 1,200 bytes
	if got := cmd("l", fmt.Sprintf("SEARCH TEXT {%d+}\r\n%s", len(long), long)); !strings.HasPrefix(got[len(got)-1], "l NO [LIMIT]") {
		t.Errorf("long key: %q", got)
	}
	many := strings.Repeat("TEXT apple ", 65)
	if got := cmd("m", "SEARCH "+many); !strings.HasPrefix(got[len(got)-1], "m NO [LIMIT]") {
		t.Errorf("65 text keys: %q", got)
	}
	if got := cmd("s", "SEARCH "+strings.Repeat("TEXT apple ", 64)); got[0] != "* SEARCH 1" {
		t.Errorf("64 text keys: %q", got)
	}
	if got := cmd("o", "SEARCH TEXT apple"); got[0] != "* SEARCH 1" {
		t.Errorf("after the refusals: %q", got)
	}
}

// Before login a literal may not exceed max_literal_before_login: an
// unauthenticated client cannot make the server hold max_literal bytes.
// After login the full limit applies.
func TestLiteralLimitBeforeLogin(t *testing.T) {
	_, addr := testListener(t, nil)
	c, read := rawConn(t, addr)
	read("* OK")
	c.Write([]byte("a LOGIN {100000}\r\n"))
	if l := read("a "); !strings.HasPrefix(l, "a NO [TOOBIG]") {
		t.Fatalf("synchronizing literal before login: %q", l)
	}
	// A non-synchronizing one is read, thrown away, and the session stays in step.
	c.Write([]byte("b LOGIN {70000+}\r\n" + strings.Repeat("x", 70000) + " pw\r\n"))
	if l := read("b "); !strings.HasPrefix(l, "b NO [TOOBIG]") {
		t.Fatalf("non-synchronizing literal before login: %q", l)
	}
	c.Write([]byte("c LOGIN u@example.test pw\r\n"))
	if l := read("c "); !strings.HasPrefix(l, "c OK") {
		t.Fatalf("login: %q", l)
	}
	c.Write([]byte("d APPEND INBOX {100000}\r\n"))
	if l := read(""); !strings.HasPrefix(l, "+") {
		t.Fatalf("literal after login: %q", l)
	}
}

// SEARCH edge cases from an adversarial review.
func TestSearchProtocolEdges(t *testing.T) {
	_, cmd := testServer(t, nil, "hello world", "other words", "hello again", "bye")
	last := func(lines []string) string { return lines[len(lines)-1] }
	untagged := func(lines []string) string {
		for _, l := range lines {
			if strings.HasPrefix(l, "* ") {
				return l
			}
		}
		return ""
	}
	// RFC 5182 §2.1: a SEARCH with SAVE that fails empties "$".
	cmd("s1", "SEARCH RETURN (SAVE) BODY hello")
	if got := untagged(cmd("s2", "SEARCH $")); got != "* SEARCH 1 3" {
		t.Fatalf("$ after SAVE: %q", got)
	}
	if got := last(cmd("s3", "SEARCH RETURN (SAVE) CHARSET KOI8-R TEXT foo")); !strings.HasPrefix(got, "s3 NO [BADCHARSET") {
		t.Fatalf("bad charset: %q", got)
	}
	if got := untagged(cmd("s4", "SEARCH $")); got != "* SEARCH" {
		t.Errorf("$ after a failed SAVE: %q, want empty", got)
	}
	cmd("s5", "SEARCH RETURN (SAVE) BODY hello")
	if got := last(cmd("s6", "SEARCH RETURN (SAVE) NOSUCHKEY")); !strings.HasPrefix(got, "s6 BAD") {
		t.Fatalf("bad key: %q", got)
	}
	if got := untagged(cmd("s7", "SEARCH $")); got != "* SEARCH" {
		t.Errorf("$ after a SAVE that was BAD: %q, want empty", got)
	}
	// RFC 5032 §4: nz-number of seconds; no overflow into "every message".
	for _, k := range []string{"YOUNGER 0", "YOUNGER 10000000000", "OLDER 9223372036854775807"} {
		if got := last(cmd("y", "SEARCH "+k)); !strings.HasPrefix(got, "y BAD") {
			t.Errorf("SEARCH %s: %q, want BAD", k, got)
		}
	}
	if got := untagged(cmd("y2", "SEARCH YOUNGER 4294967295")); got != "* SEARCH 1 2 3 4" {
		t.Errorf("YOUNGER 4294967295: %q", got)
	}
	// Each return option at most once (RFC 4731 §3.1).
	if got := untagged(cmd("m", "SEARCH RETURN (MIN MIN) ALL")); got != `* ESEARCH (TAG "m") MIN 1` {
		t.Errorf("RETURN (MIN MIN): %q", got)
	}
	// RFC 7162 §3.1.5: with only MIN, the MODSEQ of that message.
	cmd("f", "STORE 4 +FLAGS (\\Flagged)")
	all := untagged(cmd("g", "SEARCH RETURN (MAX) MODSEQ 1"))
	min := untagged(cmd("h", "SEARCH RETURN (MIN) MODSEQ 1"))
	if !strings.HasPrefix(all, `* ESEARCH (TAG "g") MAX 4 MODSEQ `) || !strings.HasPrefix(min, `* ESEARCH (TAG "h") MIN 1 MODSEQ `) ||
		strings.Fields(all)[7] == strings.Fields(min)[7] {
		t.Errorf("MODSEQ of MIN and of MAX: %q, %q", min, all)
	}
	// literal8 is for APPEND only (RFC 3516 §4.3).
	if got := last(cmd("l", "SEARCH TEXT ~{2+}\r\nab")); !strings.HasPrefix(got, "l BAD") {
		t.Errorf("literal8 search string: %q", got)
	}
	// Words across all text keys are bounded (max_search_terms, 256).
	phrase := strings.TrimSpace(strings.Repeat("hello ", 85))
	if got := last(cmd("p1", `SEARCH NOT TEXT "`+phrase+`" NOT TEXT "`+phrase+`"`)); !strings.HasPrefix(got, "p1 OK") {
		t.Errorf("170 words: %q", got)
	}
	if got := last(cmd("p2", `SEARCH NOT TEXT "`+phrase+`" NOT TEXT "`+phrase+`" BODY "`+phrase+`" FROM 日本語`)); !strings.HasPrefix(got, "p2 NO [LIMIT]") {
		t.Errorf("258 words: %q", got)
	}
	// A sequence set of 32,000 ranges is one binary search per message.
	if got := untagged(cmd("n", "SEARCH RETURN (COUNT) "+strings.Repeat("1,", 32000)+"3:*")); got != `* ESEARCH (TAG "n") COUNT 3` {
		t.Errorf("long sequence set: %q", got)
	}
}

// A command with a literal sent during IDLE instead of DONE ends the
// session: its literal's bytes must not run as commands.
func TestIdleLiteralInsteadOfDone(t *testing.T) {
	_, addr := testListener(t, nil, "one")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	c.Write([]byte("a LOGIN u@example.test pw\r\nb SELECT INBOX\r\nc IDLE\r\n"))
	var got []string
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("before IDLE: %v %q", err, got)
		}
		got = append(got, l)
		if strings.HasPrefix(l, "+") {
			break
		}
	}
	c.Write([]byte("u2 UID SEARCH TEXT {10+}\r\nn1 NOOP\r\n\r\n"))
	got = nil
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			break // closed
		}
		got = append(got, l)
	}
	all := strings.Join(got, "")
	if !strings.Contains(all, "* BYE") || strings.Contains(all, "n1 ") {
		t.Fatalf("after a literal in IDLE: %q", all)
	}
}

// Without an index the scan matches decoded header values (RFC 2047) and
// attachment names, as the index does.
func TestScanDecodesHeadersAndAttachmentNames(t *testing.T) {
	_, cmd := testServer(t, nil)
	msg := "From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <j@example.de>\r\n" +
		"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" +
		"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"final-report.pdf\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0K\r\n--b--\r\n"
	cmd("ap", fmt.Sprintf("APPEND INBOX {%d+}\r\n%s", len(msg), msg))
	cmd("nop", "NOOP")
	for q, want := range map[string]string{
		"HEADER Subject Köln":        "* SEARCH 1",
		"TEXT Jürgen":                "* SEARCH 1",
		`HEADER Subject "=?utf-8?q"`: "* SEARCH",
		"BODY final-report.pdf":      "* SEARCH 1",
		"TEXT final-report":          "* SEARCH 1",
		"FROM müller":                "* SEARCH 1",
	} {
		got := cmd("s", "SEARCH CHARSET UTF-8 "+q)
		if got[0] != want {
			t.Errorf("SEARCH %s: %q, want %q", q, got[0], want)
		}
	}
}

// blockingSearcher answers when the command's context ends.
type blockingSearcher struct{}

func (blockingSearcher) Search(ctx context.Context, account string, mailbox uint32, q TextQuery) ([]uint32, bool, error) {
	<-ctx.Done()
	return nil, false, ctx.Err()
}

// A command that works longer than command_timeout ends with NO [LIMIT],
// and the session goes on.
func TestCommandTimeout(t *testing.T) {
	_, addr := testListenerConfig(t, Config{AllowInsecureAuth: true, CommandTimeout: 300 * time.Millisecond}, blockingSearcher{}, "one", "two")
	c, read := rawConn(t, addr)
	tagged := func(tag string) string { t.Helper(); return read(tag + " ") }
	c.Write([]byte("a LOGIN u@example.test pw\r\nb SELECT INBOX\r\n"))
	tagged("b")
	c.Write([]byte("s SEARCH BODY one\r\n"))
	if l := tagged("s"); !strings.HasPrefix(l, "s NO [LIMIT]") {
		t.Fatalf("slow search: %q", l)
	}
	c.Write([]byte("n NOOP\r\n"))
	if l := tagged("n"); !strings.HasPrefix(l, "n OK") {
		t.Fatalf("after the timeout: %q", l)
	}
}

// rawConn dials addr; read returns the next line starting with prefix
// (skipping others), failing the test after 10 s.
func rawConn(t *testing.T, addr string) (net.Conn, func(prefix string) string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	br := bufio.NewReader(c)
	return c, func(prefix string) string {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %q: %v", prefix, err)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
	}
}

// Connections over imap.max_conns or imap.max_conns_per_ip get BYE
// [UNAVAILABLE] (RFC 9051 §7.1.5) and the place is freed at logout.
func TestConnLimits(t *testing.T) {
	for _, cfg := range []Config{{AllowInsecureAuth: true, MaxConnsPerIP: 1}, {AllowInsecureAuth: true, MaxConns: 1}} {
		srv, addr := testListenerConfig(t, cfg, nil)
		c, read := rawConn(t, addr)
		read("* OK")
		_, read2 := rawConn(t, addr)
		if l := read2("* "); !strings.HasPrefix(l, "* BYE [UNAVAILABLE]") {
			t.Fatalf("%+v: second connection: %q", cfg, l)
		}
		c.Write([]byte("a LOGOUT\r\n"))
		read("a OK")
		deadline := time.Now().Add(10 * time.Second)
		for srv.conns.Len() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		_, read3 := rawConn(t, addr)
		if l := read3("* "); !strings.HasPrefix(l, "* OK") {
			t.Fatalf("%+v: after logout: %q", cfg, l)
		}
	}
}

// A FETCH stops at imap.command_timeout too, though the embedded engine's
// reads do not look at the deadline: here it has passed before the first
// message is read. (BODY.PEEK: setting \Seen is a write, which would stop
// at the deadline by itself.)
func TestFetchCommandTimeout(t *testing.T) {
	_, addr := testListenerConfig(t, Config{AllowInsecureAuth: true, CommandTimeout: time.Nanosecond}, nil, "one", "two", "three")
	c, read := rawConn(t, addr)
	tagged := func(tag string) string { t.Helper(); return read(tag + " ") }
	c.Write([]byte("a LOGIN u@example.test pw\r\nb SELECT INBOX\r\n"))
	if l := tagged("b"); !strings.HasPrefix(l, "b OK") {
		t.Fatalf("select: %q", l)
	}
	c.Write([]byte("f FETCH 1:* (BODY.PEEK[])\r\n"))
	if l := read(""); !strings.HasPrefix(l, "f NO [LIMIT]") {
		t.Fatalf("fetch past the deadline: %q", l)
	}
}

// On port 993 a client that never sends its TLS hello is closed after
// imap.tls_handshake_timeout (it held its place until shutdown), and one
// over a limit is closed without plain text (its client expects a hello).
func TestImplicitTLSHandshakeAndRefusal(t *testing.T) {
	eng, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	st := storage.New(eng, storage.Config{PasswordCost: storage.PasswordCost{Time: 1, MemoryK: 64, Threads: 1}})
	t.Cleanup(func() { st.Close() })
	srv := New(st, testtls.Config(t, "imap.example.test"),
		Config{MaxConnsPerIP: 1, TLSHandshakeTimeout: 2 * time.Second}, nil, prometheus.NewRegistry())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln, true)
	t.Cleanup(func() { srv.Close() })
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	for srv.conns.Len() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	over, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	over.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(over); len(b) > 0 || err != nil {
		t.Fatalf("refused on implicit TLS: read %q, %v (want a close, nothing written)", b, err)
	}
	var m dto.Metric
	srv.m.refused.WithLabelValues("per_ip").Write(&m)
	if n := m.GetCounter().GetValue(); n != 1 {
		t.Fatalf("refused per_ip = %v, want 1", n)
	}
	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(silent); len(b) > 0 || err != nil {
		t.Fatalf("client without TLS hello: read %q, %v (want a close after the handshake timeout)", b, err)
	}
	// Its place is free again: a real TLS client is served.
	for srv.conns.Len() > 0 {
		time.Sleep(5 * time.Millisecond)
	}
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if l, err := bufio.NewReader(c).ReadString('\n'); !strings.HasPrefix(l, "* OK") {
		t.Fatalf("greeting over TLS: %q, %v", l, err)
	}
}

// A STORE (or a FETCH that sets \Seen) whose change is made but whose
// command then ends in NO [LIMIT] has not reported the change: the next
// command's updates do (it was left out as "own" before).
func TestChangeReportedAfterTimeout(t *testing.T) {
	_, addr := testListenerConfig(t, Config{AllowInsecureAuth: true, CommandTimeout: 300 * time.Millisecond}, nil, "one", "two", "three")
	c, read := rawConn(t, addr)
	c.Write([]byte("a LOGIN u@example.test pw\r\nb SELECT INBOX\r\n"))
	read("b OK")
	for _, tc := range []struct{ cmd, flag string }{
		{"STORE 1:* +FLAGS (kwA)", "kwA"},
		{"FETCH 1:* BODY[TEXT]", `\Seen`},
	} {
		// The change commits, then the command's time runs out.
		failpoint.EnableFunc(embedded.FPAfterCommit, func() { time.Sleep(400 * time.Millisecond) })
		c.Write([]byte("s " + tc.cmd + "\r\n"))
		l := read("")
		failpoint.Disable(embedded.FPAfterCommit)
		if !strings.HasPrefix(l, "s NO [LIMIT]") {
			t.Fatalf("%s: %q, want s NO [LIMIT] and nothing before it", tc.cmd, l)
		}
		c.Write([]byte("n NOOP\r\n"))
		reported := 0
		for {
			l := read("")
			if strings.HasPrefix(l, "n ") {
				break
			}
			if strings.Contains(l, " FETCH (") && strings.Contains(l, tc.flag) {
				reported++
			}
		}
		if reported != 3 {
			t.Fatalf("%s: %d of 3 flag changes reported after NO [LIMIT]", tc.cmd, reported)
		}
	}
}
