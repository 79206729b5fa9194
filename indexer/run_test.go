package indexer_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stoa-mail/stoa/indexer"
	"github.com/stoa-mail/stoa/indexer/bleve"
	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/embedded"
)

// flakyEngine fails the next Activity reads after returning their notes.
type flakyEngine struct {
	storage.Engine
	failReads atomic.Int32
}

func (e *flakyEngine) Activity(ctx context.Context, since time.Time, fn func(storage.ActivityNote) error) error {
	if err := e.Engine.Activity(ctx, since, fn); err != nil {
		return err
	}
	if e.failReads.Add(-1) >= 0 {
		return errors.New("flaky: read timed out after the first minute")
	}
	return nil
}

// flakyBackend fails the next Apply calls.
type flakyBackend struct {
	indexer.Backend
	failApplies atomic.Int32
}

func (b *flakyBackend) Apply(ctx context.Context, account string, bt *indexer.Batch) error {
	if b.failApplies.Add(-1) >= 0 {
		return errors.New("flaky: 429 too many requests")
	}
	return b.Backend.Apply(ctx, account, bt)
}

type sidecar struct {
	t      *testing.T
	eng    storage.Engine
	writer *storage.Store // the mail server
	reader *flakyEngine   // what the indexer's store reads through
	b      *flakyBackend
	acct   string
	inbox  uint32
}

var cost = storage.PasswordCost{Time: 1, MemoryK: 64, Threads: 1}

// openEngineIndex opens an embedded store and a Bleve index in a
// temporary directory.
func openEngineIndex(t testing.TB) (*embedded.Engine, *bleve.Index) {
	dir := t.TempDir()
	e, err := embedded.Open(filepath.Join(dir, "db"), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	x, err := bleve.Open(filepath.Join(dir, "index"))
	if err != nil {
		t.Fatal(err)
	}
	return e, x
}

// newSidecar runs an indexer that hears of the writer's changes only
// through the activity feed (one sweep, at start) and has indexed one
// message already.
func newSidecar(t *testing.T, writerFlush time.Duration) *sidecar {
	e, x := openEngineIndex(t)
	s := &sidecar{t: t, eng: e, reader: &flakyEngine{Engine: e}, b: &flakyBackend{Backend: x}}
	s.writer = storage.New(e, storage.Config{PasswordCost: cost, ActivityFlush: writerFlush})
	rs := storage.New(s.reader, storage.Config{PasswordCost: cost})
	ix := &indexer.Indexer{Store: rs, Backend: s.b, PollInterval: 20 * time.Millisecond, SweepInterval: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ix.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; x.Close(); s.writer.Close() })
	a, err := s.writer.AddAccount(ctx, "side@example.test", "", storage.AccountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mb, err := s.writer.MailboxByName(ctx, a.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	s.acct, s.inbox = a.ID, mb.ID
	s.deliver("warmup", true)
	return s
}

// deliver appends a message with word and, with flush, writes the
// writer's activity notes at once.
func (s *sidecar) deliver(word string, flush bool) {
	s.t.Helper()
	r, err := s.writer.Append(context.Background(), s.acct, s.inbox, []byte("Subject: "+word+"\r\n\r\n"+word+"\r\n"), nil, time.Time{})
	if err != nil {
		s.t.Fatal(err)
	}
	if flush {
		if err := s.writer.FlushActivity(context.Background()); err != nil {
			s.t.Fatal(err)
		}
	}
	s.indexed(word, r.UID)
}

// indexed waits until the index alone finds word in uid.
func (s *sidecar) indexed(word string, uid uint32) {
	s.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got, _, err := s.b.Search(context.Background(), s.acct, s.inbox, indexer.Text(word))
		if err != nil {
			s.t.Fatal(err)
		}
		if fmt.Sprint(got) == fmt.Sprint([]uint32{uid}) {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%q (uid %d) not indexed after 30 s: %v", word, uid, got)
		}
	}
}

// A feed read that fails after returning notes loses none of them.
func TestFeedReadFailsPartWay(t *testing.T) {
	s := newSidecar(t, time.Hour)
	s.reader.failReads.Store(3)
	s.deliver("afterfailure", true)
}

// A sync that fails is retried without another change to the account.
func TestSyncFailureRetried(t *testing.T) {
	s := newSidecar(t, time.Hour)
	s.b.failApplies.Store(2)
	s.deliver("retried", true)
	if n := s.b.failApplies.Load(); n >= 0 {
		t.Fatalf("Apply failures left unused: %d", n+1)
	}
}

// A note written with a time before the indexer's last read (a writer
// whose clock is behind, or a note that reached this data centre late)
// is still found, within the overlap.
func TestLateNoteWithinOverlap(t *testing.T) {
	s := newSidecar(t, time.Hour)
	time.Sleep(100 * time.Millisecond) // the indexer has read past now-5s
	r, err := s.writer.Append(context.Background(), s.acct, s.inbox, []byte("Subject: late\r\n\r\nlatecomer\r\n"), nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.eng.NoteActivity(context.Background(), "slow-clock", time.Now().Add(-5*time.Second), []string{s.acct}); err != nil {
		t.Fatal(err)
	}
	s.indexed("latecomer", r.UID)
}

// A rebuild with a low --rate works in batches of about one second's worth,
// so progress (and the load) is steady instead of one burst then a pause.
func TestRebuildRateBatches(t *testing.T) {
	dir := t.TempDir()
	e, err := embedded.Open(filepath.Join(dir, "db"), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	st := storage.New(e, storage.Config{PasswordCost: cost})
	defer st.Close()
	x, err := bleve.Open(filepath.Join(dir, "index"))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	ctx := context.Background()
	a, _ := st.AddAccount(ctx, "rate@example.test", "", storage.AccountOptions{})
	mb, _ := st.MailboxByName(ctx, a.ID, "INBOX")
	for i := 0; i < 23; i++ {
		if _, err := st.Append(ctx, a.ID, mb.ID, []byte(fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i)), nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	var steps []int
	step := func(done, total int) { // distinct advances (empty mailboxes report none)
		if done > 0 && (len(steps) == 0 || steps[len(steps)-1] != done) {
			steps = append(steps, done)
		}
	}
	ix := &indexer.Indexer{Store: st, Backend: x}
	err = ix.Rebuild(ctx, a.ID, &indexer.RebuildOptions{Rate: 1000, Progress: step})
	if err != nil || len(steps) != 1 || steps[0] != 23 {
		t.Fatalf("unthrottled: %v %v", err, steps)
	}
	steps = nil
	err = ix.Rebuild(ctx, a.ID, &indexer.RebuildOptions{Rate: 10, Progress: step})
	if err != nil || fmt.Sprint(steps) != "[10 20 23]" {
		t.Fatalf("rate 10: %v %v", err, steps)
	}
}

// recBackend records the documents' total message size of every Apply.
type recBackend struct {
	indexer.Backend
	applies []recApply
}

type recApply struct {
	docs       int
	size       int64
	checkpoint uint64
}

func (b *recBackend) Apply(ctx context.Context, account string, bt *indexer.Batch) error {
	var n int64
	for _, d := range bt.Docs {
		n += d.Size
	}
	b.applies = append(b.applies, recApply{len(bt.Docs), n, bt.Checkpoint})
	return b.Backend.Apply(ctx, account, bt)
}

// One change record listing every UID (STORE 1:* +FLAGS) is written in
// chunks of at most 1 MiB of messages: a Bleve batch holds the analysed
// text of all it indexes (2,000 messages of 50 KB took 6.4 GB at once).
func TestLargeChangeWrittenInChunks(t *testing.T) {
	e, x := openEngineIndex(t)
	st := storage.New(e, storage.Config{PasswordCost: cost})
	defer func() { x.Close(); st.Close() }()
	ctx := context.Background()
	a, err := st.AddAccount(ctx, "chunks@example.test", "", storage.AccountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := st.MailboxByName(ctx, a.ID, "INBOX")
	body := strings.Repeat("lorem ipsum dolor sit amet consectetur\r\n", 6000) // ~240 KB
	var uids []uint32
	for i := 0; i < 40; i++ {
		r, err := st.Append(ctx, a.ID, mb.ID, []byte(fmt.Sprintf("Subject: m%d\r\n\r\nword%d\r\n%s", i, i, body)), nil, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, r.UID)
	}
	rb := &recBackend{Backend: x}
	counted := 0 // what the documents metric is fed
	ix := &indexer.Indexer{Store: st, Backend: rb, OnApplied: func(_ string, _ uint64, n int) { counted += n }}
	if err := ix.Sync(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.StoreFlags(ctx, a.ID, mb.ID, uids, storage.FlagsAdd, []string{`\Seen`}, storage.StoreOptions{}); err != nil {
		t.Fatal(err)
	}
	rb.applies = nil
	if err := ix.Sync(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	total, withDocs := 0, 0
	for _, ap := range rb.applies {
		if ap.size > 1<<20 || ap.docs > 500 {
			t.Fatalf("an Apply of %d documents, %d bytes (limit 1 MiB)", ap.docs, ap.size)
		}
		if ap.docs > 0 {
			withDocs++
		}
		total += ap.docs
	}
	if counted != 2*len(uids) {
		t.Fatalf("OnApplied counted %d documents for 2 x %d written", counted, len(uids))
	}
	if total != len(uids) || withDocs < 2 {
		t.Fatalf("flag change of %d messages written as %+v", len(uids), rb.applies)
	}
	if last := rb.applies[len(rb.applies)-1]; last.checkpoint == 0 {
		t.Fatalf("the last Apply carries no checkpoint: %+v", rb.applies)
	}
	for i, ap := range rb.applies[:len(rb.applies)-1] {
		if ap.checkpoint != 0 {
			t.Fatalf("Apply %d of %d moved the checkpoint before the rest was written", i, len(rb.applies))
		}
	}
	got, _, err := x.Search(ctx, a.ID, mb.ID, indexer.Text("word39"))
	if err != nil || len(got) != 1 || got[0] != uids[39] {
		t.Fatalf("after the chunked flag change: %v, %v", got, err)
	}
}
