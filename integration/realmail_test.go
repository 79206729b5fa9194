package integration

// TestRealMail is issue 8's proof on real mail: a deterministic sample of
// shared/corpus goes in over SMTP (MX) and through `stoa import` (mbox),
// comes back byte for byte over IMAP, its BODYSTRUCTURE and ENVELOPE agree
// with Python's email package, and IMAP SEARCH finds words taken from it,
// at once after delivery and after the indexer caught up, without leaking
// across accounts. It runs on every back end: the zero-configuration
// server (embedded engine, Bleve) and Cassandra + OpenSearch with the
// indexer as a separate process.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/charset"
	"github.com/gocql/gocql"

	"github.com/stoa-mail/stoa/frontend/smtp/testdns"
	"github.com/stoa-mail/stoa/indexer"
	"github.com/stoa-mail/stoa/integration/harness"
	"github.com/stoa-mail/stoa/integration/testenv"
)

const (
	rmAccountA = "alice@example.test" // receives the SMTP sample
	rmAccountB = "bob@example.test"   // receives the mbox import
	rmPassword = "realmail-pw"
	rmHelo     = "mail.remote.example"
	rmSender   = "corpus@remote.example"
)

// rmMsg is one corpus message as sent: line ends normalised to CRLF.
type rmMsg struct {
	name string // corpus path
	raw  []byte
	hash [32]byte
}

func newRMMsg(name string, b []byte) rmMsg {
	// An mbox envelope line ("From sender date", no colon in the first word)
	// is not part of the message.
	if bytes.HasPrefix(b, []byte("From ")) {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	b = rmToCRLF(b)
	return rmMsg{name: name, raw: b, hash: sha256.Sum256(b)}
}

// rmToCRLF turns every bare LF into CRLF (SMTP requires CRLF, RFC 5321
// §2.3.8) and ends the message with CRLF. Bare CR is left alone: the
// server refuses it, and the test counts that.
func rmToCRLF(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/20+2)
	for i := 0; i < len(b); i++ {
		if b[i] == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, b[i])
	}
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		out = append(out, '\r', '\n')
	}
	return out
}

func rmHasBareCR(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] == '\r' && (i+1 >= len(b) || b[i+1] != '\n') {
			return true
		}
	}
	return false
}

// rmCorpus is the parsed corpus, grouped by source folder; every group is
// sorted by name, so that sampling with a fixed seed is deterministic.
type rmCorpus struct {
	groups map[string][]rmMsg // "real/<source>", "torture/<source>", "spamassassin/<set>"
}

var (
	rmCorpusOnce sync.Once
	rmCorpusVal  *rmCorpus
	rmCorpusErr  error
)

func loadRMCorpus(dir string) (*rmCorpus, error) {
	rmCorpusOnce.Do(func() { rmCorpusVal, rmCorpusErr = readRMCorpus(dir) })
	return rmCorpusVal, rmCorpusErr
}

func readRMCorpus(dir string) (*rmCorpus, error) {
	c := &rmCorpus{groups: map[string][]rmMsg{}}
	// real/: one .eml per message in a tar.gz.
	f, err := os.Open(filepath.Join(dir, "real", "real-messages.tar.gz"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("real-messages.tar.gz: %w", err)
		}
		if h.Typeflag != tar.TypeReg || !strings.HasSuffix(h.Name, ".eml") {
			continue
		}
		parts := strings.Split(h.Name, "/")
		if len(parts) < 3 {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		g := "real/" + parts[len(parts)-2]
		c.groups[g] = append(c.groups[g], newRMMsg("real/"+strings.Join(parts[len(parts)-2:], "/"), b))
	}
	// torture/: individual files.
	err = filepath.WalkDir(filepath.Join(dir, "torture"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".eml") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		g := filepath.Dir(rel)
		c.groups[g] = append(c.groups[g], newRMMsg(rel, b))
		return nil
	})
	if err != nil {
		return nil, err
	}
	// spamassassin/: every 10th entry of each tarball, 24 at most
	// (decompressing is the slow part, so reading stops there; the tar
	// order is fixed, so this is deterministic).
	sets, _ := filepath.Glob(filepath.Join(dir, "spamassassin", "*.tar.bz2"))
	sort.Strings(sets)
	for _, p := range sets {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(bzip2.NewReader(bufio.NewReaderSize(f, 1<<20)))
		set := strings.TrimSuffix(filepath.Base(p), ".tar.bz2")
		n := 0
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			} else if err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			if h.Typeflag != tar.TypeReg {
				continue
			}
			n++
			if n%10 != 0 {
				continue
			}
			if n > 240 {
				break
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				f.Close()
				return nil, err
			}
			g := "spamassassin/" + set
			c.groups[g] = append(c.groups[g], newRMMsg(g+"/"+filepath.Base(h.Name), b))
		}
		f.Close()
	}
	for g := range c.groups {
		slices.SortFunc(c.groups[g], func(a, b rmMsg) int { return strings.Compare(a.name, b.name) })
	}
	return c, nil
}

// rmSamples picks the SMTP sample (account A) and the disjoint mbox sample
// (account B) with a fixed seed; duplicates (same bytes) are left out.
func (c *rmCorpus) samples() (smtpS, mboxS []rmMsg) {
	rng := rand.New(rand.NewPCG(8, 2026))
	seen := map[[32]byte]bool{}
	quota := func(g string) (a, b int) {
		switch {
		case g == "real/linux-erofs-list":
			return 90, 40
		case g == "real/sisimai-bounces":
			return 60, 30
		case g == "real/notmuch-list":
			return 50, 20
		case strings.HasPrefix(g, "real/"):
			return 20, 10
		case strings.HasPrefix(g, "torture/"):
			return 7, 3
		}
		return 12, 8 // spamassassin sets
	}
	var names []string
	for g := range c.groups {
		names = append(names, g)
	}
	sort.Strings(names)
	for _, g := range names {
		qa, qb := quota(g)
		msgs := c.groups[g]
		for _, i := range rng.Perm(len(msgs)) {
			m := msgs[i]
			if seen[m.hash] {
				continue
			}
			switch {
			case qa > 0:
				qa--
				smtpS = append(smtpS, m)
			case qb > 0 && !rmHasBareCR(m.raw):
				// An mbox stores LF line ends; a bare CR cannot round-trip.
				qb--
				mboxS = append(mboxS, m)
			default:
				continue
			}
			seen[m.hash] = true
		}
	}
	// mboxrd quoting must round-trip: body lines that start with "From "
	// and ">From " (RFC 4155 and the mboxrd convention).
	mboxS = append(mboxS,
		newRMMsg("synthetic/from-lines", []byte("From: Carol <carol@remote.example>\nTo: bob@example.test\nSubject: From lines in the body\nMessage-ID: <from-lines@remote.example>\n\nHello,\nFrom here on, everything is quoted.\n>From a quoted line.\n>>From a doubly quoted line.\nFrom the end.\n")),
		newRMMsg("synthetic/from-at-end", []byte("From: Dave <dave@remote.example>\nSubject: trailing blank lines\n\nFrom me\n\n\n")),
	)
	return smtpS, mboxS
}

// rmBreakdown counts messages by top folder: "real 220, torture 112...".
func rmBreakdown(ms []rmMsg) string {
	n := map[string]int{}
	for _, m := range ms {
		top, _, _ := strings.Cut(m.name, "/")
		n[top]++
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(n)) {
		out = append(out, fmt.Sprintf("%s %d", k, n[k]))
	}
	return strings.Join(out, ", ")
}

// rmBackend is one storage/index set-up.
type rmBackend struct {
	name string
	// start starts the server (and any sidecar) with accounts A and B.
	start func(t *testing.T, env []string) (*harness.Server, rmIndex)
}

// rmIndex says where the index is written.
type rmIndex struct {
	admin         string // admin address of the process running the indexer role
	osURL, prefix string // OpenSearch, when used
}

func TestRealMail(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end corpus test; run without -short")
	}
	dir := harness.Corpus(t)
	py := harness.Python(t)
	t0 := time.Now()
	c, err := loadRMCorpus(dir)
	if err != nil {
		t.Fatalf("reading the corpus: %v", err)
	}
	smtpS, mboxS := c.samples()
	t.Logf("corpus read in %v: SMTP sample %d messages (%s), mbox sample %d (%s)", time.Since(t0).Round(time.Millisecond),
		len(smtpS), rmBreakdown(smtpS), len(mboxS), rmBreakdown(mboxS))

	backends := []rmBackend{
		{name: "embedded", start: func(t *testing.T, env []string) (*harness.Server, rmIndex) {
			s := harness.Start(t, harness.Options{Accounts: map[string]string{rmAccountA: rmPassword, rmAccountB: rmPassword}, Env: env})
			return s, rmIndex{admin: s.Addr["admin"]}
		}},
		{name: "cassandra+opensearch", start: rmStartCassandraOpenSearch},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			rmRun(t, b, py, smtpS, mboxS)
		})
	}
}

// rmStartCassandraOpenSearch migrates a fresh keyspace, starts the server
// on it with the OpenSearch index, and `stoa indexer` beside it.
func rmStartCassandraOpenSearch(t *testing.T, env []string) (*harness.Server, rmIndex) {
	cass := testenv.Cassandra(t)
	osURL := testenv.OpenSearch(t)
	root := harness.RepoRoot()
	var missing []string
	for _, p := range []string{"storage/cassandra", "cmd/stoa/open_cassandra.go", "indexer/opensearch", "cmd/stoa/role_indexer.go"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("the Cassandra + OpenSearch back end is not there yet: missing %s", strings.Join(missing, ", "))
	}
	bin := harness.Binary(t)
	suffix := randomSuffix(t)
	ks := "stoa_e2e_" + suffix
	prefix := "stoa-e2e-" + suffix
	env = append(env,
		"STOA_STORAGE_ENGINE=cassandra",
		"STOA_CASSANDRA_HOSTS="+cass,
		"STOA_CASSANDRA_KEYSPACE="+ks,
		"STOA_CASSANDRA_SIMPLE_REPLICATION=1",
		"STOA_INDEX_BACKEND=opensearch",
		"STOA_INDEX_OPENSEARCH_URL="+osURL,
		"STOA_INDEX_INDEX_PREFIX="+prefix,
	)
	// Help must list the commands this back end needs.
	help, _ := exec.Command(bin, "help").CombinedOutput()
	for _, cmd := range []string{"migrate", "indexer"} {
		if !regexp.MustCompile(`(?m)^\s*(stoa\s+)?` + cmd + `\b`).Match(help) {
			t.Fatalf("`stoa %s` is not in `stoa help`; the Cassandra + OpenSearch back end needs it:\n%s", cmd, help)
		}
	}
	rmDropKeyspace(t, cass, ks)
	rmDropIndices(t, osURL, prefix)
	// `stoa migrate` before anything opens the keyspace (the harness adds
	// accounts before it starts the server).
	mig := exec.Command(bin, "migrate")
	mig.Env = append(append(os.Environ(), env...), "STOA_SERVER_DATA_DIR="+t.TempDir())
	if out, err := mig.CombinedOutput(); err != nil {
		t.Fatalf("stoa migrate (keyspace %s): %v\n%s", ks, err, out)
	} else {
		t.Logf("stoa migrate: %s", strings.TrimSpace(string(out)))
	}
	s := harness.Start(t, harness.Options{
		Accounts: map[string]string{rmAccountA: rmPassword, rmAccountB: rmPassword},
		Roles:    []string{"smtp", "imap", "http"},
		Env:      env,
	})
	// The indexer sidecar: same configuration, its own data folder (control
	// socket, certificate) and admin port.
	admin := harness.FreePort(t)
	ix := exec.Command(bin, "--config", s.Config, "indexer")
	ix.Env = append(append([]string{}, s.Env...), "STOA_SERVER_DATA_DIR="+t.TempDir(),
		"STOA_HTTP_ADMIN_LISTEN="+admin, "STOA_HTTP_LISTEN="+harness.FreePort(t))
	var log bytes.Buffer
	var logMu sync.Mutex
	ix.Stdout = &rmLockedWriter{w: &log, mu: &logMu}
	ix.Stderr = ix.Stdout
	if err := ix.Start(); err != nil {
		t.Fatalf("stoa indexer: %v", err)
	}
	done := make(chan struct{})
	go func() { ix.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			ix.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				ix.Process.Kill()
				<-done
			}
		}
		if t.Failed() {
			logMu.Lock()
			t.Logf("stoa indexer log:\n%s", log.String())
			logMu.Unlock()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			logMu.Lock()
			defer logMu.Unlock()
			t.Fatalf("stoa indexer exited during start-up:\n%s", log.String())
		default:
		}
		if resp, err := http.Get("http://" + admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("stoa indexer not ready after 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return s, rmIndex{admin: admin, osURL: osURL, prefix: prefix}
}

type rmLockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *rmLockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func rmDropKeyspace(t *testing.T, addr, ks string) {
	t.Cleanup(func() {
		cluster := gocql.NewCluster(strings.Split(addr, ",")...)
		cluster.Timeout = 30 * time.Second
		cluster.ConnectTimeout = 10 * time.Second
		s, err := cluster.CreateSession()
		if err != nil {
			t.Logf("drop keyspace %s: %v", ks, err)
			return
		}
		defer s.Close()
		if err := s.Query("DROP KEYSPACE IF EXISTS " + ks).Exec(); err != nil {
			t.Logf("drop keyspace %s: %v", ks, err)
		}
	})
}

func rmDropIndices(t *testing.T, url, prefix string) {
	t.Cleanup(func() {
		for _, p := range []string{"/_index_template/" + prefix + "-mail", "/" + prefix + "-mail*"} {
			req, _ := http.NewRequest("DELETE", url+p, nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	})
}

// rmRefusal is a message the SMTP server refused.
type rmRefusal struct {
	name string
	code int
	text string
}

func rmRun(t *testing.T, b rmBackend, py string, smtpS, mboxS []rmMsg) {
	start := time.Now()
	dns, err := testdns.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dns.Close() })
	dns.SetTXT("remote.example", "v=spf1 ip4:127.0.0.1 -all")
	env := []string{"STOA_SMTP_DNS_RESOLVER=" + dns.Addr, "STOA_SMTP_DNS_TIMEOUT=3s", "STOA_IMAP_POLL_INTERVAL=200ms",
		"STOA_INDEX_POLL_INTERVAL=500ms", "STOA_SMTP_MAX_CONNS_PER_IP=100", "STOA_IMAP_MAX_CONNS_PER_IP=100"}
	s, index := b.start(t, env)
	t.Logf("[%s] server up in %v", b.name, time.Since(start).Round(time.Millisecond))

	// 1. SMTP delivery to account A.
	t1 := time.Now()
	delivered, refusals := rmDeliver(t, s.Addr["smtp"], smtpS)
	smtpTime := time.Since(t1)
	t.Logf("[%s] SMTP: %d of %d messages delivered in %v (%.1f msg/s), %d refused",
		b.name, len(delivered), len(smtpS), smtpTime.Round(time.Millisecond), float64(len(delivered))/smtpTime.Seconds(), len(refusals))
	for _, r := range refusals {
		t.Logf("[%s]   refused %s: %d %s", b.name, r.name, r.code, r.text)
		if r.code < 500 || r.code > 599 || strings.TrimSpace(r.text) == "" {
			t.Errorf("refusal of %s is not a 5xx reply with a reason: %d %q", r.name, r.code, r.text)
		}
	}
	if len(refusals)*100 >= 5*len(smtpS) {
		t.Errorf("%d of %d messages refused (>= 5%%)", len(refusals), len(smtpS))
	}
	if len(delivered) == 0 {
		t.Fatal("nothing delivered")
	}

	// Search at once, before the indexer had time: a fresh message with
	// unique words, and words of the last messages delivered.
	fresh, freshWords := rmFreshMessage(t)
	tf := time.Now()
	if code, text, err := rmSendOne(s.Addr["smtp"], fresh); err != nil || code != 250 {
		t.Fatalf("fresh message: %d %s %v", code, text, err)
	}
	ia := rmIMAPLogin(t, s.Addr["imaps"], rmAccountA)
	var lat []time.Duration
	freshUIDs := map[string][]uint32{}
	for _, w := range freshWords {
		t2 := time.Now()
		uids := ia.search(w.key, w.word)
		lat = append(lat, time.Since(t2))
		freshUIDs[w.key+" "+w.word] = uids
		if len(uids) != 1 {
			t.Errorf("[%s] right after delivery: SEARCH %s %q found UIDs %v, want the one fresh message", b.name, w.key, w.word, uids)
		}
	}
	t.Logf("[%s] fresh message found by %d searches, %v after its 250 reply (search latencies %v)",
		b.name, len(freshWords), time.Since(tf).Round(time.Millisecond), rmRound(lat))
	ia.logout()

	// 2. Import an mbox into account B.
	mboxPath := filepath.Join(t.TempDir(), "sample.mbox")
	if err := os.WriteFile(mboxPath, rmMboxrd(mboxS), 0o644); err != nil {
		t.Fatal(err)
	}
	t3 := time.Now()
	out, err := s.Stoa("import", "--account", rmAccountB, "--quiet", mboxPath)
	if err != nil {
		t.Fatalf("stoa import: %v\n%s", err, out)
	}
	t.Logf("[%s] import of %d messages in %v: %s", b.name, len(mboxS), time.Since(t3).Round(time.Millisecond), strings.TrimSpace(out))

	// 3. Read everything back.
	t4 := time.Now()
	gotA := rmFetchAll(t, s.Addr["imaps"], rmAccountA)
	gotB := rmFetchAll(t, s.Addr["imaps"], rmAccountB)
	t.Logf("[%s] fetched %d + %d messages over IMAP in %v", b.name, len(gotA), len(gotB), time.Since(t4).Round(time.Millisecond))
	uidA := rmCheckSMTP(t, b.name, gotA, delivered, fresh)
	uidB := rmCheckImport(t, b.name, gotB, mboxS)

	// 4. BODYSTRUCTURE and ENVELOPE against Python.
	rmCompareStructure(t, b.name, s.Addr["imaps"], py, delivered, uidA, gotA)

	// 5. Search after the indexer caught up.
	rmWaitIndexer(t, b.name, index, len(gotA)+len(gotB))
	rmSearchAll(t, b.name, s.Addr["imaps"], py, delivered, uidA, mboxS, uidB)
	t.Logf("[%s] total %v", b.name, time.Since(start).Round(time.Millisecond))
}

// --- SMTP ---

type rmSMTPConn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func rmDialSMTP(addr string) (*rmSMTPConn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	sc := &rmSMTPConn{c: c, r: bufio.NewReader(c), w: bufio.NewWriterSize(c, 64<<10)}
	if code, text, err := sc.reply(); err != nil || code != 220 {
		c.Close()
		return nil, fmt.Errorf("greeting %d %s %v", code, text, err)
	}
	if code, text, err := sc.cmd("EHLO " + rmHelo); err != nil || code != 250 {
		c.Close()
		return nil, fmt.Errorf("EHLO %d %s %v", code, text, err)
	}
	return sc, nil
}

func (sc *rmSMTPConn) reply() (int, string, error) {
	sc.c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	var text []string
	for {
		l, err := sc.r.ReadString('\n')
		if err != nil {
			return 0, strings.Join(text, " "), err
		}
		l = strings.TrimRight(l, "\r\n")
		if len(l) < 3 {
			return 0, l, fmt.Errorf("bad reply %q", l)
		}
		code, err := strconv.Atoi(l[:3])
		if err != nil {
			return 0, l, fmt.Errorf("bad reply %q", l)
		}
		text = append(text, strings.TrimSpace(l[min(4, len(l)):]))
		if len(l) == 3 || l[3] == ' ' {
			return code, strings.Join(text, " "), nil
		}
	}
}

func (sc *rmSMTPConn) cmd(line string) (int, string, error) {
	sc.c.SetWriteDeadline(time.Now().Add(time.Minute))
	sc.w.WriteString(line + "\r\n")
	if err := sc.w.Flush(); err != nil {
		return 0, "", err
	}
	return sc.reply()
}

// send runs one transaction; the returned code is the first failing reply
// or the reply to the end of data.
func (sc *rmSMTPConn) send(to string, raw []byte) (int, string, error) {
	mail := "MAIL FROM:<" + rmSender + ">"
	for _, c := range raw {
		if c >= 0x80 {
			mail += " BODY=8BITMIME"
			break
		}
	}
	for _, l := range []string{mail, "RCPT TO:<" + to + ">"} {
		if code, text, err := sc.cmd(l); err != nil || code != 250 {
			if err == nil {
				sc.cmd("RSET")
			}
			return code, text, err
		}
	}
	if code, text, err := sc.cmd("DATA"); err != nil || code != 354 {
		return code, text, err
	}
	// Dot-stuffing (RFC 5321 §4.5.2).
	sc.c.SetWriteDeadline(time.Now().Add(2 * time.Minute))
	lineStart := true
	for i, c := range raw {
		if lineStart && c == '.' {
			sc.w.WriteByte('.')
		}
		sc.w.WriteByte(c)
		lineStart = c == '\n' && i > 0 && raw[i-1] == '\r'
	}
	sc.w.WriteString(".\r\n")
	if err := sc.w.Flush(); err != nil {
		return 0, "", err
	}
	return sc.reply()
}

func rmSendOne(addr string, m rmMsg) (int, string, error) {
	sc, err := rmDialSMTP(addr)
	if err != nil {
		return 0, "", err
	}
	defer sc.c.Close()
	code, text, err := sc.send(rmAccountA, m.raw)
	sc.cmd("QUIT")
	return code, text, err
}

// rmDeliver sends the sample over 4 sessions and returns what was
// accepted, in corpus order, and what was refused.
func rmDeliver(t *testing.T, addr string, msgs []rmMsg) ([]rmMsg, []rmRefusal) {
	type res struct {
		code int
		text string
		err  error
	}
	results := make([]res, len(msgs))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sc *rmSMTPConn
			for i := range jobs {
				var r res
				for attempt := 0; attempt < 3; attempt++ {
					if sc == nil {
						if sc, r.err = rmDialSMTP(addr); r.err != nil {
							sc = nil
							continue
						}
					}
					r.code, r.text, r.err = sc.send(rmAccountA, msgs[i].raw)
					if r.err == nil && r.code/100 != 4 {
						break
					}
					sc.c.Close()
					sc = nil // a broken or temporarily failing session: try again on a new one
				}
				results[i] = r
			}
			if sc != nil {
				sc.cmd("QUIT")
				sc.c.Close()
			}
		}()
	}
	for i := range msgs {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	var ok []rmMsg
	var refused []rmRefusal
	for i, r := range results {
		switch {
		case r.err != nil:
			t.Errorf("sending %s: %v (last reply %d %s)", msgs[i].name, r.err, r.code, r.text)
		case r.code == 250:
			ok = append(ok, msgs[i])
		case r.code/100 == 4:
			t.Errorf("sending %s: temporary failure %d %s, three times", msgs[i].name, r.code, r.text)
		default:
			refused = append(refused, rmRefusal{msgs[i].name, r.code, r.text})
		}
	}
	return ok, refused
}

type rmWord struct {
	key  string // TEXT, SUBJECT, FROM
	word string
	src  string // corpus name of the message it came from
	kind string // what sort of word (for the report)
}

// rmFreshMessage is a message with words found nowhere else.
func rmFreshMessage(t *testing.T) (rmMsg, []rmWord) {
	sfx := randomSuffix(t)
	ascii := "freshword" + sfx
	var cyr, cjk strings.Builder
	cyr.WriteString("свежий")
	for _, c := range sfx[:6] {
		cyr.WriteRune('а' + rune(c%32))
	}
	for _, c := range sfx[:3] {
		cjk.WriteRune(0x5C71 + rune(c)*7)
	}
	from := "fresh-" + sfx + "@remote.example"
	body := fmt.Sprintf("Dies ist eine frische Nachricht: %s.\r\nПривет: %s.\r\n中文: %s。\r\n", ascii, cyr.String(), cjk.String())
	enc := rmB64Lines([]byte(body))
	raw := fmt.Sprintf("From: Fresh Sender <%s>\r\nTo: %s\r\nSubject: subj%s arrived\r\nMessage-ID: <%s@remote.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n%s",
		from, rmAccountA, sfx, sfx, enc)
	m := newRMMsg("fresh/"+sfx, []byte(raw))
	return m, []rmWord{
		{"TEXT", ascii, m.name, "fresh ascii"},
		{"TEXT", cyr.String(), m.name, "fresh cyrillic"},
		{"TEXT", cjk.String(), m.name, "fresh cjk"},
		{"SUBJECT", "subj" + sfx, m.name, "fresh subject"},
		{"FROM", from, m.name, "fresh from"},
	}
}

func rmB64Lines(b []byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var out strings.Builder
	n := 0
	for i := 0; i < len(b); i += 3 {
		var v uint32
		k := min(3, len(b)-i)
		for j := 0; j < 3; j++ {
			v <<= 8
			if j < k {
				v |= uint32(b[i+j])
			}
		}
		for j := 0; j < 4; j++ {
			if j <= k {
				out.WriteByte(alphabet[(v>>(18-6*j))&63])
			} else {
				out.WriteByte('=')
			}
		}
		if n += 4; n >= 76 {
			out.WriteString("\r\n")
			n = 0
		}
	}
	if n > 0 {
		out.WriteString("\r\n")
	}
	return out.String()
}

// rmMboxrd writes messages as an mboxrd file: LF line ends, a "From "
// line before each, ">*From " lines quoted with one more ">", a blank
// line after each.
func rmMboxrd(msgs []rmMsg) []byte {
	var b bytes.Buffer
	for _, m := range msgs {
		b.WriteString("From MAILER-DAEMON Thu Dec  3 16:17:05 2026\n")
		lf := bytes.ReplaceAll(m.raw, []byte("\r\n"), []byte("\n"))
		for _, line := range bytes.SplitAfter(lf, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			if bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From ")) {
				b.WriteByte('>')
			}
			b.Write(line)
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

// --- IMAP: reading back ---

type rmFetched struct {
	uid uint32
	raw []byte
}

func rmFetchAll(t *testing.T, addr, user string) []rmFetched {
	c, err := imapclient.DialTLS(addr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, rmPassword).Wait(); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	sd, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		t.Fatalf("UID SEARCH ALL: %v", err)
	}
	uids := sd.AllUIDs()
	var out []rmFetched
	for i := 0; i < len(uids); i += 50 {
		var set imap.UIDSet
		for _, u := range uids[i:min(i+50, len(uids))] {
			set.AddNum(u)
		}
		msgs, err := c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			t.Fatalf("UID FETCH %v BODY.PEEK[]: %v", set, err)
		}
		for _, m := range msgs {
			if len(m.BodySection) != 1 {
				t.Fatalf("UID %d: %d body sections", m.UID, len(m.BodySection))
			}
			out = append(out, rmFetched{uid: uint32(m.UID), raw: m.BodySection[0].Bytes})
		}
	}
	if len(out) != len(uids) {
		t.Fatalf("%s: fetched %d of %d messages", user, len(out), len(uids))
	}
	c.Logout().Wait()
	return out
}

var (
	rmReceived = regexp.MustCompile(`^Received: from ` + regexp.QuoteMeta(rmHelo) + ` \(\[127\.0\.0\.1\]\)\r\n\tby mx\.stoa\.test \(Stoa\) with ESMTP id [!-~]+\r\n\tfor <` + regexp.QuoteMeta(rmAccountA) + `>;\r\n\t[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [-+]\d{4}\r\n$`)
	rmAuthRes  = regexp.MustCompile(`^Authentication-Results: mx\.stoa\.test;\r\n(\t[^\r\n]*\r\n)+$`)
)

// rmSplitTrace splits off the fields the server prepended: one Received,
// then one Authentication-Results (frontend/smtp deliver: the trace field,
// then the sender checks; the default antispam checker adds nothing). The
// end of the second is found by trying each line end until the rest is a
// message that was sent, so a sent message starting with white space (a
// continuation line) is still told apart.
func rmSplitTrace(raw []byte, sent func([]byte) bool) (fields []string, rest []byte, ok bool) {
	lineEnd := func(i int) int {
		le := bytes.Index(raw[i:], []byte("\r\n"))
		if le < 0 {
			return len(raw)
		}
		return i + le + 2
	}
	end1 := lineEnd(0)
	for end1 < len(raw) && (raw[end1] == ' ' || raw[end1] == '\t') {
		end1 = lineEnd(end1)
	}
	for e, n := lineEnd(end1), 0; e <= len(raw) && n < 64; e, n = lineEnd(e), n+1 {
		if sent(raw[e:]) {
			return []string{string(raw[:end1]), string(raw[end1:e])}, raw[e:], true
		}
		if e == len(raw) {
			break
		}
	}
	return []string{string(raw[:end1])}, raw[end1:], false
}

// rmCheckSMTP: every delivered message is in the mailbox once, byte for
// byte after the prepended trace fields; nothing else is there. It returns
// corpus name → UID.
func rmCheckSMTP(t *testing.T, bname string, got []rmFetched, sent []rmMsg, fresh rmMsg) map[string]uint32 {
	want := map[[32]byte]int{}
	for i, m := range sent {
		want[m.hash] = i
	}
	want[fresh.hash] = -1
	uids := map[string]uint32{}
	var bad int
	for _, g := range got {
		fields, rest, ok := rmSplitTrace(g.raw, func(b []byte) bool { _, ok := want[sha256.Sum256(b)]; return ok })
		if !ok {
			bad++
			t.Errorf("[%s] UID %d: BODY[] after the trace fields is none of the messages sent%s", bname, g.uid, rmClosest(rest, sent))
			continue
		}
		if len(fields) != 2 || !rmReceived.MatchString(fields[0]) || !rmAuthRes.MatchString(fields[1]) {
			bad++
			t.Errorf("[%s] UID %d: prepended fields are not exactly Received + Authentication-Results:\n%q", bname, g.uid, fields)
			continue
		}
		i := want[sha256.Sum256(rest)]
		if len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
			// RFC 5322 §2.2.3: the message's first line now continues the
			// server's Authentication-Results field, so a sender can append
			// to what the server claims to have verified (RFC 8601 §5).
			t.Errorf("[%s] UID %d (%s): the message starts with white space and was stored after the server's own fields; its first line %q now unfolds into the server's Authentication-Results",
				bname, g.uid, rmName(sent, i), bytes.SplitN(rest, []byte("\r\n"), 2)[0])
		}
		name := fresh.name
		if i >= 0 {
			name = sent[i].name
		}
		if _, dup := uids[name]; dup {
			t.Errorf("[%s] %s stored twice", bname, name)
		}
		uids[name] = g.uid
	}
	missing := 0
	for _, m := range sent {
		if _, ok := uids[m.name]; !ok {
			missing++
			t.Errorf("[%s] delivered %s not found byte-identical over IMAP", bname, m.name)
		}
	}
	t.Logf("[%s] SMTP round trip: %d/%d byte-identical after Received + Authentication-Results, %d bad, %d missing",
		bname, len(uids), len(sent)+1, bad, missing)
	return uids
}

func rmName(sent []rmMsg, i int) string {
	if i < 0 {
		return "fresh message"
	}
	return sent[i].name
}

func rmCheckImport(t *testing.T, bname string, got []rmFetched, sent []rmMsg) map[string]uint32 {
	want := map[[32]byte]int{}
	for i, m := range sent {
		want[m.hash] = i
	}
	uids := map[string]uint32{}
	for _, g := range got {
		i, ok := want[sha256.Sum256(g.raw)]
		if !ok {
			t.Errorf("[%s] imported UID %d: BODY[] is none of the mbox messages%s", bname, g.uid, rmClosest(g.raw, sent))
			continue
		}
		uids[sent[i].name] = g.uid
	}
	for _, m := range sent {
		if _, ok := uids[m.name]; !ok {
			t.Errorf("[%s] imported %s not found byte-identical over IMAP", bname, m.name)
		}
	}
	t.Logf("[%s] mbox round trip: %d/%d byte-identical", bname, len(uids), len(sent))
	return uids
}

// rmClosest describes the first difference from the sent message sharing
// the longest prefix, to make a failure readable.
func rmClosest(got []byte, sent []rmMsg) string {
	best, bestN := -1, -1
	for i, m := range sent {
		n := 0
		for n < len(got) && n < len(m.raw) && got[n] == m.raw[n] {
			n++
		}
		if n > bestN {
			best, bestN = i, n
		}
	}
	if best < 0 {
		return ""
	}
	m := sent[best].raw
	ctx := func(b []byte) []byte { return b[bestN:min(len(b), bestN+60)] }
	return fmt.Sprintf("; closest %s (%d vs %d bytes) differs at byte %d: got %q, sent %q",
		sent[best].name, len(got), len(m), bestN, ctx(got), ctx(m))
}

// --- IMAP: a raw session for SEARCH, ENVELOPE and BODYSTRUCTURE (no
// client-side decoding of what the server says) ---

type rmIMAP struct {
	t   *testing.T
	c   net.Conn
	r   *bufio.Reader
	tag int
}

func rmIMAPLogin(t *testing.T, addr, user string) *rmIMAP {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := &rmIMAP{t: t, c: c, r: bufio.NewReaderSize(c, 64<<10)}
	if l := s.logical(); !bytes.HasPrefix(l, []byte("* OK")) {
		t.Fatalf("greeting %q", l)
	}
	s.ok(fmt.Sprintf("LOGIN %q %q", user, rmPassword))
	s.ok("SELECT INBOX")
	return s
}

// logical reads one response line with its literals.
func (s *rmIMAP) logical() []byte {
	s.t.Helper()
	var out []byte
	for {
		s.c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		l, err := s.r.ReadBytes('\n')
		if err != nil {
			s.t.Fatalf("imap read: %v (got %q)", err, l)
		}
		out = append(out, l...)
		m := rmLiteralEnd.FindSubmatch(l)
		if m == nil {
			return out
		}
		n, _ := strconv.Atoi(string(m[1]))
		lit := make([]byte, n)
		if _, err := io.ReadFull(s.r, lit); err != nil {
			s.t.Fatalf("imap literal: %v", err)
		}
		out = append(out, lit...)
	}
}

var rmLiteralEnd = regexp.MustCompile(`~?\{(\d+)\+?\}\r\n$`)

// run sends a command (parts joined; a []byte part is sent as a
// synchronising literal) and returns the untagged lines and the status.
func (s *rmIMAP) run(parts ...any) ([][]byte, string) {
	s.t.Helper()
	s.tag++
	tag := fmt.Sprintf("R%d", s.tag)
	var line strings.Builder
	line.WriteString(tag)
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			line.WriteString(" " + v)
		case []byte:
			fmt.Fprintf(&line, " {%d}\r\n", len(v))
			s.write(line.String())
			line.Reset()
			if l := s.logical(); !bytes.HasPrefix(l, []byte("+")) {
				s.t.Fatalf("literal not accepted: %q", l)
			}
			line.Write(v)
		}
	}
	s.write(line.String() + "\r\n")
	var untagged [][]byte
	for {
		l := s.logical()
		if bytes.HasPrefix(l, []byte(tag+" ")) {
			return untagged, strings.TrimRight(string(l[len(tag)+1:]), "\r\n")
		}
		untagged = append(untagged, l)
	}
}

func (s *rmIMAP) write(x string) {
	s.c.SetWriteDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(s.c, x); err != nil {
		s.t.Fatal(err)
	}
}

func (s *rmIMAP) ok(cmd string) [][]byte {
	s.t.Helper()
	u, st := s.run(cmd)
	if !strings.HasPrefix(st, "OK") {
		s.t.Fatalf("%s: %s", cmd, st)
	}
	return u
}

func (s *rmIMAP) logout() { s.run("LOGOUT"); s.c.Close() }

// search runs UID SEARCH CHARSET UTF-8 <key> <word>, the word quoted when
// it is ASCII and a literal otherwise.
func (s *rmIMAP) search(key, word string) []uint32 {
	s.t.Helper()
	var arg any = strconv.Quote(word)
	for i := 0; i < len(word); i++ {
		if word[i] >= 0x80 || word[i] < 0x20 || word[i] == '"' || word[i] == '\\' {
			arg = []byte(word)
			break
		}
	}
	u, st := s.run("UID SEARCH CHARSET UTF-8 "+key, arg)
	if !strings.HasPrefix(st, "OK") {
		s.t.Errorf("UID SEARCH %s %q: %s", key, word, st)
		return nil
	}
	var uids []uint32
	for _, l := range u {
		ls := strings.TrimRight(string(l), "\r\n")
		switch {
		case strings.HasPrefix(ls, "* SEARCH"):
			for _, f := range strings.Fields(ls[len("* SEARCH"):]) {
				if n, err := strconv.ParseUint(f, 10, 32); err == nil {
					uids = append(uids, uint32(n))
				}
			}
		case strings.HasPrefix(ls, "* ESEARCH"):
			f := strings.Fields(ls)
			for i := 0; i+1 < len(f); i++ {
				if f[i] == "ALL" {
					uids = append(uids, rmParseSet(f[i+1])...)
				}
			}
		}
	}
	return uids
}

func rmParseSet(s string) []uint32 {
	var out []uint32
	for _, r := range strings.Split(s, ",") {
		a, b, _ := strings.Cut(r, ":")
		x, _ := strconv.ParseUint(a, 10, 32)
		y := x
		if b != "" {
			y, _ = strconv.ParseUint(b, 10, 32)
		}
		if y < x {
			x, y = y, x
		}
		for u := x; u <= y; u++ {
			out = append(out, uint32(u))
		}
	}
	return out
}

// --- IMAP response syntax: NIL is nil, atoms are rmAtom, strings string,
// lists []any ---

type rmAtom string

func rmParse(b []byte) ([]any, error) {
	p := &rmParser{b: b}
	var out []any
	for {
		p.space()
		if p.i >= len(p.b) || p.b[p.i] == '\r' || p.b[p.i] == '\n' {
			return out, nil
		}
		v, err := p.value()
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
}

type rmParser struct {
	b []byte
	i int
}

func (p *rmParser) space() {
	for p.i < len(p.b) && p.b[p.i] == ' ' {
		p.i++
	}
}

func (p *rmParser) value() (any, error) {
	if p.i >= len(p.b) {
		return nil, errors.New("unexpected end")
	}
	switch c := p.b[p.i]; {
	case c == '(':
		p.i++
		var l []any
		for {
			p.space()
			if p.i >= len(p.b) {
				return nil, errors.New("unterminated list")
			}
			if p.b[p.i] == ')' {
				p.i++
				return l, nil
			}
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
	case c == '"':
		p.i++
		var s []byte
		for p.i < len(p.b) && p.b[p.i] != '"' {
			if p.b[p.i] == '\\' {
				p.i++
			}
			if p.i < len(p.b) {
				s = append(s, p.b[p.i])
			}
			p.i++
		}
		p.i++
		return string(s), nil
	case c == '{' || c == '~':
		j := bytes.Index(p.b[p.i:], []byte("}\r\n"))
		if j < 0 {
			return nil, errors.New("bad literal")
		}
		n, err := strconv.Atoi(strings.Trim(string(p.b[p.i:p.i+j]), "~{+"))
		if err != nil {
			return nil, err
		}
		start := p.i + j + 3
		if start+n > len(p.b) {
			return nil, errors.New("short literal")
		}
		p.i = start + n
		return string(p.b[start : start+n]), nil
	default:
		j := p.i
		for j < len(p.b) && !strings.ContainsRune(" ()\r\n", rune(p.b[j])) {
			j++
		}
		a := string(p.b[p.i:j])
		p.i = j
		if strings.EqualFold(a, "NIL") {
			return nil, nil
		}
		return rmAtom(a), nil
	}
}

func rmStr(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case rmAtom:
		return string(x)
	}
	return ""
}

// --- 4. BODYSTRUCTURE and ENVELOPE against Python ---

type rmPyPart struct {
	Section  string  `json:"section"`
	Type     string  `json:"type"`
	Charset  *string `json:"charset"`
	Boundary *string `json:"boundary"`
	CTE      string  `json:"cte"`
}

type rmPyText struct {
	Section string `json:"section"`
	Type    string `json:"type"`
	CTE     string `json:"cte"`
	Charset string `json:"charset"`
	Text    string `json:"text"`
}

type rmPyDesc struct {
	File       string     `json:"file"`
	Error      string     `json:"error"`
	Tree       []rmPyPart `json:"tree"`
	Subject    *string    `json:"subject"`
	SubjectDec string     `json:"subject_dec"`
	From       [][]string `json:"from"`
	To         [][]string `json:"to"`
	Cc         [][]string `json:"cc"`
	FromError  string     `json:"from_error"`
	ToError    string     `json:"to_error"`
	CcError    string     `json:"cc_error"`
	MessageID  string     `json:"message_id"`
	InReplyTo  string     `json:"in_reply_to"`
	Texts      []rmPyText `json:"text"`
}

func rmPython(t *testing.T, py string, raws [][]byte, withText bool) []rmPyDesc {
	t.Helper()
	dir := t.TempDir()
	args := []string{filepath.Join(harness.RepoRoot(), "integration", "testdata", "realmail", "pystructure.py")}
	if withText {
		args = append(args, "--text")
	}
	for i, r := range raws {
		p := filepath.Join(dir, fmt.Sprintf("%04d.eml", i))
		if err := os.WriteFile(p, r, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, p)
	}
	cmd := exec.Command(py, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pystructure.py: %v\n%s", err, stderr.String())
	}
	var res []rmPyDesc
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var d rmPyDesc
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("pystructure.py output: %v", err)
		}
		res = append(res, d)
	}
	if len(res) != len(raws) {
		t.Fatalf("pystructure.py printed %d results for %d files", len(res), len(raws))
	}
	return res
}

// rmIMAPPart is one BODYSTRUCTURE part in the shape pystructure.py prints.
type rmIMAPPart struct {
	section, typ       string
	charset, boundary  *string
	cte                string
	childlessMultipart bool // a multipart with only the placeholder part
}

func rmParams(v any) map[string]string {
	out := map[string]string{}
	l, _ := v.([]any)
	for i := 0; i+1 < len(l); i += 2 {
		out[strings.ToLower(rmStr(l[i]))] = rmStr(l[i+1])
	}
	return out
}

func rmPtr(s string) *string { return &s }

// rmIMAPTree flattens a BODYSTRUCTURE as pystructure.py's tree does.
func rmIMAPTree(v any, section string, out []rmIMAPPart) []rmIMAPPart {
	l, _ := v.([]any)
	if len(l) == 0 {
		return out
	}
	if _, multi := l[0].([]any); multi {
		i := 0
		var kids []any
		for ; i < len(l); i++ {
			if _, ok := l[i].([]any); !ok {
				break
			}
			kids = append(kids, l[i])
		}
		p := rmIMAPPart{section: section, typ: "multipart/" + strings.ToLower(rmStr(l[i]))}
		if i+1 < len(l) {
			if b, ok := rmParams(l[i+1])["boundary"]; ok {
				p.boundary = rmPtr(b)
			}
		}
		out = append(out, p)
		for k, c := range kids {
			cs := strconv.Itoa(k + 1)
			if section != "" {
				cs = section + "." + cs
			}
			out = rmIMAPTree(c, cs, out)
		}
		return out
	}
	p := rmIMAPPart{section: section, typ: strings.ToLower(rmStr(l[0]) + "/" + rmStr(l[1]))}
	if cs, ok := rmParams(l[2])["charset"]; ok {
		p.charset = rmPtr(cs)
	}
	if len(l) > 5 {
		p.cte = strings.ToLower(rmStr(l[5]))
	}
	out = append(out, p)
	if (p.typ == "message/rfc822" || p.typ == "message/global") && len(l) > 8 {
		out = rmIMAPTree(l[8], section, out)
	}
	return out
}

type rmEnv struct {
	subject              *string
	from, to, cc         [][]string // name (raw), mailbox, host
	messageID, inReplyTo string
}

func rmIMAPEnvelope(v any) rmEnv {
	l, _ := v.([]any)
	var e rmEnv
	if len(l) < 10 {
		return e
	}
	if s, ok := l[1].(string); ok {
		e.subject = &s
	}
	addrs := func(v any) [][]string {
		var out [][]string
		al, _ := v.([]any)
		for _, a := range al {
			f, _ := a.([]any)
			if len(f) != 4 || f[3] == nil { // group start and end markers
				continue
			}
			out = append(out, []string{rmStr(f[0]), rmStr(f[2]), rmStr(f[3])})
		}
		return out
	}
	e.from, e.to, e.cc = addrs(l[2]), addrs(l[5]), addrs(l[6])
	e.inReplyTo, e.messageID = rmStr(l[8]), rmStr(l[9])
	return e
}

var rmWordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// rmServerDecodes reports whether the charset table the server uses
// (go-message/charset, as storage/mailmeta) knows cs.
func rmServerDecodes(cs string) bool {
	switch strings.ToLower(cs) {
	case "", "us-ascii", "ascii", "utf-8", "utf8":
		return true
	}
	r, err := charset.Reader(cs, strings.NewReader(""))
	return err == nil && r != nil
}

func rmDecodeName(s string) string {
	if d, err := rmWordDecoder.DecodeHeader(s); err == nil {
		s = d
	}
	return strings.TrimSpace(s)
}

func rmLatin1(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = rune(s[i])
	}
	return string(r)
}

func rmUnquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// rmCompareStructure compares ~50 messages of account A. Documented
// differences (see storage/mailmeta/python_test.go for the parser's) are
// counted apart:
//
//   - degradedMultipart: a multipart without boundary or delimiter line.
//     Python keeps its multipart type with no children; BODYSTRUCTURE needs
//     1*body, so Stoa writes one empty TEXT/PLAIN part (or reads the part as
//     text/plain, RFC 2045 §5.2).
//   - pythonAddressError: Python's header parser raised on From/To/Cc.
//   - nameDecoding: same addresses; display names differ only in RFC 2047
//     decoding or a comment used as the name ("a@b (Name)"), or Python
//     gives none.
//   - nullAddress: "<>" (bounces): Python reports the addr-spec "<>".
//   - typeTrailingJunk: "text/plain>" or a missing ";": Python takes the
//     whole string as the type, Stoa the RFC 2045 token.
//   - foldInsideWord: a relay cut a 998-octet line inside an address
//     ("vger.ke<CRLF> rnel.org"). Python reads the domain up to the white
//     space; Stoa's address parser joins the pieces.
//   - defaultCharset: a text part without charset parameter. Stoa states
//     the RFC 2045 §5.2 default, ("CHARSET" "US-ASCII") as in RFC 9051's
//     examples; Python reports no parameter.
//   - paramSyntax: charset or boundary values that differ only where
//     Python's and Stoa's parameter parsers read a broken value
//     differently (quotes, RFC 2231 continuations, folding).
func rmCompareStructure(t *testing.T, bname, addr, py string, sent []rmMsg, uids map[string]uint32, got []rmFetched) {
	byUID := map[uint32]rmFetched{}
	for _, g := range got {
		byUID[g.uid] = g
	}
	// Every k-th message sent (corpus order, not delivery order: the
	// sample is the same on every run).
	var sample []rmFetched
	for i := 3; i < len(sent); i += max(1, len(sent)/50) {
		if g, ok := byUID[uids[sent[i].name]]; ok {
			sample = append(sample, g)
		}
	}
	var raws [][]byte
	for _, g := range sample {
		raws = append(raws, g.raw)
	}
	pys := rmPython(t, py, raws, false)
	s := rmIMAPLogin(t, addr, rmAccountA)
	defer s.logout()
	agree := 0
	exceptions := map[string]int{}
	var disagreements []string
	for k, g := range sample {
		u := s.ok(fmt.Sprintf("UID FETCH %d (UID ENVELOPE BODYSTRUCTURE)", g.uid))
		var env, bs any
		for _, l := range u {
			v, err := rmParse(l)
			if err != nil || len(v) < 4 || rmStr(v[2]) != "FETCH" {
				continue
			}
			items, _ := v[3].([]any)
			for i := 0; i+1 < len(items); i += 2 {
				switch strings.ToUpper(rmStr(items[i])) {
				case "ENVELOPE":
					env = items[i+1]
				case "BODYSTRUCTURE":
					bs = items[i+1]
				}
			}
		}
		p := pys[k]
		if env == nil || bs == nil {
			disagreements = append(disagreements, fmt.Sprintf("UID %d: no ENVELOPE/BODYSTRUCTURE in %q", g.uid, u))
			continue
		}
		if p.Error != "" {
			disagreements = append(disagreements, fmt.Sprintf("UID %d: python failed: %s", g.uid, p.Error))
			continue
		}
		var classes []string
		var diffs []string
		it := rmIMAPTree(bs, "", nil)
		classes, diffs = rmCompareTree(it, p.Tree, classes, diffs)
		classes, diffs = rmCompareEnv(rmIMAPEnvelope(env), p, g.raw, classes, diffs)
		switch {
		case len(diffs) > 0:
			disagreements = append(disagreements, fmt.Sprintf("UID %d:\n    %s", g.uid, strings.Join(diffs, "\n    ")))
		case len(classes) > 0:
			for _, c := range slices.Compact(slices.Sorted(slices.Values(classes))) {
				exceptions[c]++
			}
		default:
			agree++
		}
	}
	n := len(sample)
	explained := n - len(disagreements)
	t.Logf("[%s] Python cross-check of %d messages: %d agree exactly, %d with documented differences, %d disagree; agreement %.1f%% (exact %.1f%%)",
		bname, n, agree, explained-agree, len(disagreements), 100*float64(explained)/float64(n), 100*float64(agree)/float64(n))
	for _, k := range slices.Sorted(maps.Keys(exceptions)) {
		t.Logf("[%s]   documented %s: %d", bname, k, exceptions[k])
	}
	for _, d := range disagreements {
		t.Logf("[%s]   DISAGREEMENT %s", bname, d)
	}
	if explained*100 < 95*n {
		t.Errorf("[%s] BODYSTRUCTURE/ENVELOPE agreement with Python %.1f%% < 95%%", bname, 100*float64(explained)/float64(n))
	}
}

func rmSP(p *string) string {
	if p == nil {
		return "<none>"
	}
	return *p
}

func rmCompareTree(it []rmIMAPPart, pt []rmPyPart, classes, diffs []string) ([]string, []string) {
	// Degraded multiparts: Python's childless multipart/* is Stoa's
	// multipart with one placeholder TEXT/PLAIN part, or text/plain.
	norm := it
	j := 0
	for i := 0; i < len(pt); i++ {
		pp := pt[i]
		first := "1"
		if pp.Section != "" {
			first = pp.Section + ".1"
		}
		childless := strings.HasPrefix(pp.Type, "multipart/") && !(i+1 < len(pt) && pt[i+1].Section == first)
		if j >= len(norm) {
			diffs = append(diffs, fmt.Sprintf("tree: python has more parts: %s %s", pp.Section, pp.Type))
			return classes, diffs
		}
		ip := norm[j]
		if childless && pp.Section == ip.section {
			if ip.typ == "text/plain" {
				classes = append(classes, "degradedMultipart")
				j++
				continue
			}
			if ip.typ == pp.Type && j+1 < len(norm) && norm[j+1].typ == "text/plain" && norm[j+1].section == first {
				classes = append(classes, "degradedMultipart")
				j += 2
				continue
			}
		}
		j++
		if ip.section != pp.Section || ip.typ != pp.Type {
			if strings.HasPrefix(pp.Type, ip.typ) && len(pp.Type) > len(ip.typ) && !rmIsTokenByte(pp.Type[len(ip.typ)]) {
				classes = append(classes, "typeTrailingJunk")
				return classes, diffs // what follows differs as a consequence
			}
			diffs = append(diffs, fmt.Sprintf("tree: part %q is %s over IMAP, python says part %q is %s", ip.section, ip.typ, pp.Section, pp.Type))
			return classes, diffs
		}
		if strings.HasPrefix(pp.Type, "multipart/") {
			if rmSP(ip.boundary) != rmSP(pp.Boundary) {
				if pp.Boundary != nil && ip.boundary != nil && strings.Trim(*ip.boundary, "\" \t") == strings.Trim(*pp.Boundary, "\" \t") {
					classes = append(classes, "paramSyntax")
				} else {
					diffs = append(diffs, fmt.Sprintf("part %q boundary: IMAP %q python %q", pp.Section, rmSP(ip.boundary), rmSP(pp.Boundary)))
				}
			}
			continue
		}
		if !strings.EqualFold(rmSP(ip.charset), rmSP(pp.Charset)) {
			switch {
			case pp.Charset == nil && ip.charset != nil && strings.EqualFold(*ip.charset, "us-ascii") && strings.HasPrefix(pp.Type, "text/"):
				classes = append(classes, "defaultCharset")
			case pp.Charset != nil && ip.charset != nil && strings.EqualFold(strings.Trim(*ip.charset, "\" \t"), strings.Trim(*pp.Charset, "\" \t")):
				classes = append(classes, "paramSyntax")
			default:
				diffs = append(diffs, fmt.Sprintf("part %q (%s) charset: IMAP %q python %q", pp.Section, pp.Type, rmSP(ip.charset), rmSP(pp.Charset)))
			}
		}
		if ip.cte != pp.CTE {
			diffs = append(diffs, fmt.Sprintf("part %q (%s) Content-Transfer-Encoding: IMAP %q python %q", pp.Section, pp.Type, ip.cte, pp.CTE))
		}
	}
	if j < len(norm) {
		diffs = append(diffs, fmt.Sprintf("tree: IMAP has more parts from %q %s", norm[j].section, norm[j].typ))
	}
	return classes, diffs
}

func rmIsTokenByte(c byte) bool {
	return c > ' ' && c < 0x7f && !strings.ContainsRune(`()<>@,;:\"/[]?=`, rune(c))
}

func rmCompareEnv(e rmEnv, p rmPyDesc, raw []byte, classes, diffs []string) ([]string, []string) {
	// Subject: raw, unfolded.
	is := ""
	if e.subject != nil {
		is = strings.TrimSpace(rmLatin1(strings.NewReplacer("\r\n", "", "\n", "").Replace(*e.subject)))
	}
	ps := ""
	if p.Subject != nil {
		ps = *p.Subject
	}
	if is != ps {
		diffs = append(diffs, fmt.Sprintf("subject: IMAP %q python %q", is, ps))
	}
	for _, f := range []struct {
		name string
		imap [][]string
		py   [][]string
		err  string
	}{{"from", e.from, p.From, p.FromError}, {"to", e.to, p.To, p.ToError}, {"cc", e.cc, p.Cc, p.CcError}} {
		if f.py == nil && f.err != "" {
			classes = append(classes, "pythonAddressError")
			continue
		}
		c, d := rmCompareAddrs(f.imap, f.py, raw)
		if d != "" {
			diffs = append(diffs, f.name+": "+d)
		} else if c != "" {
			classes = append(classes, c)
		}
	}
	norm := func(s string) string {
		return strings.TrimSpace(rmLatin1(strings.NewReplacer("\r\n", "", "\n", "").Replace(s)))
	}
	if norm(e.messageID) != norm(p.MessageID) {
		diffs = append(diffs, fmt.Sprintf("message-id: IMAP %q python %q", e.messageID, p.MessageID))
	}
	if norm(e.inReplyTo) != norm(p.InReplyTo) {
		diffs = append(diffs, fmt.Sprintf("in-reply-to: IMAP %q python %q", e.inReplyTo, p.InReplyTo))
	}
	return classes, diffs
}

// rmCompareAddrs returns a documented class or a difference.
func rmCompareAddrs(im, py [][]string, raw []byte) (class, diff string) {
	var pyN [][]string
	null := false
	for _, a := range py {
		if a[1] == "" && a[2] == "" && a[0] == "" {
			continue
		}
		if a[1]+a[2] == "<>" || a[1] == "<>" {
			null = true
			if a[0] == "" {
				continue
			}
			a = []string{a[0], "", ""}
		}
		pyN = append(pyN, a)
	}
	var imN [][]string
	for _, a := range im {
		if a[0] == "" && a[1] == "" && a[2] == "" {
			null = null || len(py) > len(pyN)
			continue
		}
		imN = append(imN, a)
	}
	if len(imN) != len(pyN) {
		for i := range min(len(imN), len(pyN)) {
			if !strings.EqualFold(rmUnquote(imN[i][1]), rmUnquote(pyN[i][1])) || !strings.EqualFold(imN[i][2], pyN[i][2]) {
				return "", fmt.Sprintf("%d addresses over IMAP, %d by python; first difference at %d: IMAP %q python %q", len(imN), len(pyN), i, imN[i], pyN[i])
			}
		}
		if len(imN) > len(pyN) {
			return "", fmt.Sprintf("%d addresses over IMAP, %d by python; IMAP has more: %q", len(imN), len(pyN), imN[len(pyN):])
		}
		return "", fmt.Sprintf("%d addresses over IMAP, %d by python; python has more: %q", len(imN), len(pyN), pyN[len(imN):])
	}
	names, folded := false, false
	for i := range imN {
		a, b := imN[i], pyN[i]
		if strings.EqualFold(rmUnquote(a[1]), rmUnquote(b[1])) && len(a[2]) > len(b[2]) && strings.HasPrefix(a[2], b[2]) &&
			(bytes.Contains(raw, []byte(b[2]+"\r\n ")) || bytes.Contains(raw, []byte(b[2]+"\r\n\t"))) {
			folded = true
			continue
		}
		if !strings.EqualFold(rmUnquote(a[1]), rmUnquote(b[1])) || !strings.EqualFold(a[2], b[2]) {
			return "", fmt.Sprintf("address %d: IMAP %q python %q", i, a, b)
		}
		in := rmLatin1(rmDecodeName(a[0]))
		if in != strings.TrimSpace(b[0]) {
			if b[0] == "" || strings.Contains(a[0], "=?") || strings.Contains(b[0], "=?") {
				names = true
				continue
			}
			return "", fmt.Sprintf("name: IMAP %q (%q decoded) python %q", a[0], in, b[0])
		}
	}
	switch {
	case folded:
		return "foldInsideWord", ""
	case names:
		return "nameDecoding", ""
	case null:
		return "nullAddress", ""
	}
	return "", ""
}

// --- 5. Search ---

// rmWaitIndexer polls the indexer's metrics until it wrote at least one
// document per message (generous deadline; the figure is reported).
func rmWaitIndexer(t *testing.T, bname string, ix rmIndex, want int) {
	admin := ix.admin
	t0 := time.Now()
	deadline := t0.Add(3 * time.Minute)
	var docs float64
	for {
		docs = rmMetric(admin, "stoa_index_documents_total")
		if docs >= float64(want) {
			t.Logf("[%s] indexer: %.0f documents written (>= %d messages) %v after the check began", bname, docs, want, time.Since(t0).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("[%s] indexer wrote %.0f documents for %d messages within 3 minutes (stoa_index_documents_total at %s)", bname, docs, want, admin)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	if ix.osURL == "" {
		return
	}
	// The documents are in OpenSearch, under this run's prefix.
	var n int
	for {
		n = rmOpenSearchCount(ix.osURL, ix.prefix+"-mail-read")
		if n >= want {
			t.Logf("[%s] OpenSearch %s-mail-read holds %d email documents", bname, ix.prefix, n)
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("[%s] OpenSearch %s-mail-read holds %d email documents for %d messages", bname, ix.prefix, n, want)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// rmOpenSearchCount counts kind=email documents (-1 on error).
func rmOpenSearchCount(url, index string) int {
	if resp, err := http.Post(url+"/"+index+"/_refresh", "application/json", nil); err == nil {
		resp.Body.Close()
	}
	resp, err := http.Post(url+"/"+index+"/_count", "application/json", strings.NewReader(`{"query":{"term":{"kind":"email"}}}`))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var r struct {
		Count int `json:"count"`
	}
	if json.NewDecoder(resp.Body).Decode(&r) != nil {
		return -1
	}
	return r.Count
}

func rmMetric(admin, name string) float64 {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, name+" ") {
			v, _ := strconv.ParseFloat(strings.TrimSpace(l[len(name):]), 64)
			return v
		}
	}
	return -1
}

func rmIsCJK(r rune) bool { return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana) }

// rmTokens splits decoded text into words: runs of letters (and marks);
// CJK runs are returned whole.
func rmTokens(s string) []string {
	var out []string
	var cur []rune
	cjk := false
	flush := func() {
		if len(cur) > 0 {
			out = append(out, string(cur))
		}
		cur = cur[:0]
	}
	for _, r := range s {
		switch {
		case rmIsCJK(r):
			if !cjk {
				flush()
			}
			cjk = true
			cur = append(cur, r)
		case unicode.IsLetter(r) || unicode.Is(unicode.M, r):
			if cjk {
				flush()
			}
			cjk = false
			cur = append(cur, r)
		default:
			flush()
			cjk = false
		}
	}
	flush()
	return out
}

func rmNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// rmPick chooses a word of the kind asked for from one text, or "".
func rmPick(rng *rand.Rand, text string, kind string) string {
	var cands []string
	for _, w := range rmTokens(text) {
		rs := []rune(w)
		switch kind {
		case "cjk":
			if rmIsCJK(rs[0]) && len(rs) >= 3 {
				k := rng.IntN(len(rs) - 1)
				cands = append(cands, string(rs[k:k+2]))
			}
		case "nonascii":
			if !rmIsCJK(rs[0]) && rmNonASCII(w) && len(rs) >= 4 && len(rs) <= 30 {
				cands = append(cands, w)
			}
		default:
			if !rmNonASCII(w) && len(w) >= 6 && len(w) <= 20 {
				cands = append(cands, w)
			}
		}
	}
	if len(cands) == 0 {
		return ""
	}
	return cands[rng.IntN(len(cands))]
}

// rmSearchAll picks ~30 words from account A's mail (and SUBJECT/FROM
// keys), searches them as A (each source message must be found) and
// rare ones as B (nothing of A may be found).
func rmSearchAll(t *testing.T, bname, addr, py string, sentA []rmMsg, uidA map[string]uint32, sentB []rmMsg, uidB map[string]uint32) {
	descA := rmPython(t, py, rmRaws(sentA), true)
	descB := rmPython(t, py, rmRaws(sentB), true)
	// All text of B, lower-cased, to make sure an isolation word is not in B.
	var bText strings.Builder
	for i, d := range descB {
		bText.Write(bytes.ToLower(sentB[i].raw))
		for _, x := range d.Texts {
			bText.WriteString(strings.ToLower(x.Text))
		}
		bText.WriteString(strings.ToLower(d.SubjectDec))
	}
	bAll := bText.String()
	// The index folds case and diacritics (ADR 0008): "résumé" matches
	// "resume". A word is only in A's mail if its folded form is not in B's.
	bFolded := " " + strings.Join(indexer.Analyze(bAll), " ") + " "
	inB := func(w string) bool {
		return strings.Contains(bAll, strings.ToLower(w)) ||
			strings.Contains(bFolded, " "+strings.Join(indexer.Analyze(w), " ")+" ")
	}

	rng := rand.New(rand.NewPCG(30, 8))
	order := rng.Perm(len(sentA))
	want := map[string]int{"cjk": 4, "nonascii": 6, "base64": 5, "quoted-printable": 5, "html": 5, "plain": 5, "SUBJECT": 4, "FROM": 4}
	var words []rmWord
	used := map[string]bool{}
	gaps := map[string]int{}
	for _, i := range order {
		d := descA[i]
		m := sentA[i]
		if d.Error != "" {
			continue
		}
		if _, ok := uidA[m.name]; !ok {
			continue
		}
		add := func(key, word, kind string) {
			if word == "" || used[strings.ToLower(word)] {
				return
			}
			used[strings.ToLower(word)] = true
			want[kind]--
			words = append(words, rmWord{key, word, m.name, kind})
		}
		for _, x := range d.Texts {
			if !rmServerDecodes(x.Charset) {
				// A known gap, reported: the server's charset table
				// lacks it (e.g. UTF-7, RFC 2152), so it indexes the
				// raw bytes; words Python decodes there are not found.
				gaps[strings.ToLower(x.Charset)]++
				continue
			}
			switch {
			case want["cjk"] > 0 && strings.IndexFunc(x.Text, rmIsCJK) >= 0:
				add("TEXT", rmPick(rng, x.Text, "cjk"), "cjk")
			case want["nonascii"] > 0 && rmPick(rng, x.Text, "nonascii") != "":
				add("TEXT", rmPick(rng, x.Text, "nonascii"), "nonascii")
			case want["base64"] > 0 && x.CTE == "base64":
				add("TEXT", rmPick(rng, x.Text, "ascii"), "base64")
			case want["quoted-printable"] > 0 && x.CTE == "quoted-printable":
				add("TEXT", rmPick(rng, x.Text, "ascii"), "quoted-printable")
			case want["html"] > 0 && x.Type == "text/html":
				add("TEXT", rmPick(rng, x.Text, "ascii"), "html")
			case want["plain"] > 0 && x.Type == "text/plain":
				add("TEXT", rmPick(rng, x.Text, "ascii"), "plain")
			}
		}
		if want["SUBJECT"] > 0 {
			add("SUBJECT", rmPick(rng, d.SubjectDec, "ascii"), "SUBJECT")
		}
		if want["FROM"] > 0 && len(d.From) == 1 && d.From[0][1] != "" && d.From[0][2] != "" && !rmNonASCII(d.From[0][1]) {
			add("FROM", d.From[0][1]+"@"+d.From[0][2], "FROM")
		}
	}
	for _, cs := range slices.Sorted(maps.Keys(gaps)) {
		t.Logf("[%s] search: known gap: charset %q is not decoded by the server (go-message/charset); %d text parts of the sample left out of word picking", bname, cs, gaps[cs])
	}
	for k, n := range want {
		if n > 0 {
			t.Logf("[%s] search: %d fewer %s words than wanted (sample has too few)", bname, n, k)
		}
	}
	sa := rmIMAPLogin(t, addr, rmAccountA)
	defer sa.logout()
	sb := rmIMAPLogin(t, addr, rmAccountB)
	defer sb.logout()
	var lat []time.Duration
	found, isolated, isoChecked := 0, 0, 0
	for _, w := range words {
		t0 := time.Now()
		uids := sa.search(w.key, w.word)
		lat = append(lat, time.Since(t0))
		if slices.Contains(uids, uidA[w.src]) {
			found++
		} else {
			t.Errorf("[%s] SEARCH %s %q (%s word of %s, UID %d) as A: not found (got %d UIDs)", bname, w.key, w.word, w.kind, w.src, uidA[w.src], len(uids))
		}
		if w.key == "TEXT" && len([]rune(w.word)) >= 2 && !inB(w.word) {
			isoChecked++
			t0 := time.Now()
			ub := sb.search(w.key, w.word)
			lat = append(lat, time.Since(t0))
			if len(ub) == 0 {
				isolated++
			} else {
				t.Errorf("[%s] SEARCH TEXT %q as B found UIDs %v; the word is only in A's mail", bname, w.word, ub)
			}
		}
	}
	slices.Sort(lat)
	t.Logf("[%s] search: %d/%d words found in their message (recall %.0f%%); isolation: %d/%d words of A find nothing as B",
		bname, found, len(words), 100*float64(found)/float64(max(1, len(words))), isolated, isoChecked)
	if len(lat) > 0 {
		t.Logf("[%s] search latency over %d searches: min %v, median %v, p90 %v, max %v", bname, len(lat),
			lat[0].Round(time.Microsecond), lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*9/10].Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
	}
	var kinds []string
	for _, w := range words {
		kinds = append(kinds, fmt.Sprintf("%s %s %q", w.kind, w.key, w.word))
	}
	t.Logf("[%s] words: %s", bname, strings.Join(kinds, "; "))
	if len(words) < 20 {
		t.Errorf("[%s] only %d search words could be picked", bname, len(words))
	}
	if isoChecked < 5 {
		t.Errorf("[%s] only %d isolation words", bname, isoChecked)
	}
}

func rmRaws(ms []rmMsg) [][]byte {
	var out [][]byte
	for _, m := range ms {
		out = append(out, m.raw)
	}
	return out
}

func rmRound(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Microsecond)
	}
	return out
}
