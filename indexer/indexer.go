// Package indexer keeps a full-text index of every account's mail from the
// store's change log and answers IMAP SEARCH text keys (DESIGN §3, ADR 0008).
//
// The index is a projection: each account's change records are applied in
// order, and the last applied Seq (MODSEQ) is kept as a checkpoint inside
// the index itself, written after the documents it covers. A crash replays
// from the checkpoint; applying a change twice is harmless because every
// document is rebuilt from the store's current state and written with that
// state's MODSEQ as its version. Back ends live in indexer/bleve (embedded)
// and indexer/opensearch.
package indexer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stoa-mail/stoa/storage"
)

// Delete removes one document unless it has a newer version.
type Delete struct {
	ID      string
	Version uint64
}

// Batch is what one Apply writes for one account.
type Batch struct {
	Docs            []*Doc   // upserts; version = Doc.ModSeq
	Deletes         []Delete // version = the expunge's Seq
	DeleteMailboxes []uint32 // every document of these mailboxes
	Checkpoint      uint64   // written after the rest; 0 leaves it
}

// Backend is a search engine holding the documents.
type Backend interface {
	// Apply writes b for account. The checkpoint becomes visible no
	// earlier than the documents before it.
	Apply(ctx context.Context, account string, b *Batch) error
	// Checkpoint returns the account's last applied Seq (0: none).
	Checkpoint(ctx context.Context, account string) (uint64, error)
	// Checkpoints returns every account that has a checkpoint.
	Checkpoints(ctx context.Context) (map[string]uint64, error)
	// DocIDs calls fn with the id of every email document of account.
	DocIDs(ctx context.Context, account string, fn func(id string) error) error
	// DropAccount removes every document and the checkpoint of account.
	DropAccount(ctx context.Context, account string) error
	// Search returns the UIDs of mailbox matching q in ascending order, and
	// the checkpoint the result reflects at least (documents may be newer,
	// never older).
	Search(ctx context.Context, account string, mailbox uint32, q Query) (uids []uint32, checkpoint uint64, err error)
	Close() error
}

// Indexer applies change records to a Backend.
type Indexer struct {
	Store   *storage.Store
	Backend Backend
	Log     *slog.Logger
	// BatchSize is the number of change records per Apply (default 500).
	BatchSize int
	// PollInterval is how often the store's activity feed is read to find
	// accounts changed by other processes (default 250ms; ADR 0009).
	PollInterval time.Duration
	// SweepInterval is how often every account's MODSEQ is compared with
	// its checkpoint: the backstop for activity notes lost in a crash
	// (default 10m).
	SweepInterval time.Duration
	// FeedOverlap is how far before the time it last read up to each
	// activity feed read starts again, for notes written late or by a
	// writer whose clock is behind (default 30s).
	FeedOverlap time.Duration
	// Watch subscribes to Store.Watch for in-process changes (stoa serve).
	Watch bool
	// Workers index that many accounts at once (default 8: mostly waiting
	// on the store and the back end, e.g. the bulk flush).
	Workers int
	// OnApplied, if set, is called after each Apply of Sync (metrics,
	// tests); checkpoint is 0 for a chunk that leaves it.
	OnApplied func(account string, checkpoint uint64, docs int)

	locks sync.Map // account → *sync.Mutex: one writer per account in this process
}

func (ix *Indexer) lock(account string) func() {
	m, _ := ix.locks.LoadOrStore(account, new(sync.Mutex))
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

func (ix *Indexer) log() *slog.Logger {
	if ix.Log != nil {
		return ix.Log
	}
	return slog.Default()
}

func (ix *Indexer) batchSize() int {
	if ix.BatchSize > 0 {
		return ix.BatchSize
	}
	return 500
}

// Sync applies every change of account after its checkpoint.
func (ix *Indexer) Sync(ctx context.Context, account string) error {
	defer ix.lock(account)()
	cp, err := ix.Backend.Checkpoint(ctx, account)
	if err != nil {
		return err
	}
	for {
		cs, err := ix.Store.Changes(ctx, account, cp, ix.batchSize())
		if errors.Is(err, storage.ErrChangesTruncated) {
			ix.log().Warn("index: change log no longer reaches the checkpoint; rebuilding account", "account", account, "checkpoint", cp)
			return ix.rebuild(ctx, account, nil)
		}
		if err != nil {
			return err
		}
		if len(cs) == 0 {
			return nil
		}
		if len(cs) == ix.batchSize() {
			cs, err = ix.wholeSeqs(ctx, account, cp, cs)
			if err != nil {
				return err
			}
		}
		b, err := ix.build(ctx, account, cs)
		if err != nil {
			return err
		}
		b.Checkpoint = cs[len(cs)-1].Seq
		if err := ix.Backend.Apply(ctx, account, b); err != nil {
			return err
		}
		if ix.OnApplied != nil {
			ix.OnApplied(account, b.Checkpoint, len(b.Docs))
		}
		cp = b.Checkpoint
	}
}

// wholeSeqs drops the last Seq of a full page (its parts may continue on
// the next page), or reads all parts of it when the page holds nothing else.
func (ix *Indexer) wholeSeqs(ctx context.Context, account string, cp uint64, cs []storage.Change) ([]storage.Change, error) {
	last := cs[len(cs)-1].Seq
	i := len(cs)
	for i > 0 && cs[i-1].Seq == last {
		i--
	}
	if i > 0 {
		return cs[:i], nil
	}
	var out []storage.Change
	for {
		more, err := ix.Store.Changes(ctx, account, cp, len(out)+2*ix.batchSize())
		if err != nil {
			return nil, err
		}
		out = out[:0]
		for _, c := range more {
			if c.Seq == last {
				out = append(out, c)
			}
		}
		if len(more) == 0 || more[len(more)-1].Seq != last {
			return out, nil
		}
	}
}

type mbuid struct{ mb, uid uint32 }

// build turns change records into a Batch from the store's current state.
func (ix *Indexer) build(ctx context.Context, account string, cs []storage.Change) (*Batch, error) {
	up := map[mbuid]bool{}    // true: upsert
	del := map[mbuid]uint64{} // version
	var order []mbuid
	b := &Batch{}
	for _, c := range cs {
		switch c.Kind {
		case storage.ChangeEmailAdd, storage.ChangeEmailFlags:
			for _, u := range c.UIDs {
				k := mbuid{c.Mailbox, u}
				if _, ok := up[k]; !ok {
					order = append(order, k)
				}
				up[k] = true
				delete(del, k)
			}
		case storage.ChangeEmailExpunge:
			for _, u := range c.UIDs {
				k := mbuid{c.Mailbox, u}
				up[k] = false
				del[k] = c.Seq
			}
		case storage.ChangeMailboxDelete:
			b.DeleteMailboxes = append(b.DeleteMailboxes, c.Mailbox)
			for k := range up {
				if k.mb == c.Mailbox {
					up[k] = false
				}
			}
		}
	}
	var want []mbuid
	for _, k := range order {
		if up[k] {
			want = append(want, k)
		}
	}
	es, err := ix.emails(ctx, account, want)
	if err != nil {
		return nil, err
	}
	// All chunks but the last are written now, without a checkpoint (a
	// crash re-applies them: versions make that harmless); the last goes
	// in b with the deletes and the checkpoint.
	for len(es) > 0 {
		n := chunkLen(es)
		docs, err := ix.docs(ctx, account, es[:n])
		if err != nil {
			return nil, err
		}
		if es = es[n:]; len(es) == 0 {
			b.Docs = docs
		} else if err := ix.Backend.Apply(ctx, account, &Batch{Docs: docs}); err != nil {
			return nil, err
		} else if ix.OnApplied != nil {
			ix.OnApplied(account, 0, len(docs))
		}
	}
	for k, v := range del {
		b.Deletes = append(b.Deletes, Delete{ID: DocID(account, k.mb, k.uid), Version: v})
	}
	return b, nil
}

// emails reads the current rows of the memberships in keys (those still
// there), one read per run of nearby UIDs rather than one per UID: the
// changes of a batch are mostly consecutive deliveries.
func (ix *Indexer) emails(ctx context.Context, account string, keys []mbuid) ([]storage.Email, error) {
	byMB := map[uint32][]uint32{}
	for _, k := range keys {
		byMB[k.mb] = append(byMB[k.mb], k.uid)
	}
	var out []storage.Email
	for mb, uids := range byMB {
		slices.Sort(uids)
		for i := 0; i < len(uids); {
			j := i + 1
			for j < len(uids) && uids[j]-uids[j-1] <= 64 && uids[j]-uids[i] < 4096 {
				j++
			}
			es, err := ix.Store.Emails(ctx, account, mb, uids[i], uids[j-1], 0)
			if err != nil {
				return nil, err
			}
			run := uids[i:j]
			for _, e := range es {
				if _, ok := slices.BinarySearch(run, e.UID); ok {
					out = append(out, e)
				}
			}
			i = j
		}
	}
	return out, nil
}

// Documents go to the back end in chunks of at most chunkDocs messages and
// chunkBytes of message size: one STORE 1:* is one change record listing
// every UID of the mailbox, and a Bleve batch holds the analysed text of
// everything in it (STORE 1:* on 2,000 messages of 50 KB: peak RSS 6.4 GB
// in one batch, 0.6 GB in chunks of 4 MiB, 0.25 GB of 1 MiB; a rebuild
// of them ran at 65 and 60 docs/s).
const (
	chunkDocs  = 500
	chunkBytes = 1 << 20
)

// chunkLen is how many of es (at least one) go in the next chunk.
func chunkLen(es []storage.Email) int {
	var size int64
	for i, e := range es {
		size += e.Size
		if i > 0 && (i == chunkDocs || size > chunkBytes) {
			return i
		}
	}
	return len(es)
}

// loadParallel is how many documents are loaded (metadata and blob
// read, text extracted) at once.
const loadParallel = 16

// docs builds the documents of es, loadParallel at a time. A membership
// whose blob is missing is logged and left out.
func (ix *Indexer) docs(ctx context.Context, account string, es []storage.Email) ([]*Doc, error) {
	ld := Loader{Store: ix.Store}
	out := make([]*Doc, len(es))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(loadParallel)
	for i, e := range es {
		g.Go(func() error {
			d, err := ld.Doc(gctx, account, e)
			if errors.Is(err, storage.ErrNotFound) {
				ix.log().Warn("index: blob missing", "account", account, "mailbox", e.Mailbox, "uid", e.UID)
				return nil
			}
			out[i] = d
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(out, func(d *Doc) bool { return d == nil }), nil
}

// Progress reports a rebuild's advance: documents done of total.
type Progress func(done, total int)

// RebuildOptions tune Rebuild.
type RebuildOptions struct {
	Rate     float64 // documents per second; 0: unlimited
	Progress Progress
}

// Rebuild drops and re-creates the documents of account from the store.
func (ix *Indexer) Rebuild(ctx context.Context, account string, o *RebuildOptions) error {
	defer ix.lock(account)()
	return ix.rebuild(ctx, account, o)
}

func (ix *Indexer) rebuild(ctx context.Context, account string, o *RebuildOptions) error {
	if o == nil {
		o = &RebuildOptions{}
	}
	st, err := ix.Store.State(ctx, account)
	if err != nil {
		return err
	}
	boxes, err := ix.Store.Mailboxes(ctx, account)
	if err != nil {
		return err
	}
	total := 0
	for _, m := range boxes {
		total += int(m.Messages)
	}
	current := map[string]bool{}
	done := 0
	start := time.Now()
	size := ix.batchSize()
	if o.Rate > 0 && o.Rate < float64(size) {
		size = max(1, int(o.Rate)) // about one batch a second: a steady rate and progress
	}
	for _, m := range boxes {
		from := uint32(1)
		for {
			page, err := ix.Store.Emails(ctx, account, m.ID, from, ^uint32(0), size)
			if err != nil {
				return err
			}
			for _, e := range page {
				current[DocID(account, e.Mailbox, e.UID)] = true
			}
			for rest := page; len(rest) > 0; {
				n := chunkLen(rest)
				docs, err := ix.docs(ctx, account, rest[:n])
				if err != nil {
					return err
				}
				if err := ix.Backend.Apply(ctx, account, &Batch{Docs: docs}); err != nil {
					return err
				}
				rest = rest[n:]
			}
			done += len(page)
			if o.Progress != nil {
				o.Progress(done, total)
			}
			if o.Rate > 0 { // throttle to o.Rate docs/s on average
				want := time.Duration(float64(done) / o.Rate * float64(time.Second))
				if d := want - time.Since(start); d > 0 {
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(d):
					}
				}
			}
			if len(page) < size {
				break
			}
			from = page[len(page)-1].UID + 1
		}
	}
	// Documents of memberships that no longer exist go; a delete versioned
	// st.ModSeq cannot remove a document written after st was read.
	stale := &Batch{Checkpoint: st.ModSeq}
	err = ix.Backend.DocIDs(ctx, account, func(id string) error {
		if !current[id] {
			stale.Deletes = append(stale.Deletes, Delete{ID: id, Version: st.ModSeq})
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Changes after st.ModSeq are applied by the next Sync; documents
	// written above may already reflect some of them (versions keep them).
	return ix.Backend.Apply(ctx, account, stale)
}

// Run indexes until ctx ends: every account with changes after its
// checkpoint, found through the store's activity feed (every
// PollInterval), by notification (with Watch) and by a sweep of every
// account (at start, then every SweepInterval).
func (ix *Indexer) Run(ctx context.Context) error {
	poll := ix.PollInterval
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	sweepEvery := ix.SweepInterval
	if sweepEvery <= 0 {
		sweepEvery = 10 * time.Minute
	}
	workers := ix.Workers
	if workers <= 0 {
		workers = 8
	}
	q := newQueue()
	retry := &backoff{n: map[string]int{}}
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				acct, ok := q.pop(ctx)
				if !ok {
					return
				}
				err := ix.syncOrDrop(ctx, acct)
				if err != nil && ctx.Err() == nil {
					d := retry.failed(acct)
					ix.log().Error("index: sync failed; will retry", "account", acct, "in", d, "err", err)
					time.AfterFunc(d, func() { q.push(acct) })
				} else if err == nil {
					retry.ok(acct)
				}
				q.done(acct)
			}
		}()
	}
	defer wg.Wait()
	// The feed is read from before the first sweep starts: together they
	// miss nothing.
	f := &feed{cursor: time.Now(), seen: map[noteKey]struct{}{}}
	sweepNow := make(chan struct{}, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		ix.sweepLoop(ctx, q, sweepEvery, sweepNow)
	}()
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := ix.readFeed(ctx, q, f)
		if errors.Is(err, storage.ErrActivityTruncated) {
			ix.log().Warn("index: activity feed no longer reaches back to the last read; sweeping every account")
			f.cursor = time.Now()
			select {
			case sweepNow <- struct{}{}:
			default:
			}
		} else if err != nil && ctx.Err() == nil {
			ix.log().Error("index: activity feed read failed; will retry", "err", err)
		}
	}
}

// sweepLoop compares every account with its checkpoint, at start and
// then every interval (or when asked on now).
func (ix *Indexer) sweepLoop(ctx context.Context, q *queue, interval time.Duration, now <-chan struct{}) {
	watched := map[string]func(){}
	defer func() {
		for _, c := range watched {
			c()
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := ix.pollOnce(ctx, q, watched); err != nil && ctx.Err() == nil {
			ix.log().Error("index: sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-now:
		}
	}
}

// feed is the indexer's position in the store's activity feed.
type feed struct {
	cursor   time.Time            // read up to here (reader's clock)
	lastLong time.Time            // last read with the whole overlap
	seen     map[noteKey]struct{} // notes already acted on, within the overlap
	lastWarn time.Time
}

type noteKey struct {
	account, writer string
	at              int64 // unix ms
}

func keyOf(n storage.ActivityNote) noteKey { return noteKey{n.Account, n.Writer, n.At.UnixMilli()} }

// Reads look this far back, except every longReadEvery one that looks
// FeedOverlap back: late notes are found within seconds, and a note is
// read a dozen times rather than once a poll for the whole overlap.
const (
	shortOverlap  = 2 * time.Second
	longReadEvery = 10 * time.Second
)

// readFeed queues the accounts noted since the last read (less the
// overlap), each note once. A read that fails part-way queues what it
// returned and forgets nothing: the next read sees those notes again.
func (ix *Indexer) readFeed(ctx context.Context, q *queue, f *feed) error {
	overlap := ix.FeedOverlap
	if overlap <= 0 {
		overlap = 30 * time.Second
	}
	start := time.Now()
	back := min(shortOverlap, overlap)
	if start.Sub(f.lastLong) >= longReadEvery {
		back = overlap
	}
	since := f.cursor.Add(-back)
	var fresh []storage.ActivityNote
	err := ix.Store.Activity(ctx, since, func(n storage.ActivityNote) error {
		if _, ok := f.seen[keyOf(n)]; !ok {
			fresh = append(fresh, n)
		}
		if n.At.After(start.Add(5*time.Second)) && start.Sub(f.lastWarn) > time.Minute {
			f.lastWarn = start
			ix.log().Warn("index: an activity note is from the future: the writer's clock is ahead of this indexer's; keep clocks within index.feed_overlap (ADR 0009)",
				"account", n.Account, "writer", n.Writer, "at", n.At, "ahead", n.At.Sub(start))
		}
		return nil
	})
	queued := map[string]bool{}
	for _, n := range fresh {
		if !queued[n.Account] {
			queued[n.Account] = true
			q.push(n.Account)
		}
	}
	if err != nil {
		return err
	}
	for _, n := range fresh {
		f.seen[keyOf(n)] = struct{}{}
	}
	f.cursor = start
	if back == overlap {
		f.lastLong = start
	}
	horizon := start.Add(-overlap - time.Minute).UnixMilli() // older than any read will ask for
	for k := range f.seen {
		if k.at < horizon {
			delete(f.seen, k)
		}
	}
	return nil
}

// backoff spaces the retries of an account whose sync fails.
type backoff struct {
	mu sync.Mutex
	n  map[string]int
}

func (b *backoff) failed(acct string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n[acct]++
	return min(time.Second<<min(b.n[acct]-1, 6), time.Minute)
}

func (b *backoff) ok(acct string) {
	b.mu.Lock()
	delete(b.n, acct)
	b.mu.Unlock()
}

// syncOrDrop indexes the account's changes, or drops its documents if
// the account no longer exists.
func (ix *Indexer) syncOrDrop(ctx context.Context, account string) error {
	if _, err := ix.Store.Account(ctx, account); errors.Is(err, storage.ErrNotFound) {
		cp, err := ix.Backend.Checkpoint(ctx, account)
		if err != nil || cp == 0 {
			return err
		}
		ix.log().Info("index: account deleted; dropping its documents", "account", account)
		defer ix.lock(account)()
		return ix.Backend.DropAccount(ctx, account)
	} else if err != nil {
		return err
	}
	return ix.Sync(ctx, account)
}

func (ix *Indexer) pollOnce(ctx context.Context, q *queue, watched map[string]func()) error {
	// Checkpoints first: an account created in between is then live.
	cps, err := ix.Backend.Checkpoints(ctx)
	if err != nil {
		return err
	}
	accts, err := ix.Store.Accounts(ctx)
	if err != nil {
		return err
	}
	live := map[string]bool{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16) // state reads in flight
	for _, a := range accts {
		live[a.ID] = true
		g.Go(func() error {
			st, err := ix.Store.State(gctx, a.ID)
			if err != nil {
				return err
			}
			if st.ModSeq > cps[a.ID] {
				q.push(a.ID)
			}
			return nil
		})
		if ix.Watch {
			if _, ok := watched[a.ID]; !ok {
				ch, cancel := ix.Store.Watch(a.ID)
				stop := make(chan struct{})
				watched[a.ID] = func() { cancel(); close(stop) }
				go func(id string) {
					for {
						select {
						case <-ch:
							q.push(id)
						case <-stop:
							return
						case <-ctx.Done():
							return
						}
					}
				}(a.ID)
			}
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for id, c := range watched {
		if !live[id] {
			c()
			delete(watched, id)
		}
	}
	return ix.dropDeleted(ctx, cps, live)
}

// DropDeleted removes the documents of accounts that no longer exist.
func (ix *Indexer) DropDeleted(ctx context.Context) error {
	cps, err := ix.Backend.Checkpoints(ctx)
	if err != nil {
		return err
	}
	accts, err := ix.Store.Accounts(ctx)
	if err != nil {
		return err
	}
	live := map[string]bool{}
	for _, a := range accts {
		live[a.ID] = true
	}
	return ix.dropDeleted(ctx, cps, live)
}

func (ix *Indexer) dropDeleted(ctx context.Context, cps map[string]uint64, live map[string]bool) error {
	for id := range cps {
		if !live[id] {
			ix.log().Info("index: account deleted; dropping its documents", "account", id)
			unlock := ix.lock(id)
			err := ix.Backend.DropAccount(ctx, id)
			unlock()
			if err != nil {
				return fmt.Errorf("drop %s: %w", id, err)
			}
		}
	}
	return nil
}

// queue hands accounts to workers, each account to one worker at a time;
// an account pushed while being indexed runs again afterwards.
type queue struct {
	mu      sync.Mutex
	pending []string
	queued  map[string]bool
	running map[string]bool
	again   map[string]bool
	wake    chan struct{}
}

func newQueue() *queue {
	return &queue{queued: map[string]bool{}, running: map[string]bool{}, again: map[string]bool{}, wake: make(chan struct{}, 1)}
}

func (q *queue) push(a string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.running[a] {
		q.again[a] = true
		return
	}
	if !q.queued[a] {
		q.queued[a] = true
		q.pending = append(q.pending, a)
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

func (q *queue) pop(ctx context.Context) (string, bool) {
	for {
		q.mu.Lock()
		if len(q.pending) > 0 {
			a := q.pending[0]
			q.pending = q.pending[1:]
			delete(q.queued, a)
			q.running[a] = true
			more := len(q.pending) > 0
			q.mu.Unlock()
			if more {
				select {
				case q.wake <- struct{}{}:
				default:
				}
			}
			return a, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return "", false
		case <-q.wake:
		}
	}
}

func (q *queue) done(a string) {
	q.mu.Lock()
	delete(q.running, a)
	again := q.again[a]
	delete(q.again, a)
	q.mu.Unlock()
	if again {
		q.push(a)
	}
}
