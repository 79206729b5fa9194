package cassandra

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/gocql/gocql"

	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/failpoint"
)

// Failpoints of the commit protocol (DESIGN §2.5).
const (
	FPBeforeLWT   = "cassandra.before-lwt"   // intent built (large intents written), LWT not sent
	FPAfterLWT    = "cassandra.after-lwt"    // LWT applied, no row written
	FPMidApply    = "cassandra.mid-apply"    // LWT applied, half of the row writes done
	FPBeforeMark  = "cassandra.before-mark"  // every row written, applied_version not updated
	FPAfterCommit = "cassandra.after-commit" // everything done, caller not told
	// FPLWTTimeout makes the engine treat an applied LWT as timed out
	// (outcome unknown), to test its recovery. Not a crash point.
	FPLWTTimeout = "cassandra.lwt-timeout"
)

// ErrOutcomeUnknown: the conditional update timed out and a later one
// superseded it, so whether this mutation committed cannot be told. Like
// any timeout, the caller must treat it as "maybe" (deliveries carry an
// idempotency key for this).
var ErrOutcomeUnknown = errors.New("cassandra: commit outcome unknown (timeout)")

// intent is the redo record a commit stores with its LWT: the WriteSets of
// one group, in order, and the write timestamp of each (TS+i), all larger
// than any timestamp the account used before.
type intent struct {
	Base storage.AccountState `json:"base"` // state before the group
	TS   int64                `json:"ts"`
	Sets []*storage.WriteSet  `json:"sets"`
}

func (it *intent) last() *storage.WriteSet { return it.Sets[len(it.Sets)-1] }

// encodeIntent is JSON, deflated when larger than 1 KiB ('J' or 'Z' first).
func encodeIntent(it *intent) ([]byte, error) {
	j, err := json.Marshal(it)
	if err != nil {
		return nil, err
	}
	if len(j) <= 1024 {
		return append([]byte{'J'}, j...), nil
	}
	var b bytes.Buffer
	b.WriteByte('Z')
	w, _ := flate.NewWriter(&b, flate.BestSpeed)
	w.Write(j)
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func decodeIntent(b []byte) (*intent, error) {
	if len(b) == 0 {
		return nil, errors.New("empty intent")
	}
	var j []byte
	switch b[0] {
	case 'J':
		j = b[1:]
	case 'Z':
		var err error
		j, err = io.ReadAll(flate.NewReader(bytes.NewReader(b[1:])))
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown intent encoding %q", b[0])
	}
	it := new(intent)
	if err := json.Unmarshal(j, it); err != nil {
		return nil, err
	}
	if len(it.Sets) == 0 {
		return nil, errors.New("intent without write sets")
	}
	return it, nil
}

// stateRow is the account_state row.
type stateRow struct {
	exists       bool
	st           storage.AccountState
	home         string
	lastTS       int64
	intent       []byte
	intentID     gocql.UUID
	intentChunks int
	committedAt  time.Time
	applied      uint64
}

func (r *stateRow) pending() bool { return r.exists && r.applied < r.st.Version }

const stateSelect = `SELECT version, modseq, min_change_seq, next_mailbox_id, next_email_id, next_thread_id,
	last_uid_validity, used_bytes, used_messages, home_dc, last_ts, intent, intent_id, intent_chunks,
	committed_at, applied_version FROM account_state WHERE account = ?`

func (ds *dcSession) readState(ctx context.Context, account string, cons gocql.Consistency) (stateRow, error) {
	var r stateRow
	var v, ms, mcs, nmb, nem, nth, luv, applied int64
	err := ds.q(ctx, stateSelect, account).Consistency(cons).Scan(&v, &ms, &mcs, &nmb, &nem, &nth, &luv,
		&r.st.UsedBytes, &r.st.UsedMessages, &r.home, &r.lastTS, &r.intent, &r.intentID, &r.intentChunks,
		&r.committedAt, &applied)
	if errors.Is(err, gocql.ErrNotFound) {
		return r, nil
	} else if err != nil {
		return r, err
	}
	r.exists = true
	r.st.Version, r.st.ModSeq, r.st.MinChangeSeq = uint64(v), uint64(ms), uint64(mcs)
	r.st.NextMailboxID, r.st.NextEmailID, r.st.NextThreadID = uint32(nmb), uint64(nem), uint64(nth)
	r.st.LastUIDValidity = uint32(luv)
	r.applied = uint64(applied)
	return r, nil
}

// --- group commit ---

type request struct {
	ctx  context.Context
	fn   func(r storage.Reader) (*storage.WriteSet, error)
	excl func() error // runs alone, between two commits (home moves)
	done chan error
}

type acctQueue struct {
	mu      sync.Mutex
	leader  bool
	pending []*request
}

func (e *Engine) queue(account string) *acctQueue {
	if q, ok := e.queues.Load(account); ok {
		return q.(*acctQueue)
	}
	q, _ := e.queues.LoadOrStore(account, &acctQueue{})
	return q.(*acctQueue)
}

// Update implements storage.Engine. Mutations of one account arriving
// while a commit is in flight are committed together by the next one
// (group commit): each fn sees the writes of those before it, and the
// group costs one LWT. Across processes, the LWT on the state row
// serialises commits; the loser re-runs its fns on fresh state.
func (e *Engine) Update(ctx context.Context, account string, fn func(r storage.Reader) (*storage.WriteSet, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return e.enqueue(account, &request{ctx: ctx, fn: fn, done: make(chan error, 1)})
}

// exclusive runs f in the account's commit queue, alone: no commit of this
// process runs during it.
func (e *Engine) exclusive(ctx context.Context, account string, f func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return e.enqueue(account, &request{ctx: ctx, excl: f, done: make(chan error, 1)})
}

func (e *Engine) enqueue(account string, r *request) error {
	q := e.queue(account)
	q.mu.Lock()
	q.pending = append(q.pending, r)
	if q.leader {
		q.mu.Unlock()
		return <-r.done
	}
	q.leader = true
	q.mu.Unlock()
	for {
		q.mu.Lock()
		n := 0
		for n < len(q.pending) && n < e.o.MaxGroup && q.pending[n].excl == nil {
			n++
		}
		if len(q.pending) == 0 {
			q.leader = false
			q.mu.Unlock()
			break
		}
		if n == 0 {
			x := q.pending[0]
			q.pending = append(q.pending[:0:0], q.pending[1:]...)
			q.mu.Unlock()
			x.done <- x.excl()
			continue
		}
		group := append([]*request(nil), q.pending[:n]...)
		q.pending = append(q.pending[:0:0], q.pending[n:]...)
		q.mu.Unlock()
		e.commitGroup(account, group)
	}
	return <-r.done
}

// errRetry marks a failed attempt that commitGroup may repeat.
type errRetry struct{ err error }

func (e errRetry) Error() string { return e.err.Error() }
func (e errRetry) Unwrap() error { return e.err }

func (e *Engine) commitGroup(account string, group []*request) {
	ctx := context.Background()
	var results []error
	var err error
	start := time.Now()
	for attempt := 0; attempt < e.o.MaxAttempts || time.Since(start) < 2*e.o.Timeout; attempt++ {
		if attempt > 0 {
			// Jittered back-off: another process won the state row (or a
			// read timed out). Up to MaxAttempts and at least 2×Timeout.
			d := time.Duration(rand.Int64N(int64(min(time.Duration(1)<<min(attempt, 8), 200) * time.Millisecond)))
			time.Sleep(d + time.Millisecond)
		}
		results, err = e.tryCommit(ctx, account, group)
		var re errRetry
		if !errors.As(err, &re) {
			break
		}
		e.counters.conflicts.Add(1)
		err = fmt.Errorf("%w: %v", storage.ErrConflict, re.err)
	}
	for i, r := range group {
		if err != nil {
			r.done <- err
		} else {
			r.done <- results[i]
		}
	}
}

// memo is the state this process committed last for an account, with
// its rows written.
type memo struct {
	ds  *dcSession
	row stateRow
}

// flight is a commit this process is applying; readers of the account
// wait for it instead of applying the same intent.
type flight struct {
	version uint64
	done    chan struct{}
}

func (e *Engine) startFlight(account string, version uint64) *flight {
	f := &flight{version: version, done: make(chan struct{})}
	e.flights.Store(account, f)
	return f
}

func (e *Engine) endFlight(account string, f *flight) {
	e.flights.CompareAndDelete(account, f)
	close(f.done)
}

// tryCommit runs the group's fns over one state and commits what they
// return with one LWT. A lost LWT returns errRetry.
func (e *Engine) tryCommit(ctx context.Context, account string, group []*request) ([]error, error) {
	var ds *dcSession
	var row stateRow
	if m, ok := e.mem.Load(account); ok {
		// This process made the last commit and wrote its rows: start from
		// that state without reading it. If another process committed
		// since, the LWT fails and the next attempt reads.
		ds, row = m.(*memo).ds, m.(*memo).row
	} else {
		var err error
		if ds, row, err = e.settle(ctx, account, true); err != nil {
			if transient(err) {
				return nil, errRetry{err}
			}
			return nil, err
		}
	}
	base := newReader(ctx, ds, e, account, row.st)
	if len(group) > 1 {
		e.warm(base, group)
	}
	ov := &overlay{base: base}
	results := make([]error, len(group))
	var sets []*storage.WriteSet
	var members []int
	for i, r := range group {
		if err := r.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		ws, err := r.fn(ov)
		if err != nil {
			if transient(err) {
				return nil, errRetry{err} // a read failed: run the group again
			}
			results[i] = err
			continue
		}
		if ws == nil {
			continue
		}
		cur := ov.stateVersion()
		if ws.PrevVersion != cur || ws.State.Version != cur+1 {
			results[i] = fmt.Errorf("cassandra: write set %d->%d does not follow version %d", ws.PrevVersion, ws.State.Version, cur)
			continue
		}
		ov.push(ws)
		sets = append(sets, ws)
		members = append(members, i)
	}
	if len(sets) == 0 {
		return results, nil
	}
	it := &intent{Base: row.st, TS: max(time.Now().UnixMicro(), row.lastTS+1), Sets: sets}
	fail := func(err error) ([]error, error) {
		for _, i := range members {
			results[i] = err
		}
		return results, nil
	}
	id, err := gocql.RandomUUID()
	if err != nil {
		return nil, err
	}
	enc, err := encodeIntent(it)
	if err != nil {
		return fail(err)
	}
	last := it.last().State
	chunks := 0
	if len(enc) > inlineIntent {
		if chunks, err = e.writeIntentChunks(ctx, ds, account, last.Version, id, enc); err != nil {
			return fail(err)
		}
		enc = []byte{}
	}
	dropChunks := func() {
		if chunks > 0 {
			_ = ds.exec(ctx, `DELETE FROM intents WHERE account = ? AND version = ? AND id = ?`, account, i64(last.Version), id)
		}
	}
	e.mem.Delete(account)
	if err := failpoint.Inject(FPBeforeLWT); err != nil {
		dropChunks()
		return fail(err)
	}
	fl := e.startFlight(account, last.Version)
	applied, cur, err := e.casState(ctx, ds, account, row, it, enc, id, chunks)
	if err == nil && applied {
		if ferr := failpoint.Inject(FPLWTTimeout); ferr != nil {
			err = &gocql.RequestErrWriteTimeout{WriteType: "CAS"}
		}
	}
	if err != nil && uncertain(err) {
		// Did it commit? A serial read completes any Paxos round in flight.
		var now stateRow
		var rerr error
		for try := 0; try < 4; try++ {
			if now, rerr = ds.readState(ctx, account, e.ser); rerr == nil || !transient(rerr) {
				break
			}
			time.Sleep(time.Duration(50<<try) * time.Millisecond)
		}
		switch {
		case rerr != nil:
			err = fmt.Errorf("%w: %v (re-read: %v)", ErrOutcomeUnknown, err, rerr)
		case now.exists && now.intentID == id:
			applied, err = true, nil
		case now.exists == row.exists && now.st.Version == row.st.Version:
			applied, err = false, nil // not committed, and can no longer be
		default:
			err = fmt.Errorf("%w: %v", ErrOutcomeUnknown, err)
		}
	}
	if err != nil {
		e.endFlight(account, fl)
		if !errors.Is(err, ErrOutcomeUnknown) {
			dropChunks()
			if transient(err) {
				return nil, errRetry{err} // not applied (a timeout would be uncertain)
			}
		}
		return fail(err)
	}
	if !applied {
		e.endFlight(account, fl)
		dropChunks()
		if h, _ := cur["home_dc"].(string); h != "" && h != ds.dc && !strings.HasPrefix(h, movingPrefix) {
			e.homes.Store(account, h) // moved: the next attempt goes to the new home
		}
		return nil, errRetry{fmt.Errorf("state row changed: expected version %d in %s, found %v in %v",
			row.st.Version, ds.dc, cur["version"], cur["home_dc"])}
	}
	e.counters.commits.Add(1)
	e.counters.mutations.Add(int64(len(sets)))
	defer e.endFlight(account, fl)
	if err := failpoint.Inject(FPAfterLWT); err != nil {
		return fail(err)
	}
	// Committed: the rows must be written. Writes are idempotent, so
	// failures are retried; if they keep failing the next access of the
	// account completes them, but the caller cannot be told it succeeded.
	err = e.apply(ctx, ds, account, it, true)
	for try := 0; err != nil && try < 5 && !errors.Is(err, failpoint.ErrInjected); try++ {
		e.counters.applyErrors.Add(1)
		time.Sleep(time.Duration(100<<try) * time.Millisecond)
		err = e.apply(ctx, ds, account, it, false)
	}
	if err != nil {
		if errors.Is(err, failpoint.ErrInjected) {
			return fail(err)
		}
		return fail(fmt.Errorf("%w: committed version %d, rows not all written (the next access completes them): %v", ErrOutcomeUnknown, last.Version, err))
	}
	if err := failpoint.Inject(FPBeforeMark); err != nil {
		return fail(err)
	}
	// The rows are durable: the mutation is done. Other processes learn it
	// from applied_version, written in the background (until it lands they
	// wait ApplyGrace, then re-apply the intent: idempotent).
	next := stateRow{exists: true, st: last, home: ds.dc, lastTS: it.TS + int64(len(sets)) - 1, applied: last.Version}
	e.mem.Store(account, &memo{ds: ds, row: next})
	e.marks.Add(1)
	go func() {
		defer e.marks.Done()
		mctx, cancel := context.WithTimeout(context.Background(), 2*e.o.Timeout)
		defer cancel()
		if err := e.markApplied(mctx, ds, account, it, chunks > 0, id); err != nil {
			e.o.Logger.Warn("cassandra: mark applied", "account", account, "version", last.Version, "err", err)
		}
	}()
	if err := failpoint.Inject(FPAfterCommit); err != nil {
		e.mem.Delete(account)
		return fail(err)
	}
	for _, i := range members {
		results[i] = nil
	}
	return results, nil
}

// warm runs the group's fns concurrently over the base state and throws
// their results away: the reads they make fill the base reader's cache, so
// the real, sequential pass (each fn over the writes of those before it)
// waits for one read chain instead of the sum of them. fns have no side
// effects (they may run again on conflict), so this changes no result.
func (e *Engine) warm(base *reader, group []*request) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, r := range group {
		if r.ctx.Err() != nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_, _ = r.fn(base)
		}()
	}
	wg.Wait()
}

// casState is the one LWT of a commit.
func (e *Engine) casState(ctx context.Context, ds *dcSession, account string, row stateRow, it *intent, enc []byte, id gocql.UUID, chunks int) (bool, map[string]any, error) {
	st := it.last().State
	lastTS := it.TS + int64(len(it.Sets)) - 1
	now := time.Now().UTC()
	cur := map[string]any{}
	var q *gocql.Query
	if row.exists {
		q = ds.s.Query(`UPDATE account_state SET version = ?, modseq = ?, min_change_seq = ?, next_mailbox_id = ?,
			next_email_id = ?, next_thread_id = ?, last_uid_validity = ?, used_bytes = ?, used_messages = ?,
			last_ts = ?, intent = ?, intent_id = ?, intent_chunks = ?, committed_at = ?
			WHERE account = ? IF version = ? AND home_dc = ?`,
			i64(st.Version), i64(st.ModSeq), i64(st.MinChangeSeq), int64(st.NextMailboxID), i64(st.NextEmailID),
			i64(st.NextThreadID), int64(st.LastUIDValidity), st.UsedBytes, st.UsedMessages,
			lastTS, enc, id, chunks, now, account, i64(row.st.Version), ds.dc)
	} else {
		q = ds.s.Query(`INSERT INTO account_state (account, version, modseq, min_change_seq, next_mailbox_id,
			next_email_id, next_thread_id, last_uid_validity, used_bytes, used_messages, home_dc,
			last_ts, intent, intent_id, intent_chunks, committed_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
			account, i64(st.Version), i64(st.ModSeq), i64(st.MinChangeSeq), int64(st.NextMailboxID), i64(st.NextEmailID),
			i64(st.NextThreadID), int64(st.LastUIDValidity), st.UsedBytes, st.UsedMessages, ds.dc,
			lastTS, enc, id, chunks, now)
	}
	e.counters.lwts.Add(1)
	e.counters.commitLWTs.Add(1)
	applied, err := q.WithContext(ctx).Idempotent(false).SerialConsistency(e.ser).MapScanCAS(cur)
	return applied, cur, err
}

func (e *Engine) writeIntentChunks(ctx context.Context, ds *dcSession, account string, version uint64, id gocql.UUID, enc []byte) (int, error) {
	n := (len(enc) + intentChunk - 1) / intentChunk
	for i := 0; i < n; i++ {
		part := enc[i*intentChunk : min((i+1)*intentChunk, len(enc))]
		if err := ds.exec(ctx, `INSERT INTO intents (account, version, id, idx, data) VALUES (?, ?, ?, ?, ?)`,
			account, i64(version), id, i, part); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func (e *Engine) loadIntent(ctx context.Context, ds *dcSession, account string, row stateRow) (*intent, error) {
	enc := row.intent
	if row.intentChunks > 0 {
		it := ds.q(ctx, `SELECT idx, data FROM intents WHERE account = ? AND version = ? AND id = ?`,
			account, i64(row.st.Version), row.intentID).PageSize(64).Iter()
		var buf []byte
		var i int
		var part []byte
		n := 0
		for it.Scan(&i, &part) {
			if i != n {
				break
			}
			buf = append(buf, part...)
			n++
		}
		if err := it.Close(); err != nil {
			return nil, err
		}
		if n != row.intentChunks {
			return nil, errIntentGone
		}
		enc = buf
	}
	it, err := decodeIntent(enc)
	if err != nil {
		return nil, fmt.Errorf("cassandra: account %s version %d: intent: %w", account, row.st.Version, err)
	}
	if it.last().State.Version != row.st.Version {
		return nil, fmt.Errorf("cassandra: account %s: intent ends at version %d, state is %d", account, it.last().State.Version, row.st.Version)
	}
	return it, nil
}

var errIntentGone = errors.New("cassandra: intent chunks gone")

// markApplied records that every row of the intent is written; the
// write's timestamp is the intent's last, so it never goes backwards.
func (e *Engine) markApplied(ctx context.Context, ds *dcSession, account string, it *intent, chunked bool, id gocql.UUID) error {
	last := it.last().State.Version
	lastTS := it.TS + int64(len(it.Sets)) - 1
	if err := ds.q(ctx, `UPDATE account_state SET applied_version = ? WHERE account = ?`, i64(last), account).
		WithTimestamp(lastTS).Exec(); err != nil {
		return err
	}
	if chunked {
		// Intent rows are written once (random id) and never again, so the
		// delete takes the current time, which is after their write.
		return ds.exec(ctx, `DELETE FROM intents WHERE account = ? AND version = ? AND id = ?`, account, i64(last), id)
	}
	return nil
}

// settle reads the account's state in its home DC and makes sure the last
// commit is applied: it waits for this process's own apply, gives another
// process ApplyGrace to finish, then applies the intent itself (roll
// forward). A reader never sees a state whose rows are missing.
func (e *Engine) settle(ctx context.Context, account string, write bool) (*dcSession, stateRow, error) {
	ds, err := e.route(ctx, account)
	if err != nil {
		return nil, stateRow{}, err
	}
	reroutes := 0
	movingSince := time.Time{}
	for {
		if err := ctx.Err(); err != nil {
			return nil, stateRow{}, err
		}
		row, err := ds.readState(ctx, account, e.cons)
		if err != nil {
			return nil, row, err
		}
		if row.exists && row.home != "" && row.home != ds.dc {
			if to, ok := strings.CutPrefix(row.home, movingPrefix); ok {
				// A move is in progress: reads stay where they are, writes wait.
				if write {
					if movingSince.IsZero() {
						movingSince = time.Now()
					}
					if time.Since(movingSince) > e.o.Timeout {
						return nil, row, fmt.Errorf("%w: account %s is moving to %s", ErrMoving, account, to)
					}
					time.Sleep(20 * time.Millisecond)
					continue
				}
			} else {
				reroutes++
				if reroutes > 3 {
					return nil, row, fmt.Errorf("cassandra: account %s: home DC keeps changing", account)
				}
				e.homes.Store(account, row.home)
				if ds, err = e.routeTo(account, row.home); err != nil {
					return nil, row, err
				}
				continue
			}
		}
		if !row.pending() {
			return ds, row, nil
		}
		if m, ok := e.mem.Load(account); ok && m.(*memo).row.st.Version == row.st.Version {
			row.applied = row.st.Version // applied by this process; the marker is on its way
			return ds, row, nil
		}
		if v, ok := e.flights.Load(account); ok && v.(*flight).version == row.st.Version {
			select {
			case <-v.(*flight).done:
			case <-ctx.Done():
				return nil, row, ctx.Err()
			}
			continue
		}
		if age := time.Since(row.committedAt); age >= 0 && age < e.o.ApplyGrace {
			time.Sleep(min(e.o.ApplyGrace-age, 10*time.Millisecond))
			continue
		}
		if err := e.rollForward(ctx, ds, account, row); err != nil {
			if errors.Is(err, errIntentGone) {
				continue // applied meanwhile by its committer; re-read
			}
			return nil, row, err
		}
		row.applied = row.st.Version
		return ds, row, nil
	}
}

// rollForward applies the intent of the last commit (idempotent).
func (e *Engine) rollForward(ctx context.Context, ds *dcSession, account string, row stateRow) error {
	it, err := e.loadIntent(ctx, ds, account, row)
	if err != nil {
		return err
	}
	if err := e.apply(ctx, ds, account, it, false); err != nil {
		return err
	}
	e.counters.rollForwards.Add(1)
	e.o.Logger.Info("cassandra: rolled forward an interrupted commit", "account", account, "version", row.st.Version)
	return e.markApplied(ctx, ds, account, it, row.intentChunks > 0, row.intentID)
}

// View implements storage.Engine. fn reads the settled state; if a commit
// lands while it reads (the state version moved), fn runs again, so what
// it returns is a consistent snapshot (up to 5 tries).
func (e *Engine) View(ctx context.Context, account string, fn func(r storage.Reader) error) error {
	var err error
	for attempt := 0; ; attempt++ {
		ds, row, serr := e.settle(ctx, account, false)
		if serr != nil {
			if transient(serr) && attempt < 4 {
				continue
			}
			return serr
		}
		err = fn(newReader(ctx, ds, e, account, row.st))
		if attempt >= 4 {
			return err
		}
		if err != nil && transient(err) {
			continue
		}
		after, serr := ds.readState(ctx, account, e.cons)
		if serr != nil {
			if err != nil {
				return err
			}
			return serr
		}
		if after.exists == row.exists && after.st.Version == row.st.Version {
			return err
		}
		e.counters.viewRetries.Add(1)
	}
}

// --- applying a write set ---

// stmt is one write: a single statement or an unlogged batch of
// statements on one partition. Every statement carries its own USING
// TIMESTAMP, so a batch may hold the rows of several write sets.
type stmt struct {
	entries []gocql.BatchEntry
}

const maxBatch = 64

type stmtList struct {
	list []stmt
	open map[string]int // partition → index of its open batch in list
}

// add appends a statement; those with the same partition key (non-empty)
// are batched.
func (l *stmtList) add(partition string, q string, args ...any) {
	if l.open == nil {
		l.open = map[string]int{}
	}
	be := gocql.BatchEntry{Stmt: q, Args: args, Idempotent: true}
	if partition != "" {
		if i, ok := l.open[partition]; ok && len(l.list[i].entries) < maxBatch {
			l.list[i].entries = append(l.list[i].entries, be)
			return
		}
		l.open[partition] = len(l.list)
	}
	l.list = append(l.list, stmt{entries: []gocql.BatchEntry{be}})
}

// Statements bind the write timestamp: last for INSERT, first for DELETE.
const (
	qPutMailbox = `INSERT INTO mailboxes (account, id, name, role, uid_validity, uid_next, highest_modseq,
		created_modseq, messages, unseen, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`
	qDelMailbox = `DELETE FROM mailboxes USING TIMESTAMP ? WHERE account = ? AND id = ?`
	qPutEmail   = `INSERT INTO emails (account, mailbox, bucket, uid, email_id, blob, size, internal_date, flags,
		modseq, thread_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`
	qDelEmail      = `DELETE FROM emails USING TIMESTAMP ? WHERE account = ? AND mailbox = ? AND bucket = ? AND uid = ?`
	qDropEmails    = `DELETE FROM emails USING TIMESTAMP ? WHERE account = ? AND mailbox = ? AND bucket = ?`
	qPutRef        = `INSERT INTO blob_refs (blob, account, mailbox, uid) VALUES (?, ?, ?, ?) USING TIMESTAMP ?`
	qDelRef        = `DELETE FROM blob_refs USING TIMESTAMP ? WHERE blob = ? AND account = ? AND mailbox = ? AND uid = ?`
	qPutChange     = `INSERT INTO changes (account, bucket, seq, part, kind, mailbox, uids, email_ids, threads, blobs, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`
	qDropChanges   = `DELETE FROM changes USING TIMESTAMP ? WHERE account = ? AND bucket = ?`
	qTrimChanges   = `DELETE FROM changes USING TIMESTAMP ? WHERE account = ? AND bucket = ? AND seq < ?`
	qPutKV         = `INSERT INTO account_kv (account, part, key, value) VALUES (?, ?, ?, ?) USING TIMESTAMP ?`
	qDelKV         = `DELETE FROM account_kv USING TIMESTAMP ? WHERE account = ? AND part = ? AND key = ?`
	qDropKV        = `DELETE FROM account_kv USING TIMESTAMP ? WHERE account = ? AND part = ?`
	qPutDedupe     = `INSERT INTO dedupe (account, bucket, key, value) VALUES (?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?`
	qDelDedupe     = `DELETE FROM dedupe USING TIMESTAMP ? WHERE account = ? AND bucket = ? AND key = ?`
	qDropDedupe    = `DELETE FROM dedupe USING TIMESTAMP ? WHERE account = ? AND bucket = ?`
	qDropMailboxes = `DELETE FROM mailboxes USING TIMESTAMP ? WHERE account = ?`
	dedupePrefix   = "dlv/"
	threadKVPrefix = "th/"
	queueKVPrefix  = "q/"
)

// hashedKV are the key spaces spread over several account_kv partitions
// (part "<prefix><n>"): the thread index grows with the mailbox, the
// outbound queue with the backlog. Other keys (subscriptions…) share the
// account's plain partition (part "").
var hashedKV = []struct {
	prefix string
	parts  int
}{{threadKVPrefix, threadParts}, {queueKVPrefix, queueParts}}

// kvPart says where a keyed record lives: the dedupe table (with TTL) for
// delivery dedupe keys, a hashed account_kv partition for the hashed
// spaces, the account's plain account_kv partition for the rest.
func kvPart(key string) (dedupe bool, part string, bucket int) {
	if strings.HasPrefix(key, dedupePrefix) {
		return true, "", hashPart(key, dedupeParts)
	}
	for _, h := range hashedKV {
		if strings.HasPrefix(key, h.prefix) {
			return false, fmt.Sprintf("%s%d", h.prefix, hashPart(key, h.parts)), 0
		}
	}
	return false, "", 0
}

// kvParts lists every account_kv partition of an account.
func kvParts() []string {
	parts := []string{""}
	for _, h := range hashedKV {
		for p := 0; p < h.parts; p++ {
			parts = append(parts, fmt.Sprintf("%s%d", h.prefix, p))
		}
	}
	return parts
}

func u32s(v []uint32) any {
	if v == nil {
		return gocql.UnsetValue
	}
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

func u64s(v []uint64) any {
	if v == nil {
		return gocql.UnsetValue
	}
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

func strs(v []string) any {
	if v == nil {
		return gocql.UnsetValue
	}
	return v
}

// statements turns an intent into writes. Every write of set i carries
// timestamp TS+i: newer sets win over older ones whatever the order the
// writes land in, and re-applying an intent changes nothing. A row that a
// later set of the same intent writes again (a mailbox's counts, an
// email's flags) is written once, with the later value.
func (e *Engine) statements(account string, it *intent) []stmt {
	var l stmtList
	ttl := int(e.o.DedupeTTL / time.Second)
	later := map[string]bool{} // rows written by a later set
	once := func(key string) bool {
		if later[key] {
			return false
		}
		later[key] = true
		return true
	}
	for i := len(it.Sets) - 1; i >= 0; i-- {
		ws := it.Sets[i]
		ts := it.TS + int64(i)
		prev := it.Base
		if i > 0 {
			prev = it.Sets[i-1].State
		}
		for _, m := range ws.Mailboxes {
			if once(fmt.Sprint("m/", m.ID)) {
				l.add("mb", qPutMailbox, account, int64(m.ID), m.Name, m.Role, int64(m.UIDValidity), int64(m.UIDNext),
					i64(m.HighestModSeq), i64(m.CreatedModSeq), m.Messages, m.Unseen, m.Size, ts)
			}
		}
		for _, id := range ws.DeletedMailboxes {
			if once(fmt.Sprint("m/", id)) {
				l.add("mb", qDelMailbox, ts, account, int64(id))
			}
		}
		for _, em := range ws.Emails {
			b := int64(em.UID / emailBucket)
			if once(fmt.Sprint("e/", em.Mailbox, "/", em.UID)) {
				l.add(fmt.Sprint("e/", em.Mailbox, "/", b), qPutEmail, account, int64(em.Mailbox), b, int64(em.UID),
					i64(em.EmailID), em.BlobID, em.Size, em.InternalDate.UTC(), nonNil(em.Flags), i64(em.ModSeq), i64(em.ThreadID), ts)
			}
			if once(fmt.Sprint("r/", em.BlobID, "/", em.Mailbox, "/", em.UID)) {
				l.add("", qPutRef, em.BlobID, account, int64(em.Mailbox), int64(em.UID), ts)
			}
		}
		for _, d := range ws.DeletedEmails {
			b := int64(d.UID / emailBucket)
			if once(fmt.Sprint("e/", d.Mailbox, "/", d.UID)) {
				l.add(fmt.Sprint("e/", d.Mailbox, "/", b), qDelEmail, ts, account, int64(d.Mailbox), b, int64(d.UID))
			}
			if d.BlobID != "" && once(fmt.Sprint("r/", d.BlobID, "/", d.Mailbox, "/", d.UID)) {
				l.add("", qDelRef, ts, d.BlobID, account, int64(d.Mailbox), int64(d.UID))
			}
		}
		for _, c := range ws.Changes {
			b := int64(c.Seq / changeBucket)
			l.add(fmt.Sprint("c/", b), qPutChange, account, b, i64(c.Seq), int(c.Part), c.Kind.String(),
				int64(c.Mailbox), u32s(c.UIDs), u64s(c.EmailIDs), u64s(c.Threads), strs(c.Blobs), c.Time.UTC(), ts)
		}
		if trim := ws.TrimChangesBelow; trim > 0 {
			// Whole buckets below the trim point go as partition deletes
			// (one tombstone each); only the bucket holding it gets a range.
			for b := prev.MinChangeSeq / changeBucket; b < trim/changeBucket; b++ {
				l.add("", qDropChanges, ts, account, int64(b))
			}
			if trim%changeBucket != 0 {
				l.add("", qTrimChanges, ts, account, int64(trim/changeBucket), i64(trim))
			}
		}
		for _, kv := range ws.Puts {
			if !once("k/" + kv.Key) {
				continue
			}
			if dd, part, b := kvPart(kv.Key); dd {
				l.add(fmt.Sprint("d/", b), qPutDedupe, account, b, kv.Key, kv.Value, ttl, ts)
			} else {
				l.add("k/"+part, qPutKV, account, part, kv.Key, kv.Value, ts)
			}
		}
		for _, key := range ws.Deletes {
			if !once("k/" + key) {
				continue
			}
			if dd, part, b := kvPart(key); dd {
				l.add(fmt.Sprint("d/", b), qDelDedupe, ts, account, b, key)
			} else {
				l.add("k/"+part, qDelKV, ts, account, part, key)
			}
		}
	}
	return l.list
}

// apply writes the intent's rows in parallel (bounded). With failpoints,
// FPMidApply stops it after the first half is written.
func (e *Engine) apply(ctx context.Context, ds *dcSession, account string, it *intent, failpoints bool) error {
	return e.run(ctx, ds, e.statements(account, it), failpoints)
}

func (e *Engine) run(ctx context.Context, ds *dcSession, list []stmt, failpoints bool) error {
	sem := make(chan struct{}, e.o.ApplyConcurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	run := func(s stmt) {
		defer wg.Done()
		defer func() { <-sem }()
		var err error
		if len(s.entries) == 1 {
			err = ds.s.Query(s.entries[0].Stmt, s.entries[0].Args...).WithContext(ctx).Idempotent(true).Exec()
		} else {
			b := ds.s.Batch(gocql.UnloggedBatch).WithContext(ctx)
			b.Entries = s.entries
			err = b.Exec()
		}
		if err != nil {
			mu.Lock()
			if first == nil {
				first = err
			}
			mu.Unlock()
		}
	}
	half := len(list) / 2
	for i, s := range list {
		if failpoints && i == half {
			if err := failpoint.Inject(FPMidApply); err != nil {
				wg.Wait()
				return err
			}
		}
		sem <- struct{}{}
		wg.Add(1)
		go run(s)
	}
	wg.Wait()
	return first
}

// --- account deletion ---

// DropAccountData implements storage.Engine: it settles the account, then
// deletes every partition it owns (and its blob references) with a
// timestamp above any the account used.
func (e *Engine) DropAccountData(ctx context.Context, account string) error {
	// In the commit queue, alone: no commit of this process interleaves.
	return e.exclusive(ctx, account, func() error { return e.dropAccountData(ctx, account) })
}

func (e *Engine) dropAccountData(ctx context.Context, account string) error {
	e.mem.Delete(account)
	ds, row, err := e.settle(ctx, account, true)
	if err != nil {
		return err
	}
	ts := max(time.Now().UnixMicro(), row.lastTS+1)
	r := newReader(ctx, ds, e, account, row.st)
	boxes, err := r.Mailboxes()
	if err != nil {
		return err
	}
	var l stmtList
	for _, m := range boxes {
		emails, err := r.Emails(m.ID, 1, ^uint32(0), 0)
		if err != nil {
			return err
		}
		for _, em := range emails {
			l.add("", qDelRef, ts, em.BlobID, account, int64(em.Mailbox), int64(em.UID))
		}
		for b := uint32(0); b <= m.UIDNext/emailBucket; b++ {
			l.add("", qDropEmails, ts, account, int64(m.ID), int64(b))
		}
	}
	for b := row.st.MinChangeSeq / changeBucket; b <= row.st.ModSeq/changeBucket; b++ {
		l.add("", qDropChanges, ts, account, int64(b))
	}
	for _, p := range kvParts() {
		l.add("", qDropKV, ts, account, p)
	}
	for b := 0; b < dedupeParts; b++ {
		l.add("", qDropDedupe, ts, account, b)
	}
	l.add("", qDropMailboxes, ts, account)
	if err := e.run(ctx, ds, l.list, false); err != nil {
		return err
	}
	e.homes.Delete(account)
	e.mem.Delete(account)
	// The state row was written by LWTs (Paxos timestamps): delete it with one.
	e.counters.lwts.Add(1)
	_, err = ds.s.Query(`DELETE FROM account_state WHERE account = ? IF EXISTS`, account).WithContext(ctx).
		Idempotent(false).SerialConsistency(e.ser).MapScanCAS(map[string]any{})
	return err
}
