// Package storagetest is the contract every storage engine passes (DESIGN
// §2.10). It is written once and run by each engine's tests: the embedded
// engine on a temporary Pebble database, the Cassandra engine on a real
// Cassandra.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/failpoint"
)

// Harness tells the suite how to make engines.
type Harness struct {
	// Open returns a new, empty engine; the suite closes it.
	Open func(t testing.TB) storage.Engine
	// Reopen closes e as a crash would leave it and opens the same data
	// again, as a restarted process would.
	Reopen func(t testing.TB, e storage.Engine) storage.Engine
	// Failpoints are the engine's own crash points, tried besides the
	// store's (e.g. between the conditional update and the row writes).
	Failpoints []string
	// Scale is the size of the large-mailbox test (default 100,000).
	Scale int
	// Writers is the number of concurrent writers in the race tests (default 16).
	Writers int
}

// testCost keeps argon2 cheap in tests.
var testCost = storage.PasswordCost{Time: 1, MemoryK: 64, Threads: 1}

func newStore(e storage.Engine) *storage.Store {
	return storage.New(e, storage.Config{PasswordCost: testCost})
}

// Run runs the whole contract.
func Run(t *testing.T, h Harness) {
	if h.Scale == 0 {
		h.Scale = 100_000
	}
	if h.Writers == 0 {
		h.Writers = 16
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"Directory", testDirectory},
		{"Mailboxes", testMailboxes},
		{"RenameInbox", testRenameInbox},
		{"DeliverAndDedupe", testDeliver},
		{"Flags", testFlags},
		{"CopyMoveExpunge", testCopyMoveExpunge},
		{"ConcurrentWritersOneMailbox", testConcurrentUIDs},
		{"RandomMixCountsExact", testRandomMix},
		{"Quota", testQuota},
		{"Threads", testThreads},
		{"GarbageCollection", testGC},
		{"GarbageCollectionRacesDelivery", testGCRace},
		{"OutboundQueue", testQueue},
		{"ActivityFeed", testActivity},
		{"CrashSafety", testCrash},
		{"LargeMailboxPaging", testScale},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

func open(t *testing.T, h Harness) (*storage.Store, storage.Engine) {
	t.Helper()
	e := h.Open(t)
	t.Cleanup(func() { e.Close() })
	return newStore(e), e
}

func ctx() context.Context { return context.Background() }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var msgSeq int64
var msgMu sync.Mutex

// Msg returns a unique small RFC 5322 message.
func Msg(subject string) []byte {
	msgMu.Lock()
	msgSeq++
	n := msgSeq
	msgMu.Unlock()
	return []byte(fmt.Sprintf("From: Alice <alice@example.org>\r\nTo: bob@example.test\r\n"+
		"Subject: %s\r\nMessage-ID: <m%d.%d@example.org>\r\nDate: Mon, 2 Jan 2026 15:04:05 +0000\r\n\r\nbody %d\r\n",
		subject, n, time.Now().UnixNano(), n))
}

func newAccount(t testing.TB, s *storage.Store, login string) storage.Account {
	t.Helper()
	a, err := s.AddAccount(ctx(), login, "secret", storage.AccountOptions{})
	must(t, err)
	return a
}

func inbox(t testing.TB, s *storage.Store, acct string) storage.Mailbox {
	t.Helper()
	m, err := s.MailboxByName(ctx(), acct, "INBOX")
	must(t, err)
	return m
}

func appendN(t testing.TB, s *storage.Store, acct string, mb uint32, n int, flags ...string) []uint32 {
	t.Helper()
	var uids []uint32
	for i := 0; i < n; i++ {
		r, err := s.Append(ctx(), acct, mb, Msg(fmt.Sprintf("msg %d", i)), flags, time.Time{})
		must(t, err)
		uids = append(uids, r.UID)
	}
	return uids
}

// verifyClean fails if Verify finds any derived value out of line with the truth.
func verifyClean(t testing.TB, s *storage.Store, acct string) {
	t.Helper()
	p, err := s.Verify(ctx(), acct, false)
	must(t, err)
	if len(p) > 0 {
		t.Fatalf("account %s not consistent:\n%s", acct, strings.Join(p, "\n"))
	}
}

func testDirectory(t *testing.T, h Harness) {
	s, _ := open(t, h)
	a := newAccount(t, s, "Bob@Example.TEST")
	if a.Login != "bob@example.test" {
		t.Fatalf("login %q", a.Login)
	}
	if _, err := s.AddAccount(ctx(), "bob@example.test", "x", storage.AccountOptions{}); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("duplicate login: %v", err)
	}
	if _, err := s.Authenticate(ctx(), "bob@example.test", "secret"); err != nil {
		t.Fatalf("auth: %v", err)
	}
	if _, err := s.Authenticate(ctx(), "bob@example.test", "wrong"); !errors.Is(err, storage.ErrAuthFailed) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := s.Authenticate(ctx(), "nobody@example.test", "secret"); !errors.Is(err, storage.ErrAuthFailed) {
		t.Fatalf("unknown user: %v", err)
	}
	app, err := s.AddAppPassword(ctx(), a.ID, "phone")
	must(t, err)
	if _, err := s.Authenticate(ctx(), "bob@example.test", app); err != nil {
		t.Fatalf("app password: %v", err)
	}
	must(t, s.AddAlias(ctx(), a.ID, "robert@example.test"))
	other := newAccount(t, s, "carol@example.test")
	if err := s.AddAlias(ctx(), other.ID, "robert@example.test"); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("alias stolen: %v", err)
	}
	cases := []struct {
		addr, acct, detail string
		err                error
	}{
		{"bob@example.test", a.ID, "", nil},
		{"BOB@EXAMPLE.TEST", a.ID, "", nil},
		{"robert@example.test", a.ID, "", nil},
		{"bob+lists@example.test", a.ID, "lists", nil},
		{"nobody@example.test", "", "", storage.ErrNoSuchUser},
		{"bob@elsewhere.test", "", "", storage.ErrNotLocal},
		{"bob@example.test@evil.test", "", "", storage.ErrNotLocal},
	}
	for _, c := range cases {
		r, err := s.ResolveRecipient(ctx(), c.addr)
		if !errors.Is(err, c.err) || r.AccountID != c.acct || r.Detail != c.detail {
			t.Errorf("resolve %s = %+v, %v; want %s %q %v", c.addr, r, err, c.acct, c.detail, c.err)
		}
	}
	must(t, s.SetCatchAll(ctx(), "example.test", other.ID))
	if r, err := s.ResolveRecipient(ctx(), "nobody@example.test"); err != nil || r.AccountID != other.ID {
		t.Fatalf("catch-all: %+v %v", r, err)
	}
	if !s.OwnsAddress(ctx(), a, "robert@example.test") || !s.OwnsAddress(ctx(), a, "bob+x@example.test") || s.OwnsAddress(ctx(), a, "carol@example.test") {
		t.Fatal("OwnsAddress wrong")
	}
	must(t, s.DeleteAccount(ctx(), other.ID))
	if _, err := s.AccountByAddress(ctx(), "carol@example.test"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleted account still found: %v", err)
	}
}

func names(boxes []storage.Mailbox) []string {
	var out []string
	for _, b := range boxes {
		out = append(out, b.Name)
	}
	return out
}

func testMailboxes(t *testing.T, h Harness) {
	s, _ := open(t, h)
	a := newAccount(t, s, "m@example.test")
	boxes, err := s.Mailboxes(ctx(), a.ID)
	must(t, err)
	roles := map[string]string{}
	for _, b := range boxes {
		roles[b.Role] = b.Name
	}
	for _, r := range []string{storage.RoleInbox, storage.RoleSent, storage.RoleDrafts, storage.RoleTrash, storage.RoleJunk, storage.RoleArchive} {
		if roles[r] == "" {
			t.Errorf("no mailbox with role %s in %v", r, names(boxes))
		}
	}
	_, err = s.CreateMailbox(ctx(), a.ID, "Work/2026/Q1", "")
	must(t, err)
	for _, n := range []string{"Work", "Work/2026", "Work/2026/Q1"} {
		if _, err := s.MailboxByName(ctx(), a.ID, n); err != nil {
			t.Errorf("parent %s not created: %v", n, err)
		}
	}
	if _, err := s.CreateMailbox(ctx(), a.ID, "Work", ""); !errors.Is(err, storage.ErrExists) {
		t.Errorf("duplicate create: %v", err)
	}
	if _, err := s.CreateMailbox(ctx(), a.ID, "inbox", ""); !errors.Is(err, storage.ErrExists) {
		t.Errorf("create inbox in lower case: %v", err)
	}
	for _, bad := range []string{"", "/x", "x/", "a//b", "bad\x01name"} {
		if _, err := s.CreateMailbox(ctx(), a.ID, bad, ""); !errors.Is(err, storage.ErrInvalidName) {
			t.Errorf("create %q: %v", bad, err)
		}
	}
	q1, _ := s.MailboxByName(ctx(), a.ID, "Work/2026/Q1")
	appendN(t, s, a.ID, q1.ID, 3)
	must(t, s.RenameMailbox(ctx(), a.ID, "Work", "Job"))
	moved, err := s.MailboxByName(ctx(), a.ID, "Job/2026/Q1")
	must(t, err)
	if moved.ID != q1.ID || moved.UIDValidity != q1.UIDValidity || moved.Messages != 3 {
		t.Errorf("rename lost identity: %+v vs %+v", moved, q1)
	}
	if _, err := s.MailboxByName(ctx(), a.ID, "Work/2026"); !errors.Is(err, storage.ErrNoSuchMailbox) {
		t.Errorf("old child name still there: %v", err)
	}
	if err := s.RenameMailbox(ctx(), a.ID, "Job", "Job/sub"); !errors.Is(err, storage.ErrCannot) {
		t.Errorf("rename into own child: %v", err)
	}
	if err := s.RenameMailbox(ctx(), a.ID, "Nope", "X"); !errors.Is(err, storage.ErrNoSuchMailbox) {
		t.Errorf("rename missing: %v", err)
	}
	if err := s.DeleteMailbox(ctx(), a.ID, "Job"); !errors.Is(err, storage.ErrHasChildren) {
		t.Errorf("delete with children: %v", err)
	}
	if err := s.DeleteMailbox(ctx(), a.ID, "INBOX"); !errors.Is(err, storage.ErrCannot) {
		t.Errorf("delete INBOX: %v", err)
	}
	st0, _ := s.State(ctx(), a.ID)
	must(t, s.DeleteMailbox(ctx(), a.ID, "Job/2026/Q1"))
	st1, _ := s.State(ctx(), a.ID)
	if st1.UsedMessages != st0.UsedMessages-3 {
		t.Errorf("delete did not release usage: %d -> %d", st0.UsedMessages, st1.UsedMessages)
	}
	again, err := s.CreateMailbox(ctx(), a.ID, "Job/2026/Q1", "")
	must(t, err)
	if again.UIDValidity == q1.UIDValidity || again.ID == q1.ID {
		t.Errorf("re-created mailbox reuses UIDVALIDITY %d / id %d (RFC 9051 §2.3.1.1)", again.UIDValidity, again.ID)
	}
	if again.UIDNext != 1 || again.Messages != 0 {
		t.Errorf("re-created mailbox not empty: %+v", again)
	}
	// Subscriptions need not name existing mailboxes.
	must(t, s.Subscribe(ctx(), a.ID, "Job", true))
	must(t, s.Subscribe(ctx(), a.ID, "Ghost", true))
	must(t, s.Subscribe(ctx(), a.ID, "Ghost", false))
	subs, err := s.Subscriptions(ctx(), a.ID)
	must(t, err)
	if strings.Join(subs, ",") != "Job" {
		t.Errorf("subscriptions %v", subs)
	}
	verifyClean(t, s, a.ID)
}

func testRenameInbox(t *testing.T, h Harness) {
	s, _ := open(t, h)
	a := newAccount(t, s, "ri@example.test")
	appendN(t, s, a.ID, inbox(t, s, a.ID).ID, 4)
	in := inbox(t, s, a.ID)
	must(t, s.RenameMailbox(ctx(), a.ID, "INBOX", "Old"))
	in2 := inbox(t, s, a.ID)
	if in2.ID != in.ID || in2.UIDValidity != in.UIDValidity || in2.Messages != 0 || in2.UIDNext != in.UIDNext {
		t.Errorf("INBOX after rename: %+v (before %+v)", in2, in)
	}
	old, err := s.MailboxByName(ctx(), a.ID, "Old")
	must(t, err)
	if old.Messages != 4 {
		t.Errorf("Old has %d messages", old.Messages)
	}
	verifyClean(t, s, a.ID)
}

func testDeliver(t *testing.T, h Harness) {
	s, e := open(t, h)
	a := newAccount(t, s, "d1@example.test")
	b := newAccount(t, s, "d2@example.test")
	raw := Msg("to many")
	d := storage.Delivery{ID: "smtp-1", Raw: raw, Targets: []storage.Target{{Account: a.ID}, {Account: b.ID}, {Account: b.ID, Role: storage.RoleJunk}}}
	res, err := s.Deliver(ctx(), d)
	must(t, err)
	for _, r := range res {
		if r.Err != nil || r.UID != 1 || r.Duplicate {
			t.Fatalf("deliver result %+v", r)
		}
	}
	// The retry of the same delivery changes nothing.
	res2, err := s.Deliver(ctx(), d)
	must(t, err)
	for i, r := range res2 {
		if !r.Duplicate || r.UID != res[i].UID || r.Mailbox != res[i].Mailbox {
			t.Fatalf("retry %d: %+v, first %+v", i, r, res[i])
		}
	}
	ib := inbox(t, s, b.ID)
	if ib.Messages != 1 || ib.UIDNext != 2 {
		t.Fatalf("retry delivered twice: %+v", ib)
	}
	ea, _ := s.Emails(ctx(), a.ID, inbox(t, s, a.ID).ID, 1, 1, 0)
	eb, _ := s.Emails(ctx(), b.ID, ib.ID, 1, 1, 0)
	if len(ea) != 1 || len(eb) != 1 || ea[0].BlobID != eb[0].BlobID || ea[0].BlobID != storage.BlobID(raw) {
		t.Fatalf("blob not shared: %+v %+v", ea, eb)
	}
	got, err := e.GetBlob(ctx(), ea[0].BlobID)
	must(t, err)
	if string(got) != string(raw) {
		t.Fatal("blob bytes differ")
	}
	meta, err := s.Meta(ctx(), ea[0].BlobID)
	must(t, err)
	if meta.Envelope.Subject != "to many" || meta.Size != int64(len(raw)) {
		t.Fatalf("meta %+v", meta.Envelope)
	}
	// A message larger than one chunk round-trips.
	big := append(Msg("big"), []byte(strings.Repeat("0123456789abcdef\r\n", 20000))...)
	r, err := s.Append(ctx(), a.ID, inbox(t, s, a.ID).ID, big, []string{`\seen`, "$Label1"}, time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC))
	must(t, err)
	es, _ := s.Emails(ctx(), a.ID, r.Mailbox, r.UID, r.UID, 0)
	if len(es) != 1 || strings.Join(es[0].Flags, " ") != `$Label1 \Seen` || !es[0].InternalDate.Equal(time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("append flags/date: %+v", es)
	}
	gb, err := s.Blob(ctx(), es[0].BlobID)
	must(t, err)
	if string(gb) != string(big) {
		t.Fatal("big blob differs")
	}
	if _, err := s.Append(ctx(), a.ID, 9999, Msg("x"), nil, time.Time{}); !errors.Is(err, storage.ErrNoSuchMailbox) {
		t.Fatalf("append to missing mailbox: %v", err)
	}
	if _, err := s.Append(ctx(), a.ID, r.Mailbox, Msg("x"), []string{`\Bogus`}, time.Time{}); !errors.Is(err, storage.ErrInvalidFlag) {
		t.Fatalf("bad flag: %v", err)
	}
	verifyClean(t, s, a.ID)
	verifyClean(t, s, b.ID)
}

func testFlags(t *testing.T, h Harness) {
	s, _ := open(t, h)
	a := newAccount(t, s, "f@example.test")
	in := inbox(t, s, a.ID)
	uids := appendN(t, s, a.ID, in.ID, 5)
	in = inbox(t, s, a.ID)
	if in.Unseen != 5 {
		t.Fatalf("unseen %d", in.Unseen)
	}
	r, err := s.StoreFlags(ctx(), a.ID, in.ID, uids[:3], storage.FlagsAdd, []string{`\Seen`, "Work"}, storage.StoreOptions{})
	must(t, err)
	if len(r.Changed) != 3 || r.ModSeq <= in.HighestModSeq {
		t.Fatalf("store: %+v", r)
	}
	in2 := inbox(t, s, a.ID)
	if in2.Unseen != 2 || in2.HighestModSeq != r.ModSeq {
		t.Fatalf("after store: %+v", in2)
	}
	// No-op store changes nothing and allocates no MODSEQ for emails.
	r2, err := s.StoreFlags(ctx(), a.ID, in.ID, uids[:3], storage.FlagsAdd, []string{`\Seen`}, storage.StoreOptions{})
	must(t, err)
	if len(r2.Changed) != 0 {
		t.Fatalf("no-op changed %v", r2.Changed)
	}
	// UNCHANGEDSINCE: uids[0..2] have modseq r.ModSeq; a lower value refuses them.
	r3, err := s.StoreFlags(ctx(), a.ID, in.ID, uids, storage.FlagsSet, []string{`\Flagged`}, storage.StoreOptions{HasUnchangedSince: true, UnchangedSince: r.ModSeq - 1})
	must(t, err)
	if fmt.Sprint(r3.Failed) != fmt.Sprint(uids[:3]) || len(r3.Changed) != 2 {
		t.Fatalf("unchangedsince: failed %v changed %d", r3.Failed, len(r3.Changed))
	}
	r4, err := s.StoreFlags(ctx(), a.ID, in.ID, uids[:1], storage.FlagsRemove, []string{`\SEEN`, "work"}, storage.StoreOptions{})
	must(t, err)
	if len(r4.Changed) != 1 || len(r4.Changed[0].Flags) != 0 || r4.ModSeq <= r3.ModSeq {
		t.Fatalf("remove: %+v", r4)
	}
	changed, _, err := s.ChangedSince(ctx(), a.ID, in.ID, r3.ModSeq)
	must(t, err)
	if len(changed) != 1 || changed[0].UID != uids[0] {
		t.Fatalf("changedsince: %+v", changed)
	}
	verifyClean(t, s, a.ID)
}

func testCopyMoveExpunge(t *testing.T, h Harness) {
	s, _ := open(t, h)
	a := newAccount(t, s, "c@example.test")
	in := inbox(t, s, a.ID)
	arch, err := s.MailboxByRole(ctx(), a.ID, storage.RoleArchive)
	must(t, err)
	uids := appendN(t, s, a.ID, in.ID, 6)
	c, err := s.Copy(ctx(), a.ID, in.ID, uids[:2], arch.ID)
	must(t, err)
	if fmt.Sprint(c.Src) != fmt.Sprint(uids[:2]) || fmt.Sprint(c.Dst) != "[1 2]" || c.UIDValidity != arch.UIDValidity {
		t.Fatalf("copy: %+v", c)
	}
	before := inbox(t, s, a.ID)
	m, err := s.Move(ctx(), a.ID, in.ID, uids[2:4], arch.ID)
	must(t, err)
	if fmt.Sprint(m.Dst) != "[3 4]" {
		t.Fatalf("move: %+v", m)
	}
	after := inbox(t, s, a.ID)
	if after.Messages != 4 || after.HighestModSeq <= before.HighestModSeq {
		t.Fatalf("inbox after move: %+v", after)
	}
	_, vanished, err := s.ChangedSince(ctx(), a.ID, in.ID, before.HighestModSeq)
	must(t, err)
	if fmt.Sprint(vanished) != fmt.Sprint(uids[2:4]) {
		t.Fatalf("vanished %v", vanished)
	}
	_, err = s.StoreFlags(ctx(), a.ID, in.ID, []uint32{uids[0], uids[5]}, storage.FlagsAdd, []string{storage.FlagDeleted}, storage.StoreOptions{})
	must(t, err)
	// UID EXPUNGE of a subset only removes those.
	x, err := s.Expunge(ctx(), a.ID, in.ID, []uint32{uids[5]})
	must(t, err)
	if fmt.Sprint(x.UIDs) != fmt.Sprint([]uint32{uids[5]}) {
		t.Fatalf("uid expunge %v", x.UIDs)
	}
	x, err = s.Expunge(ctx(), a.ID, in.ID, nil)
	must(t, err)
	if fmt.Sprint(x.UIDs) != fmt.Sprint([]uint32{uids[0]}) {
		t.Fatalf("expunge %v", x.UIDs)
	}
	final := inbox(t, s, a.ID)
	if final.Messages != 2 || final.UIDNext != 7 {
		t.Fatalf("final inbox %+v", final)
	}
	// UIDs are never reused: the next append gets 7.
	if u := appendN(t, s, a.ID, in.ID, 1); u[0] != 7 {
		t.Fatalf("uid reused: %v", u)
	}
	st, _ := s.State(ctx(), a.ID)
	if st.UsedMessages != 3+4 {
		t.Fatalf("usage %d", st.UsedMessages)
	}
	verifyClean(t, s, a.ID)
	checkChangeLog(t, s, a.ID)
}

// checkChangeLog asserts strictly increasing sequence numbers.
func checkChangeLog(t testing.TB, s *storage.Store, acct string) []storage.Change {
	t.Helper()
	cs, err := s.Changes(ctx(), acct, 0, 0)
	must(t, err)
	var last uint64
	for _, c := range cs {
		if c.Seq < last {
			t.Fatalf("change seq %d after %d", c.Seq, last)
		}
		last = c.Seq
	}
	st, _ := s.State(ctx(), acct)
	if last != st.ModSeq {
		t.Fatalf("last change %d, account modseq %d", last, st.ModSeq)
	}
	return cs
}

func testConcurrentUIDs(t *testing.T, h Harness) {
	s, _ := open(t, h)
	a := newAccount(t, s, "race@example.test")
	in := inbox(t, s, a.ID)
	per := 40
	var mu sync.Mutex
	var all []storage.Delivered
	var wg sync.WaitGroup
	errs := make(chan error, h.Writers)
	for w := 0; w < h.Writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var mine []storage.Delivered
			for i := 0; i < per; i++ {
				r, err := s.Append(ctx(), a.ID, in.ID, Msg(fmt.Sprintf("w%d-%d", w, i)), nil, time.Time{})
				if err != nil {
					errs <- err
					return
				}
				// Each writer sees its own UIDs ascend.
				if len(mine) > 0 && r.UID <= mine[len(mine)-1].UID {
					errs <- fmt.Errorf("writer %d: uid %d after %d", w, r.UID, mine[len(mine)-1].UID)
					return
				}
				mine = append(mine, r)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := h.Writers * per
	seen := map[uint32]bool{}
	seenMS := map[uint64]bool{}
	for _, r := range all {
		if seen[r.UID] {
			t.Fatalf("uid %d given twice", r.UID)
		}
		if seenMS[r.ModSeq] {
			t.Fatalf("modseq %d given twice", r.ModSeq)
		}
		seen[r.UID], seenMS[r.ModSeq] = true, true
	}
	// Commit order: a higher MODSEQ always has a higher UID.
	sort.Slice(all, func(i, j int) bool { return all[i].ModSeq < all[j].ModSeq })
	for i := 1; i < len(all); i++ {
		if all[i].UID <= all[i-1].UID {
			t.Fatalf("uid %d (modseq %d) after uid %d (modseq %d)", all[i].UID, all[i].ModSeq, all[i-1].UID, all[i-1].ModSeq)
		}
	}
	in = inbox(t, s, a.ID)
	if in.Messages != int64(n) || in.UIDNext != uint32(n+1) {
		t.Fatalf("inbox %+v, want %d messages", in, n)
	}
	verifyClean(t, s, a.ID)
	checkChangeLog(t, s, a.ID)
}

func testRandomMix(t *testing.T, h Harness) {
	s, _ := open(t, h)
	a := newAccount(t, s, "mix@example.test")
	rng := rand.New(rand.NewSource(42))
	in := inbox(t, s, a.ID)
	other, err := s.CreateMailbox(ctx(), a.ID, "Other", "")
	must(t, err)
	boxes := []uint32{in.ID, other.ID}
	var lastSeq uint64
	for i := 0; i < 300; i++ {
		mb := boxes[rng.Intn(2)]
		uids, err := s.AllUIDs(ctx(), a.ID, mb)
		must(t, err)
		pick := func() []uint32 {
			var p []uint32
			for _, u := range uids {
				if rng.Intn(3) == 0 {
					p = append(p, u)
				}
			}
			return p
		}
		switch op := rng.Intn(10); {
		case op < 4 || len(uids) == 0:
			var fl []string
			if rng.Intn(2) == 0 {
				fl = []string{storage.FlagSeen}
			}
			_, err = s.Append(ctx(), a.ID, mb, Msg("mix"), fl, time.Time{})
		case op < 6:
			ops := []storage.FlagOp{storage.FlagsAdd, storage.FlagsRemove, storage.FlagsSet}
			fl := [][]string{{storage.FlagSeen}, {storage.FlagDeleted}, {"kw", storage.FlagSeen}, {}}[rng.Intn(4)]
			_, err = s.StoreFlags(ctx(), a.ID, mb, pick(), ops[rng.Intn(3)], fl, storage.StoreOptions{})
		case op < 7:
			_, err = s.Expunge(ctx(), a.ID, mb, nil)
		case op < 8:
			_, err = s.Copy(ctx(), a.ID, mb, pick(), boxes[rng.Intn(2)])
		default:
			_, err = s.Move(ctx(), a.ID, mb, pick(), boxes[rng.Intn(2)])
		}
		must(t, err)
		st, _ := s.State(ctx(), a.ID)
		if st.ModSeq < lastSeq {
			t.Fatalf("modseq went back %d -> %d", lastSeq, st.ModSeq)
		}
		lastSeq = st.ModSeq
	}
	verifyClean(t, s, a.ID)
	// Replaying the change log reproduces the current membership.
	cs := checkChangeLog(t, s, a.ID)
	present := map[[2]uint32]bool{}
	for _, c := range cs {
		for _, u := range c.UIDs {
			switch c.Kind {
			case storage.ChangeEmailAdd:
				present[[2]uint32{c.Mailbox, u}] = true
			case storage.ChangeEmailExpunge:
				delete(present, [2]uint32{c.Mailbox, u})
			}
		}
	}
	n := 0
	for _, mb := range boxes {
		uids, _ := s.AllUIDs(ctx(), a.ID, mb)
		for _, u := range uids {
			n++
			if !present[[2]uint32{mb, u}] {
				t.Fatalf("email %d/%d has no add change", mb, u)
			}
		}
	}
	if n != len(present) {
		t.Fatalf("change log says %d emails, store has %d", len(present), n)
	}
}

// The activity feed names every account that committed a change (or was
// deleted) after a time, and no account that did not (ADR 0009).
func testActivity(t *testing.T, h Harness) {
	s, e := open(t, h)
	a := newAccount(t, s, "act-a@example.test")
	b := newAccount(t, s, "act-b@example.test")
	c := newAccount(t, s, "act-c@example.test")
	uids := appendN(t, s, b.ID, inbox(t, s, b.ID).ID, 2)
	must(t, s.FlushActivity(ctx()))
	noted := func(since time.Time) map[string]int {
		t.Helper()
		got := map[string]int{}
		must(t, s.Activity(ctx(), since, func(n storage.ActivityNote) error {
			if n.At.Before(since.Truncate(time.Millisecond)) {
				t.Errorf("note of %s at %v, asked since %v", n.Account, n.At, since)
			}
			got[n.Account]++
			return nil
		}))
		return got
	}
	if got := noted(time.Now().Add(-time.Hour)); got[a.ID] == 0 || got[b.ID] == 0 || got[c.ID] == 0 {
		t.Fatalf("created accounts not in the feed: %v", got)
	}
	time.Sleep(5 * time.Millisecond)
	t1 := time.Now()
	appendN(t, s, a.ID, inbox(t, s, a.ID).ID, 1)
	_, err := s.StoreFlags(ctx(), b.ID, inbox(t, s, b.ID).ID, uids[:1], storage.FlagsAdd, []string{`\Seen`}, storage.StoreOptions{})
	must(t, err)
	must(t, s.FlushActivity(ctx()))
	got := noted(t1)
	if got[a.ID] != 1 || got[b.ID] != 1 || got[c.ID] != 0 {
		t.Fatalf("since the delivery to a and the flag change in b: a %d, b %d, c %d notes (want 1, 1, 0)", got[a.ID], got[b.ID], got[c.ID])
	}
	// A mutation that changes nothing is not activity.
	time.Sleep(5 * time.Millisecond)
	t2 := time.Now()
	_, err = s.StoreFlags(ctx(), b.ID, inbox(t, s, b.ID).ID, uids[:1], storage.FlagsAdd, []string{`\Seen`}, storage.StoreOptions{})
	must(t, err)
	must(t, s.DeleteAccount(ctx(), c.ID))
	must(t, s.FlushActivity(ctx()))
	if got := noted(t2); got[c.ID] != 1 || got[a.ID] != 0 || got[b.ID] != 0 {
		t.Fatalf("since the deletion of c: %v (want c only)", got)
	}
	old := time.Now().Add(-storage.ActivityRetention - time.Minute)
	if err := e.Activity(ctx(), old, func(storage.ActivityNote) error { return nil }); !errors.Is(err, storage.ErrActivityTruncated) {
		t.Fatalf("engine: feed older than its retention: %v", err)
	}
	// Two writers noting one account in the same millisecond make two notes.
	at := time.Now().UTC().Truncate(time.Millisecond)
	must(t, e.NoteActivity(ctx(), "w1", at, []string{"same-ms"}))
	must(t, e.NoteActivity(ctx(), "w2", at, []string{"same-ms"}))
	writers := map[string]bool{}
	must(t, e.Activity(ctx(), at, func(n storage.ActivityNote) error {
		if n.Account == "same-ms" {
			if !n.At.Equal(at) {
				t.Errorf("note at %v, written at %v", n.At, at)
			}
			writers[n.Writer] = true
		}
		return nil
	}))
	if !writers["w1"] || !writers["w2"] || len(writers) != 2 {
		t.Fatalf("notes of one account in one millisecond by w1 and w2: writers %v", writers)
	}
	// Close writes what is still queued, however long the flush interval.
	slow := storage.New(e, storage.Config{PasswordCost: testCost, ActivityFlush: time.Hour})
	t3 := time.Now()
	appendN(t, slow, a.ID, inbox(t, slow, a.ID).ID, 1)
	must(t, slow.Close())
	must(t, slow.Close()) // twice is harmless
	e2 := h.Reopen(t, e)
	t.Cleanup(func() { e2.Close() })
	got = map[string]int{}
	must(t, e2.Activity(ctx(), t3, func(n storage.ActivityNote) error { got[n.Account]++; return nil }))
	if got[a.ID] != 1 {
		t.Fatalf("note queued at Close: %v", got)
	}
}

func testQuota(t *testing.T, h Harness) {
	s, _ := open(t, h)
	a, err := s.AddAccount(ctx(), "q@example.test", "pw", storage.AccountOptions{QuotaMessages: 3})
	must(t, err)
	in := inbox(t, s, a.ID)
	appendN(t, s, a.ID, in.ID, 3)
	if _, err := s.Append(ctx(), a.ID, in.ID, Msg("over"), nil, time.Time{}); !errors.Is(err, storage.ErrOverQuota) {
		t.Fatalf("over quota append: %v", err)
	}
	arch, _ := s.MailboxByRole(ctx(), a.ID, storage.RoleArchive)
	if _, err := s.Copy(ctx(), a.ID, in.ID, []uint32{1}, arch.ID); !errors.Is(err, storage.ErrOverQuota) {
		t.Fatalf("over quota copy: %v", err)
	}
	if _, err := s.Move(ctx(), a.ID, in.ID, []uint32{1}, arch.ID); err != nil {
		t.Fatalf("move within quota: %v", err)
	}
	q, err := s.Quota(ctx(), a.ID)
	must(t, err)
	if q.UsedMessages != 3 || q.LimitMessages != 3 {
		t.Fatalf("quota %+v", q)
	}
}

func testThreads(t *testing.T, h Harness) {
	s, _ := open(t, h)
	a := newAccount(t, s, "t@example.test")
	in := inbox(t, s, a.ID)
	root := "From: a@x.test\r\nSubject: Plans\r\nMessage-ID: <root@x.test>\r\n\r\nhi\r\n"
	reply := "From: b@x.test\r\nSubject: Re: Plans\r\nMessage-ID: <r1@x.test>\r\nIn-Reply-To: <root@x.test>\r\nReferences: <root@x.test>\r\n\r\nok\r\n"
	noRefs := "From: c@x.test\r\nSubject: RE: Plans\r\nMessage-ID: <r2@x.test>\r\n\r\nme too\r\n"
	other := "From: d@x.test\r\nSubject: Plans\r\nMessage-ID: <o@x.test>\r\n\r\nunrelated\r\n"
	var ths []uint64
	for _, m := range []string{root, reply, noRefs, other} {
		r, err := s.Append(ctx(), a.ID, in.ID, []byte(m), nil, time.Time{})
		must(t, err)
		es, _ := s.Emails(ctx(), a.ID, in.ID, r.UID, r.UID, 0)
		ths = append(ths, es[0].ThreadID)
	}
	if ths[0] != ths[1] || ths[0] != ths[2] || ths[3] == ths[0] {
		t.Fatalf("threads %v", ths)
	}
}

func testGC(t *testing.T, h Harness) {
	s, e := open(t, h)
	a := newAccount(t, s, "gc@example.test")
	in := inbox(t, s, a.ID)
	keep, gone := Msg("keep"), Msg("gone")
	_, err := s.Append(ctx(), a.ID, in.ID, keep, nil, time.Time{})
	must(t, err)
	r, err := s.Append(ctx(), a.ID, in.ID, gone, []string{storage.FlagDeleted}, time.Time{})
	must(t, err)
	arch, _ := s.MailboxByRole(ctx(), a.ID, storage.RoleArchive)
	_, err = s.Copy(ctx(), a.ID, in.ID, []uint32{r.UID}, arch.ID)
	must(t, err)
	_, err = s.Expunge(ctx(), a.ID, in.ID, nil)
	must(t, err)
	// Still referenced by the copy in Archive.
	n, err := s.CollectGarbage(ctx(), -time.Hour)
	must(t, err)
	if _, err := e.GetBlob(ctx(), storage.BlobID(gone)); err != nil || n != 0 {
		t.Fatalf("referenced blob collected (n=%d): %v", n, err)
	}
	_, err = s.StoreFlags(ctx(), a.ID, arch.ID, []uint32{1}, storage.FlagsAdd, []string{storage.FlagDeleted}, storage.StoreOptions{})
	must(t, err)
	_, err = s.Expunge(ctx(), a.ID, arch.ID, nil)
	must(t, err)
	// Within the grace period nothing goes.
	if n, err := s.CollectGarbage(ctx(), time.Hour); err != nil || n != 0 {
		t.Fatalf("gc within grace: %d %v", n, err)
	}
	n, err = s.CollectGarbage(ctx(), -time.Hour)
	must(t, err)
	if n != 1 {
		t.Fatalf("gc collected %d, want 1", n)
	}
	if _, err := e.GetBlob(ctx(), storage.BlobID(gone)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unreferenced blob still there: %v", err)
	}
	if _, err := e.GetBlob(ctx(), storage.BlobID(keep)); err != nil {
		t.Fatalf("kept blob lost: %v", err)
	}
}

// testGCRace: garbage collection finds a blob old and unreferenced, and
// just before it deletes it a delivery re-uses the blob (puts it again and
// commits a reference). The blob must survive whole, small (inline) or
// large (chunked).
func testGCRace(t *testing.T, h Harness) {
	defer failpoint.Reset()
	s, e := open(t, h)
	a := newAccount(t, s, "gcrace@example.test")
	in := inbox(t, s, a.ID)
	big := Msg("large")
	big = append(big[:len(big)-2], []byte(strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 6000))...) // ~380 KiB: several chunks
	for _, raw := range [][]byte{Msg("small"), big} {
		// The only unreferenced blob: delivered, then expunged.
		_, err := s.Append(ctx(), a.ID, in.ID, raw, []string{storage.FlagDeleted}, time.Time{})
		must(t, err)
		_, err = s.Expunge(ctx(), a.ID, in.ID, nil)
		must(t, err)
		time.Sleep(50 * time.Millisecond)
		again := 0
		failpoint.EnableFunc(storage.FPGCBeforeDelete, func() {
			again++
			_, err := s.Append(ctx(), a.ID, in.ID, raw, nil, time.Time{})
			must(t, err)
		})
		n, err := s.CollectGarbage(ctx(), 25*time.Millisecond)
		must(t, err)
		failpoint.Reset()
		if again != 1 || n != 0 {
			t.Errorf("%d-byte blob: re-delivered %d times during GC, collected %d; want 1, 0", len(raw), again, n)
		}
		got, err := e.GetBlob(ctx(), storage.BlobID(raw))
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("re-used %d-byte blob after GC: %d bytes, %v", len(raw), len(got), err)
		}
		// The next collection keeps it too: it is referenced now.
		if n, err := s.CollectGarbage(ctx(), -time.Hour); err != nil || n != 0 {
			t.Fatalf("second collection: %d %v", n, err)
		}
	}
}

// testCrash stops a delivery at every failpoint, reopens the engine as a
// restarted process would, and checks that every acknowledged message is
// there, the interrupted one is wholly there or wholly absent, and counts
// are exact.
func testCrash(t *testing.T, h Harness) {
	points := append([]string{storage.FPAfterBlob, storage.FPBeforeCommit}, h.Failpoints...)
	for _, fp := range points {
		t.Run(fp, func(t *testing.T) {
			defer failpoint.Reset()
			e := h.Open(t)
			s := newStore(e)
			a := newAccount(t, s, "crash@example.test")
			in := inbox(t, s, a.ID)
			var acked []storage.Delivered
			for i := 0; i < 5; i++ {
				r, err := s.Append(ctx(), a.ID, in.ID, Msg("before"), nil, time.Time{})
				must(t, err)
				acked = append(acked, r)
			}
			failpoint.Enable(fp, failpoint.Error)
			lost := Msg("interrupted")
			_, err := s.Append(ctx(), a.ID, in.ID, lost, nil, time.Time{})
			if err == nil {
				t.Fatalf("failpoint %s did not fire", fp)
			}
			failpoint.Reset()
			e = h.Reopen(t, e)
			t.Cleanup(func() { e.Close() })
			s = newStore(e)
			for _, r := range acked {
				es, err := s.Emails(ctx(), a.ID, in.ID, r.UID, r.UID, 0)
				must(t, err)
				if len(es) != 1 {
					t.Fatalf("acknowledged uid %d lost after crash at %s", r.UID, fp)
				}
				if _, err := s.Blob(ctx(), es[0].BlobID); err != nil {
					t.Fatalf("blob of acknowledged uid %d: %v", r.UID, err)
				}
			}
			verifyClean(t, s, a.ID)
			checkChangeLog(t, s, a.ID)
			// Whatever is visible is whole: every email has its blob and metadata.
			all, err := s.Emails(ctx(), a.ID, in.ID, 1, ^uint32(0), 0)
			must(t, err)
			for _, em := range all {
				if _, err := s.Blob(ctx(), em.BlobID); err != nil {
					t.Fatalf("half-visible email %d: blob %v", em.UID, err)
				}
				if _, err := s.Meta(ctx(), em.BlobID); err != nil {
					t.Fatalf("half-visible email %d: meta %v", em.UID, err)
				}
			}
			// The account keeps working and never reuses a UID.
			r, err := s.Append(ctx(), a.ID, in.ID, Msg("after"), nil, time.Time{})
			must(t, err)
			if r.UID <= acked[len(acked)-1].UID {
				t.Fatalf("uid %d after crash reuses an acknowledged uid", r.UID)
			}
			if len(all) > 0 && r.UID <= all[len(all)-1].UID {
				t.Fatalf("uid %d after crash reuses a visible uid", r.UID)
			}
			verifyClean(t, s, a.ID)
		})
	}
}

func testScale(t *testing.T, h Harness) {
	if testing.Short() {
		t.Skip("large mailbox test skipped in -short mode")
	}
	if raceEnabled {
		t.Skip("large mailbox test runs without -race (make test runs it in a second pass)")
	}
	s, _ := open(t, h)
	a := newAccount(t, s, "big@example.test")
	in := inbox(t, s, a.ID)
	n := h.Scale
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	next := make(chan int, 1024)
	go func() {
		for i := 0; i < n; i++ {
			next <- i
		}
		close(next)
	}()
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				var fl []string
				if i%2 == 0 {
					fl = []string{storage.FlagSeen}
				}
				if _, err := s.Append(ctx(), a.ID, in.ID, Msg("scale"), fl, time.Time{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	in = inbox(t, s, a.ID)
	if in.Messages != int64(n) || in.Unseen != int64(n/2) {
		t.Fatalf("counts %+v", in)
	}
	// Page by UID, 1,000 at a time.
	from, total := uint32(1), 0
	var prev uint32
	for {
		page, err := s.Emails(ctx(), a.ID, in.ID, from, ^uint32(0), 1000)
		must(t, err)
		for _, e := range page {
			if e.UID <= prev {
				t.Fatalf("paging out of order: %d after %d", e.UID, prev)
			}
			prev = e.UID
		}
		total += len(page)
		if len(page) < 1000 {
			break
		}
		from = page[len(page)-1].UID + 1
	}
	if total != n {
		t.Fatalf("paged %d of %d", total, n)
	}
	// Page by MODSEQ: change the flags of every 10th message, then ask what changed.
	st, _ := s.State(ctx(), a.ID)
	var tenth []uint32
	for u := uint32(10); u <= uint32(n); u += 10 {
		tenth = append(tenth, u)
	}
	r, err := s.StoreFlags(ctx(), a.ID, in.ID, tenth, storage.FlagsAdd, []string{storage.FlagFlagged}, storage.StoreOptions{})
	must(t, err)
	if len(r.Changed) != len(tenth) {
		t.Fatalf("changed %d of %d", len(r.Changed), len(tenth))
	}
	changed, _, err := s.ChangedSince(ctx(), a.ID, in.ID, st.ModSeq)
	must(t, err)
	if len(changed) != len(tenth) || changed[0].UID != 10 || changed[len(changed)-1].UID != tenth[len(tenth)-1] {
		t.Fatalf("changedsince gave %d emails", len(changed))
	}
	cs, err := s.Changes(ctx(), a.ID, st.ModSeq, 0)
	must(t, err)
	if len(cs) != 1 || len(cs[0].UIDs) != len(tenth) {
		t.Fatalf("changes since %d: %d records", st.ModSeq, len(cs))
	}
	verifyClean(t, s, a.ID)
}

func testQueue(t *testing.T, h Harness) {
	s, _ := open(t, h)
	raw := Msg("outbound")
	e := storage.QueueEntry{ID: "sub-1", From: "alice@example.test",
		Recipients: []storage.QueuedRecipient{{Address: "bob@remote.test"}, {Address: "carol@remote.test", Notify: "FAILURE"}}}
	q, err := s.Enqueue(ctx(), e, raw)
	must(t, err)
	if q.UID == 0 || q.BlobID != storage.BlobID(raw) || q.Recipients[0].Status != "pending" {
		t.Fatalf("enqueued %+v", q)
	}
	again, err := s.Enqueue(ctx(), e, raw)
	must(t, err)
	if again.UID != q.UID {
		t.Fatalf("retry enqueued twice: %d vs %d", again.UID, q.UID)
	}
	list, err := s.Queue(ctx(), 0)
	must(t, err)
	if len(list) != 1 || len(list[0].Recipients) != 2 || list[0].From != "alice@example.test" {
		t.Fatalf("queue %+v", list)
	}
	// The queued blob is referenced, so GC keeps it.
	if n, err := s.CollectGarbage(ctx(), -time.Hour); err != nil || n != 0 {
		t.Fatalf("gc took a queued blob: %d %v", n, err)
	}
	got, err := s.Blob(ctx(), q.BlobID)
	must(t, err)
	if string(got) != string(raw) {
		t.Fatal("queued blob differs")
	}
}
