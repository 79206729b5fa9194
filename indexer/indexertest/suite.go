// Package indexertest is the contract suite every search back end passes:
// indexing from the change log, the in-process search of unindexed mail,
// account isolation, and agreement with a brute-force scan of the corpus.
package indexertest

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stoa-mail/stoa/indexer"
	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/embedded"
	"github.com/stoa-mail/stoa/storage/mailmeta"
	"github.com/stoa-mail/stoa/storage/mailmeta/corpus"
)

// Harness opens a fresh, empty back end; Refresh (optional) makes every
// write searchable (OpenSearch refresh).
type Harness struct {
	Open    func(t *testing.T) indexer.Backend
	Refresh func(t *testing.T)
}

// Run runs the contract.
func Run(t *testing.T, h Harness) {
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, h) })
	t.Run("AccountIsolation", func(t *testing.T) { testIsolation(t, h) })
	t.Run("CorpusMatchesBruteForce", func(t *testing.T) { testCorpus(t, h) })
	t.Run("LargeResults", func(t *testing.T) { LargeResults(t, h) })
	t.Run("SidecarFollowsActivityFeed", func(t *testing.T) { testSidecar(t, h) })
}

// LargeResults writes documents straight to the back end (no store):
// more hits than one page of results (10,000), UIDs with gaps of every
// size up to the top of the 32-bit range, two mailboxes and a second
// account that must never show through.
func LargeResults(t *testing.T, h Harness) {
	const n = 12000
	b := h.Open(t)
	const acct, other = "large-acct", "large-other"
	uids := make([]uint32, n)
	for i := range uids {
		switch {
		case i < 9000:
			uids[i] = uint32(i + 1) // dense
		case i < n-2:
			uids[i] = uids[i-1] + 1 + uint32(i*7919%40000) // gaps of 1 to 3 varint bytes
		case i == n-2:
			uids[i] = 1 << 31
		default:
			uids[i] = 1<<32 - 1 // the largest UID (RFC 9051 §2.3.1.1)
		}
	}
	uid := func(i int) uint32 { return uids[i] }
	var all, third []uint32
	for start := 0; start < n; start += 2000 {
		var bt indexer.Batch
		for i := start; i < start+2000; i++ {
			body := "common"
			if i%3 == 0 {
				body += " third"
			}
			if i == 4242 {
				body += " rarissimo"
			}
			d := &indexer.Doc{Kind: indexer.KindEmail, Account: acct, Mailbox: 1, UID: uid(i), ModSeq: uint64(i + 1), Body: body}
			bt.Docs = append(bt.Docs, d)
			all = append(all, d.UID)
			if i%3 == 0 {
				third = append(third, d.UID)
			}
			if i%20 == 0 { // the same words in another mailbox and another account
				bt.Docs = append(bt.Docs, &indexer.Doc{Kind: indexer.KindEmail, Account: acct, Mailbox: 2, UID: uint32(i + 1), ModSeq: uint64(i + 1), Body: body})
			}
		}
		bt.Checkpoint = uint64(start + 2000)
		must(t, b.Apply(ctx, acct, &bt))
		var ob indexer.Batch
		for i := start; i < start+2000; i += 20 {
			ob.Docs = append(ob.Docs, &indexer.Doc{Kind: indexer.KindEmail, Account: other, Mailbox: 1, UID: uint32(n + i + 1), ModSeq: 1, Body: "common third rarissimo"})
		}
		ob.Checkpoint = 1
		must(t, b.Apply(ctx, other, &ob))
	}
	if h.Refresh != nil {
		h.Refresh(t)
	}
	check := func(q indexer.Query, want []uint32) {
		t.Helper()
		got, cp, err := b.Search(ctx, acct, 1, q)
		must(t, err)
		if cp != n {
			t.Errorf("checkpoint %d, want %d", cp, n)
		}
		if len(got) != len(want) {
			t.Fatalf("Search(%+v): %d UIDs, want %d", q, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("Search(%+v): UID #%d is %d, want %d", q, i, got[i], want[i])
			}
		}
	}
	check(indexer.Text("common"), all)
	check(indexer.Body("third"), third)
	check(indexer.Text("rarissimo"), []uint32{uid(4242)})
	check(indexer.Not(indexer.Text("third")), slices.DeleteFunc(slices.Clone(all), func(u uint32) bool {
		_, found := slices.BinarySearch(third, u)
		return found
	}))
	check(indexer.Text("absent"), nil)
}

var ctx = context.Background()

// NewStore opens an embedded store in a temporary directory.
func NewStore(t testing.TB) *storage.Store {
	t.Helper()
	e, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s := storage.New(e, storage.Config{PasswordCost: storage.PasswordCost{Time: 1, MemoryK: 64, Threads: 1}})
	t.Cleanup(func() { s.Close() })
	return s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type env struct {
	t  *testing.T
	h  Harness
	s  *storage.Store
	b  indexer.Backend
	ix *indexer.Indexer
	se *indexer.Searcher
}

func newEnv(t *testing.T, h Harness) *env {
	s := NewStore(t)
	b := h.Open(t)
	return &env{t: t, h: h, s: s, b: b, ix: &indexer.Indexer{Store: s, Backend: b, BatchSize: 50},
		se: &indexer.Searcher{Store: s, Backend: b}}
}

func (e *env) account(login string) (string, uint32) {
	a, err := e.s.AddAccount(ctx, login, "", storage.AccountOptions{})
	must(e.t, err)
	mb, err := e.s.MailboxByName(ctx, a.ID, "INBOX")
	must(e.t, err)
	return a.ID, mb.ID
}

func (e *env) add(acct string, mb uint32, raw string) uint32 {
	e.t.Helper()
	if !strings.Contains(raw, "\r\n") {
		raw = strings.ReplaceAll(raw, "\n", "\r\n")
	}
	r, err := e.s.Append(ctx, acct, mb, []byte(raw), nil, time.Time{})
	must(e.t, err)
	return r.UID
}

func (e *env) sync(accts ...string) {
	e.t.Helper()
	for _, a := range accts {
		must(e.t, e.ix.Sync(ctx, a))
	}
	if e.h.Refresh != nil {
		e.h.Refresh(e.t)
	}
}

func (e *env) expect(acct string, mb uint32, q indexer.Query, want ...uint32) {
	e.t.Helper()
	got, err := e.se.Search(ctx, acct, mb, q)
	must(e.t, err)
	if fmt.Sprint(got) != fmt.Sprint(nonNil(want)) {
		e.t.Errorf("Search(%+v) = %v, want %v", q, got, want)
	}
}

func nonNil(u []uint32) []uint32 {
	if u == nil {
		return []uint32{}
	}
	return u
}

func (e *env) docIDs(acct string) []string {
	var ids []string
	must(e.t, e.b.DocIDs(ctx, acct, func(id string) error { ids = append(ids, id); return nil }))
	sort.Strings(ids)
	return ids
}

const (
	msgMunich = `From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jurgen@example.de>
To: Alice <alice@example.org>
Cc: team@lists.example.org
Subject: =?iso-8859-1?q?Quarterly_r=E9sum=E9?=
Message-ID: <q1@example.de>
X-Ticket: ABC-1234 open
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Gr=FC=DFe aus M=FCnchen, see the figures.
`
	msgHello = `From: Bob <bob@example.net>
To: alice@example.org
Subject: hello
Message-ID: <h1@example.net>

hello world, a plain note
`
	msgHTML = `From: Billing <billing@shop.example>
To: alice@example.org
Subject: Your invoice
Content-Type: multipart/alternative; boundary=b

--b
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PHA+SW52b2ljZSA8Yj5udW1iZXI8L2I+IDQyLCB0b3RhbCDigqwxMDA8L3A+
--b--
`
	msgAttach = `From: Carol <carol@example.com>
To: alice@example.org
Bcc: hidden@example.org
Subject: photos
Content-Type: multipart/mixed; boundary=m

--m
Content-Type: text/plain

see attached
--m
Content-Type: image/jpeg; name="beach-holiday.jpg"
Content-Disposition: attachment; filename="beach-holiday.jpg"
Content-Transfer-Encoding: base64

/9j/4AAQ
--m--
`
)

// An indexer in another process (the sidecar) learns of changes only from
// the store's activity feed: another Store over the same engine writes,
// the indexer gets no notification and sweeps every account only once,
// at start (ADR 0009).
func testSidecar(t *testing.T, h Harness) {
	e := newEnv(t, h)
	writer := storage.New(e.s.Engine(), storage.Config{PasswordCost: storage.PasswordCost{Time: 1, MemoryK: 64, Threads: 1},
		ActivityFlush: 20 * time.Millisecond})
	ix := &indexer.Indexer{Store: e.s, Backend: e.b, PollInterval: 20 * time.Millisecond, SweepInterval: time.Hour,
		FeedOverlap: time.Second}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); ix.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if e.h.Refresh != nil {
				e.h.Refresh(t)
			}
			if ok() {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not seen by the indexer after 30 s", what)
			}
		}
	}
	indexed := func(acct string, mb uint32, word string, uid uint32) func() bool {
		return func() bool {
			got, _, err := e.b.Search(ctx, acct, mb, indexer.Text(word)) // the index alone
			must(t, err)
			return fmt.Sprint(got) == fmt.Sprint([]uint32{uid})
		}
	}
	a, err := writer.AddAccount(ctx, "sidecar@example.org", "", storage.AccountOptions{})
	must(t, err)
	inbox, err := writer.MailboxByName(ctx, a.ID, "INBOX")
	must(t, err)
	r1, err := writer.Append(ctx, a.ID, inbox.ID, []byte("Subject: one\r\n\r\nzanzibar\r\n"), nil, time.Time{})
	must(t, err)
	eventually("first delivery", indexed(a.ID, inbox.ID, "zanzibar", r1.UID))
	// Long after the start-up sweep: only the feed can tell.
	r2, err := writer.Append(ctx, a.ID, inbox.ID, []byte("Subject: two\r\n\r\nquokka\r\n"), nil, time.Time{})
	must(t, err)
	eventually("second delivery", indexed(a.ID, inbox.ID, "quokka", r2.UID))
	_, err = writer.StoreFlags(ctx, a.ID, inbox.ID, []uint32{r1.UID}, storage.FlagsAdd, []string{storage.FlagDeleted}, storage.StoreOptions{})
	must(t, err)
	if x, err := writer.Expunge(ctx, a.ID, inbox.ID, []uint32{r1.UID}); err != nil || len(x.UIDs) != 1 {
		t.Fatalf("expunge: %v %v", x, err)
	}
	eventually("expunge", func() bool {
		got, _, err := e.b.Search(ctx, a.ID, inbox.ID, indexer.Text("zanzibar"))
		must(t, err)
		return len(got) == 0
	})
	must(t, writer.DeleteAccount(ctx, a.ID))
	eventually("account deletion", func() bool {
		cp, err := e.b.Checkpoint(ctx, a.ID)
		must(t, err)
		return cp == 0 && len(e.docIDs(a.ID)) == 0
	})
}

func testLifecycle(t *testing.T, h Harness) {
	e := newEnv(t, h)
	a, inbox := e.account("alice@example.org")
	m1 := e.add(a, inbox, msgMunich)
	m2 := e.add(a, inbox, msgHello)
	m3 := e.add(a, inbox, msgHTML)
	m4 := e.add(a, inbox, msgAttach)

	check := func(stage string) {
		t.Helper()
		t.Logf("stage %s", stage)
		e.expect(a, inbox, indexer.Text("münchen"), m1)
		e.expect(a, inbox, indexer.Text("MUNCHEN"), m1)
		e.expect(a, inbox, indexer.Body("grüße aus"), m1)
		e.expect(a, inbox, indexer.Subject("resume"), m1)
		e.expect(a, inbox, indexer.From("müller"), m1)
		e.expect(a, inbox, indexer.From("example.de"), m1)
		e.expect(a, inbox, indexer.From("jurgen@example.de"), m1)
		e.expect(a, inbox, indexer.Cc("lists"), m1)
		e.expect(a, inbox, indexer.To("alice"), m1, m2, m3, m4)
		e.expect(a, inbox, indexer.Bcc("hidden"), m4)
		e.expect(a, inbox, indexer.Header("X-Ticket", "abc-1234"), m1)
		e.expect(a, inbox, indexer.Header("x-ticket", "open"), m1)
		e.expect(a, inbox, indexer.Header("X-Ticket", ""), m1)
		e.expect(a, inbox, indexer.Header("Subject", "open"))
		e.expect(a, inbox, indexer.Text("invoice number 42"), m3)
		e.expect(a, inbox, indexer.Body("€100"), m3)
		e.expect(a, inbox, indexer.Text("beach-holiday.jpg"), m4)
		e.expect(a, inbox, indexer.Body("holiday"), m4)
		e.expect(a, inbox, indexer.Text("hello"), m2)
		e.expect(a, inbox, indexer.Text(""), m1, m2, m3, m4)
		e.expect(a, inbox, indexer.Text("!!!"))
		e.expect(a, inbox, indexer.And(indexer.To("alice"), indexer.Not(indexer.Text("hello"))), m1, m3, m4)
		e.expect(a, inbox, indexer.Or(indexer.Subject("photos"), indexer.From("bob")), m2, m4)
		e.expect(a, inbox, indexer.Text("nothing-like-this"))
	}
	check("unindexed (in-process match)")
	if _, err := (&indexer.Searcher{Store: e.s, Backend: e.b, MaxPending: 3}).Search(ctx, a, inbox, indexer.Text("x")); err != indexer.ErrIndexBehind {
		t.Fatalf("4 unindexed messages, MaxPending 3: err %v, want ErrIndexBehind", err)
	}
	e.sync(a)
	check("indexed")
	if ids := e.docIDs(a); len(ids) != 4 {
		t.Fatalf("doc ids %v", ids)
	}

	// Flags re-index the document; expunge removes it, also before Sync.
	_, err := e.s.StoreFlags(ctx, a, inbox, []uint32{m1, m2}, storage.FlagsAdd, []string{storage.FlagDeleted}, storage.StoreOptions{})
	must(t, err)
	_, err = e.s.StoreFlags(ctx, a, inbox, []uint32{m1}, storage.FlagsRemove, []string{storage.FlagDeleted}, storage.StoreOptions{})
	must(t, err)
	_, err = e.s.Expunge(ctx, a, inbox, nil)
	must(t, err)
	e.expect(a, inbox, indexer.Text("hello"))
	e.expect(a, inbox, indexer.Text("münchen"), m1)
	e.sync(a)
	e.expect(a, inbox, indexer.Text("hello"))
	if ids := e.docIDs(a); len(ids) != 3 {
		t.Fatalf("after expunge: doc ids %v", ids)
	}

	// Move to another mailbox, then delete that mailbox.
	arch, err := e.s.CreateMailbox(ctx, a, "Old", "")
	must(t, err)
	cr, err := e.s.Move(ctx, a, inbox, []uint32{m3}, arch.ID)
	must(t, err)
	e.expect(a, inbox, indexer.Text("invoice"))
	e.expect(a, arch.ID, indexer.Text("invoice"), cr.Dst...)
	e.sync(a)
	e.expect(a, arch.ID, indexer.Text("invoice"), cr.Dst...)
	must(t, e.s.DeleteMailbox(ctx, a, "Old"))
	e.expect(a, arch.ID, indexer.Text("invoice"))
	e.sync(a)
	e.expect(a, arch.ID, indexer.Text("invoice"))
	want := e.docIDs(a)
	if len(want) != 2 {
		t.Fatalf("after mailbox delete: %v", want)
	}

	// Replaying the whole log (as after a crash before the checkpoint)
	// and rebuilding give the same documents.
	must(t, e.b.Apply(ctx, a, &indexer.Batch{Checkpoint: 1}))
	e.sync(a)
	if got := e.docIDs(a); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replay: %v, want %v", got, want)
	}
	must(t, e.ix.Rebuild(ctx, a, nil))
	e.sync(a)
	if got := e.docIDs(a); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rebuild: %v, want %v", got, want)
	}
	check2 := func() {
		e.expect(a, inbox, indexer.Text("münchen"), m1)
		e.expect(a, inbox, indexer.Subject("photos"), m4)
	}
	check2()
	cp, err := e.b.Checkpoint(ctx, a)
	must(t, err)
	st, _ := e.s.State(ctx, a)
	if cp != st.ModSeq {
		t.Fatalf("checkpoint %d, state modseq %d", cp, st.ModSeq)
	}

	// Account deletion drops its documents.
	must(t, e.s.DeleteAccount(ctx, a))
	must(t, e.ix.DropDeleted(ctx))
	if h.Refresh != nil {
		h.Refresh(t)
	}
	if ids := e.docIDs(a); len(ids) != 0 {
		t.Fatalf("after account deletion: %v", ids)
	}
	cps, err := e.b.Checkpoints(ctx)
	must(t, err)
	if _, ok := cps[a]; ok {
		t.Fatalf("checkpoint of a deleted account remains")
	}
}

func testIsolation(t *testing.T, h Harness) {
	e := newEnv(t, h)
	a, ainbox := e.account("a@example.org")
	b, binbox := e.account("b@example.org")
	a1 := e.add(a, ainbox, "From: x@example.org\nSubject: alpha\n\nalpha shared words\n")
	e.add(b, binbox, "From: y@example.org\nSubject: alpha zebra\n\nalpha zebra secret account:* \" OR 1=1\n")
	e.add(b, binbox, "From: y@example.org\nSubject: zebra\n\n{\"match_all\":{}} zebra\n")
	if ainbox != binbox {
		t.Logf("mailbox ids differ (%d, %d): the account filter is still what isolates", ainbox, binbox)
	}
	attacks := []string{
		`zebra`, `x" OR account:*`, `*`, `account:*`, `" OR ""="`, `{"match_all":{}}`,
		`zebra) OR (account:` + b, `\" OR zebra`, `*:*`, b, `secret`, "zebra\x00", `"}},{"match_all":{}}]}}`,
	}
	for pass := 0; pass < 2; pass++ {
		for _, s := range attacks {
			for _, q := range []indexer.Query{indexer.Text(s), indexer.Body(s), indexer.Subject(s), indexer.From(s),
				indexer.Header(s, s), indexer.Header("Subject", s), indexer.Or(indexer.Text(s), indexer.Text("zebra"))} {
				got, err := e.se.Search(ctx, a, ainbox, q)
				if err != nil {
					t.Fatalf("%q: %v", s, err)
				}
				for _, u := range got {
					if u != a1 {
						t.Fatalf("query %+v on account a returned uid %d (not a's)", q, u)
					}
				}
				if len(got) > 0 && strings.Contains(s, "zebra") && q.Op != indexer.OpOr {
					t.Fatalf("query %+v found b's word in a", q)
				}
			}
		}
		// NOT of something absent is every message of a's mailbox only.
		e.expect(a, ainbox, indexer.Not(indexer.Text("zebra")), a1)
		e.sync(a, b)
	}
}

// fields of one message for the brute-force scan, from mailmeta directly.
type bruteMsg struct {
	uid                          uint32
	headers, body, subject, from []field
	to, cc                       []field
}

// field is one analysed value with the positions of each term.
type field struct {
	toks []string
	pos  map[string][]int
}

func analyzeAll(vs ...string) []field {
	var out []field
	for _, v := range vs {
		f := field{toks: indexer.Analyze(v), pos: map[string][]int{}}
		for i, t := range f.toks {
			f.pos[t] = append(f.pos[t], i)
		}
		out = append(out, f)
	}
	return out
}

func addrStrings(as []mailmeta.Addr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Name+" <"+a.Email+">")
	}
	return out
}

// has reports whether terms occur consecutively in one of the fields.
func has(fields []field, terms []string) bool {
	if len(terms) == 0 {
		return false
	}
	for _, f := range fields {
	next:
		for _, i := range f.pos[terms[0]] {
			if i+len(terms) > len(f.toks) {
				continue
			}
			for j, t := range terms {
				if f.toks[i+j] != t {
					continue next
				}
			}
			return true
		}
	}
	return false
}

func testCorpus(t *testing.T, h Harness) {
	msgs := corpus.Sample(t, 300, 7)
	e := newEnv(t, h)
	a, inbox := e.account("corpus@example.org")
	lim := mailmeta.DefaultLimits()
	var brute []bruteMsg
	type wordSrc struct {
		word, kind string
	}
	var words []wordSrc
	r := rand.New(rand.NewSource(11))
	pick := func(text, kind string, n int) {
		toks := indexer.Tokenize(text)
		for i := 0; i < n && len(toks) > 0; i++ {
			sp := toks[r.Intn(len(toks))]
			w := text[sp.Start:sp.End]
			if kind == "non-ascii" && isASCII(w) {
				continue
			}
			words = append(words, wordSrc{w, kind})
		}
	}
	for _, m := range msgs {
		uid := e.add(a, inbox, string(m.Raw))
		meta := mailmeta.Parse(m.Raw, lim)
		tx := mailmeta.ExtractText(m.Raw, lim, indexer.TextLimit)
		var hv []string
		for _, hf := range meta.Headers {
			hv = append(hv, indexer.DecodeHeader(hf.Value))
		}
		bm := bruteMsg{uid: uid, headers: analyzeAll(hv...),
			body:    analyzeAll(append([]string{tx.Plain, tx.HTML}, tx.AttachmentNames...)...),
			subject: analyzeAll(meta.Subject), from: analyzeAll(addrStrings(meta.From)...),
			to: analyzeAll(addrStrings(meta.To)...), cc: analyzeAll(addrStrings(meta.Cc)...)}
		brute = append(brute, bm)
		pick(tx.Plain, "plain", 1)
		pick(tx.HTML, "html", 1)
		pick(tx.Plain+" "+tx.HTML+" "+meta.Subject, "non-ascii", 3)
		pick(meta.Subject, "subject", 1)
		// Words of base64 and quoted-printable text parts, decoded alone.
		walkParts(meta.Body, func(p *mailmeta.Part) {
			if p.Type == "text" && (p.Encoding == "base64" || p.Encoding == "quoted-printable") && p.End > p.HeaderStart {
				sub := mailmeta.ExtractText(m.Raw[p.HeaderStart:p.End], lim, 1<<16)
				pick(sub.Plain+" "+sub.HTML, p.Encoding, 2)
			}
		})
	}
	kinds := map[string]int{}
	for _, w := range words {
		kinds[w.kind]++
	}
	t.Logf("%d messages, %d words by source %v", len(msgs), len(words), kinds)
	for _, k := range []string{"plain", "html", "non-ascii", "base64", "quoted-printable"} {
		if kinds[k] == 0 {
			t.Errorf("the sample has no %s words", k)
		}
	}
	e.sync(a)
	cp, err := e.b.Checkpoint(ctx, a)
	must(t, err)
	if st, _ := e.s.State(ctx, a); cp != st.ModSeq {
		t.Fatalf("checkpoint %d behind %d", cp, st.ModSeq)
	}
	type qcase struct {
		q   indexer.Query
		sel func(b bruteMsg) [][]string
	}
	bad := 0
	run := func(q indexer.Query, want func(b bruteMsg) bool) {
		var exp []uint32
		for _, b := range brute {
			if want(b) {
				exp = append(exp, b.uid)
			}
		}
		got, _, err := e.b.Search(ctx, a, inbox, q) // the index alone
		must(t, err)
		sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
		if fmt.Sprint(nonNil(got)) != fmt.Sprint(nonNil(exp)) {
			bad++
			if bad < 15 {
				t.Errorf("%+v: index %v, brute force %v", q, got, exp)
			}
		}
	}
	text := func(b bruteMsg) []field {
		return append(append([]field{}, b.headers...), b.body...)
	}
	for i, w := range words {
		terms := indexer.Analyze(w.word)
		run(indexer.Text(w.word), func(b bruteMsg) bool { return has(text(b), terms) })
		up := strings.ToUpper(w.word)
		upTerms := indexer.Analyze(up)
		run(indexer.Body(up), func(b bruteMsg) bool { return has(b.body, upTerms) })
		if i%3 == 0 {
			run(indexer.Subject(w.word), func(b bruteMsg) bool { return has(b.subject, terms) })
			run(indexer.From(w.word), func(b bruteMsg) bool { return has(b.from, terms) })
			run(indexer.Or(indexer.To(w.word), indexer.Cc(w.word)), func(b bruteMsg) bool { return has(b.to, terms) || has(b.cc, terms) })
		}
		if i%4 == 0 && i+1 < len(words) {
			t2 := indexer.Analyze(words[i+1].word)
			run(indexer.And(indexer.Text(w.word), indexer.Not(indexer.Body(words[i+1].word))),
				func(b bruteMsg) bool { return has(text(b), terms) && !has(b.body, t2) })
		}
	}
	// Two-word phrases from message bodies.
	for i := 0; i < 40; i++ {
		b := brute[r.Intn(len(brute))]
		if len(b.body) == 0 || len(b.body[0].toks) < 2 {
			continue
		}
		f := b.body[0].toks
		j := r.Intn(len(f) - 1)
		ph := f[j] + " " + f[j+1]
		terms := indexer.Analyze(ph)
		run(indexer.Body(ph), func(b bruteMsg) bool { return has(b.body, terms) })
	}
	if bad > 0 {
		t.Errorf("%d queries disagree with the brute-force scan", bad)
	}
}

func walkParts(p *mailmeta.Part, fn func(*mailmeta.Part)) {
	if p == nil {
		return
	}
	fn(p)
	for _, c := range p.Children {
		walkParts(c, fn)
	}
	walkParts(p.Message, fn)
}

func isASCII(s string) bool { return utf8.RuneCountInString(s) == len(s) }
