// Package embedded is Stoa's single-node storage engine on Pebble.
//
// On-disk layout (one Pebble database; keys are byte strings, values JSON
// unless noted; be32/be64 are big-endian integers so keys sort numerically):
//
//	d/<domain>                          Domain
//	a/<accountID>                       Account
//	x/<address>                         accountID (address index: logins and aliases)
//	bh/<blobID>                         blobHeader {size, chunks, time}
//	bc/<blobID>/<be32 chunk>            raw bytes, 64 KiB chunks
//	bm/<blobID>                         message metadata (mailmeta.Meta)
//	r/<blobID>/<accountID>/<be32 mb><be32 uid>   "" (blob reference, for GC)
//	u/<accountID>/s                     AccountState
//	u/<accountID>/m/<be32 mailbox>      Mailbox
//	u/<accountID>/e/<be32 mailbox><be32 uid>     Email
//	u/<accountID>/c/<be64 seq><be16 part>  Change
//	u/<accountID>/k/<key>               small keyed records (threads, dedupe, subscriptions)
//	act/<be64 unix ms>/<writer>/<accountID>  "" (activity feed, ADR 0009)
//
// Every account mutation is one Pebble batch committed with Sync, so it is
// atomic and durable when Update returns. Pebble's commit pipeline groups
// the WAL syncs of concurrent batches: many deliveries share one fsync.
// Blobs are written without sync before the batch that references them;
// the WAL is sequential, so that batch's sync makes them durable too.
package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/failpoint"
)

// Failpoints of this engine.
const (
	FPBeforeCommit = "embedded.before-commit" // batch built, not committed
	FPAfterCommit  = "embedded.after-commit"  // committed and synced, caller not told
)

const chunkSize = 64 << 10

// Options configure the engine.
type Options struct {
	// NoSync turns off fsync (tests of logic only; never in production).
	NoSync bool
	// CacheSize is Pebble's block cache in bytes (default 64 MiB).
	CacheSize int64
}

// Engine implements storage.Engine on Pebble.
type Engine struct {
	db    *pebble.DB
	dir   string
	wo    *pebble.WriteOptions
	locks [256]sync.Mutex
	// blobLocks: see blobLock.
	blobLocks [64]sync.Mutex
	queues    sync.Map // account → *acctQueue
	trim      actTrim  // activity feed trimming (activity.go)
	// closeMu lets the activity feed (written by a background goroutine
	// of the Store) refuse to run on a closed database instead of panicking.
	closeMu sync.RWMutex
	closed  bool
}

// Open opens or creates the database in dir.
func Open(dir string, o Options) (*Engine, error) {
	if o.CacheSize == 0 {
		o.CacheSize = 64 << 20
	}
	cache := pebble.NewCache(o.CacheSize)
	defer cache.Unref()
	po := &pebble.Options{
		Cache:              cache,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             quietLogger{},
		MemTableSize:       64 << 20,
	}
	// Bloom filters make the many negative lookups cheap (thread keys,
	// dedupe keys, blob existence).
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", dir, err)
	}
	wo := pebble.Sync
	if o.NoSync {
		wo = pebble.NoSync
	}
	return &Engine{db: db, dir: dir, wo: wo}, nil
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{})      {}
func (quietLogger) Errorf(f string, a ...interface{}) { fmt.Printf("pebble: "+f+"\n", a...) }
func (quietLogger) Fatalf(f string, a ...interface{}) { panic(fmt.Sprintf("pebble: "+f, a...)) }

// Name implements storage.Engine.
func (e *Engine) Name() string { return "embedded" }

// Close implements storage.Engine.
func (e *Engine) Close() error {
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	return e.db.Close()
}

// DB exposes the Pebble database (for tools and tests).
func (e *Engine) DB() *pebble.DB { return e.db }

func (e *Engine) getJSON(r pebble.Reader, key []byte, v any) error {
	b, c, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return storage.ErrNotFound
	} else if err != nil {
		return err
	}
	defer c.Close()
	return json.Unmarshal(b, v)
}

func (e *Engine) getRaw(r pebble.Reader, key []byte) ([]byte, error) {
	b, c, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, storage.ErrNotFound
	} else if err != nil {
		return nil, err
	}
	defer c.Close()
	return bytes.Clone(b), nil
}

func (e *Engine) putJSON(key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return e.db.Set(key, b, e.wo)
}

func k(parts ...string) []byte {
	var b []byte
	for i, p := range parts {
		if i > 0 {
			b = append(b, '/')
		}
		b = append(b, p...)
	}
	return b
}

// prefixEnd returns the first key after every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func scan(r pebble.Reader, prefix []byte, fn func(key, val []byte) error) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

// --- directory ---

func (e *Engine) PutDomain(ctx context.Context, d storage.Domain) error {
	return e.putJSON(k("d", d.Name), d)
}

func (e *Engine) GetDomain(ctx context.Context, name string) (storage.Domain, error) {
	var d storage.Domain
	return d, e.getJSON(e.db, k("d", name), &d)
}

func (e *Engine) ListDomains(ctx context.Context) ([]storage.Domain, error) {
	var out []storage.Domain
	err := scan(e.db, []byte("d/"), func(_, v []byte) error {
		var d storage.Domain
		if err := json.Unmarshal(v, &d); err != nil {
			return err
		}
		out = append(out, d)
		return nil
	})
	return out, err
}

func (e *Engine) PutAccount(ctx context.Context, a storage.Account) error {
	return e.putJSON(k("a", a.ID), a)
}

func (e *Engine) GetAccount(ctx context.Context, id string) (storage.Account, error) {
	var a storage.Account
	return a, e.getJSON(e.db, k("a", id), &a)
}

func (e *Engine) ListAccounts(ctx context.Context) ([]storage.Account, error) {
	var out []storage.Account
	err := scan(e.db, []byte("a/"), func(_, v []byte) error {
		var a storage.Account
		if err := json.Unmarshal(v, &a); err != nil {
			return err
		}
		out = append(out, a)
		return nil
	})
	return out, err
}

func (e *Engine) DeleteAccount(ctx context.Context, id string) error {
	return e.db.Delete(k("a", id), e.wo)
}

var addrLock sync.Mutex

func (e *Engine) ClaimAddress(ctx context.Context, addr, accountID string) error {
	addrLock.Lock()
	defer addrLock.Unlock()
	cur, err := e.getRaw(e.db, k("x", addr))
	if err == nil {
		if string(cur) == accountID {
			return nil
		}
		return storage.ErrExists
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return e.db.Set(k("x", addr), []byte(accountID), e.wo)
}

func (e *Engine) ReleaseAddress(ctx context.Context, addr string) error {
	return e.db.Delete(k("x", addr), e.wo)
}

func (e *Engine) LookupAddress(ctx context.Context, addr string) (string, error) {
	b, err := e.getRaw(e.db, k("x", addr))
	return string(b), err
}

// --- blobs ---

type blobHeader struct {
	Size   int64     `json:"size"`
	Chunks uint32    `json:"chunks"`
	Time   time.Time `json:"time"`
}

func chunkKey(id string, i uint32) []byte {
	b := k("bc", id, "")
	return binary.BigEndian.AppendUint32(b, i)
}

// blobLock serialises PutBlob and DeleteBlob of one blob id.
func (e *Engine) blobLock(id string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(id))
	return &e.blobLocks[h.Sum32()%uint32(len(e.blobLocks))]
}

func (e *Engine) PutBlob(ctx context.Context, id string, data, meta []byte) error {
	l := e.blobLock(id)
	l.Lock()
	defer l.Unlock()
	var h blobHeader
	err := e.getJSON(e.db, k("bh", id), &h)
	b := e.db.NewBatch()
	defer b.Close()
	if err == nil && h.Size == int64(len(data)) {
		// Stored already: refresh its time so GC keeps it (DESIGN §2.9).
		h.Time = time.Now().UTC()
	} else {
		h = blobHeader{Size: int64(len(data)), Time: time.Now().UTC()}
		for off := 0; off < len(data) || off == 0; off += chunkSize {
			end := min(off+chunkSize, len(data))
			if err := b.Set(chunkKey(id, h.Chunks), data[off:end], nil); err != nil {
				return err
			}
			h.Chunks++
			if end == len(data) {
				break
			}
		}
		if err := b.Set(k("bm", id), meta, nil); err != nil {
			return err
		}
	}
	hb, _ := json.Marshal(h)
	if err := b.Set(k("bh", id), hb, nil); err != nil {
		return err
	}
	return b.Commit(pebble.NoSync)
}

func (e *Engine) GetBlob(ctx context.Context, id string) ([]byte, error) {
	var h blobHeader
	if err := e.getJSON(e.db, k("bh", id), &h); err != nil {
		return nil, err
	}
	out := make([]byte, 0, h.Size)
	for i := uint32(0); i < h.Chunks; i++ {
		c, err := e.getRaw(e.db, chunkKey(id, i))
		if err != nil {
			return nil, fmt.Errorf("blob %s chunk %d: %w", id, i, err)
		}
		out = append(out, c...)
	}
	return out, nil
}

func (e *Engine) GetBlobMeta(ctx context.Context, id string) ([]byte, error) {
	return e.getRaw(e.db, k("bm", id))
}

func refPrefix(id string) []byte { return k("r", id, "") }

func refKey(id, account string, mb, uid uint32) []byte {
	b := k("r", id, account, "")
	b = binary.BigEndian.AppendUint32(b, mb)
	return binary.BigEndian.AppendUint32(b, uid)
}

func (e *Engine) BlobReferenced(ctx context.Context, id string) (bool, error) {
	found := false
	err := scan(e.db, refPrefix(id), func(_, _ []byte) error {
		found = true
		return errStop
	})
	if err == errStop {
		err = nil
	}
	return found, err
}

var errStop = errors.New("stop")

func (e *Engine) ListBlobs(ctx context.Context, olderThan time.Time, fn func(id string) error) error {
	var ids []string
	err := scan(e.db, []byte("bh/"), func(key, v []byte) error {
		var h blobHeader
		if err := json.Unmarshal(v, &h); err != nil {
			return err
		}
		if h.Time.Before(olderThan) {
			ids = append(ids, string(key[3:]))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}

// DeleteBlob checks the blob's time and deletes it under the blob's lock,
// so a PutBlob either refreshed the time first (kept) or comes after the
// delete and writes the blob again.
func (e *Engine) DeleteBlob(ctx context.Context, id string, olderThan time.Time) (bool, error) {
	if err := failpoint.Inject(storage.FPGCBeforeDelete); err != nil {
		return false, err
	}
	l := e.blobLock(id)
	l.Lock()
	defer l.Unlock()
	var h blobHeader
	if err := e.getJSON(e.db, k("bh", id), &h); errors.Is(err, storage.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if !h.Time.Before(olderThan) {
		return false, nil
	}
	b := e.db.NewBatch()
	defer b.Close()
	p := k("bc", id, "")
	if err := b.DeleteRange(p, prefixEnd(p), nil); err != nil {
		return false, err
	}
	_ = b.Delete(k("bm", id), nil)
	_ = b.Delete(k("bh", id), nil)
	return true, b.Commit(e.wo)
}

// --- accounts ---

func (e *Engine) lock(account string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(account))
	return &e.locks[h.Sum32()%uint32(len(e.locks))]
}

func (e *Engine) View(ctx context.Context, account string, fn func(r storage.Reader) error) error {
	snap := e.db.NewSnapshot()
	defer snap.Close()
	return fn(&reader{e: e, r: snap, acct: account})
}

// Update implements storage.Engine with group commit per account: while
// one goroutine (the leader) commits, others queue; the leader then runs
// every queued mutation in order over one indexed batch, each seeing the
// writes of those before it, and commits them with one fsync. Nothing is
// visible before it is durable, and one account's UIDs stay in commit order.
func (e *Engine) Update(ctx context.Context, account string, fn func(r storage.Reader) (*storage.WriteSet, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q := e.queue(account)
	r := &request{fn: fn, done: make(chan error, 1)}
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
		group := q.pending
		q.pending = nil
		if len(group) == 0 {
			q.leader = false
			q.mu.Unlock()
			break
		}
		q.mu.Unlock()
		e.commitGroup(account, group)
	}
	return <-r.done
}

type request struct {
	fn   func(r storage.Reader) (*storage.WriteSet, error)
	done chan error
	err  error
}

type acctQueue struct {
	mu      sync.Mutex
	leader  bool
	pending []*request
	// cache holds the committed state row and mailboxes of the account,
	// read and written only by the leader under the account's stripe lock.
	cache *acctCache
}

// acctCache is the account's state row and mailboxes as last committed.
type acctCache struct {
	state storage.AccountState
	boxes map[uint32]storage.Mailbox
}

func (c *acctCache) clone() *acctCache {
	n := &acctCache{state: c.state, boxes: make(map[uint32]storage.Mailbox, len(c.boxes))}
	for k, v := range c.boxes {
		n.boxes[k] = v
	}
	return n
}

func (c *acctCache) apply(ws *storage.WriteSet) {
	c.state = ws.State
	for _, m := range ws.Mailboxes {
		c.boxes[m.ID] = m
	}
	for _, id := range ws.DeletedMailboxes {
		delete(c.boxes, id)
	}
}

func (e *Engine) queue(account string) *acctQueue {
	if q, ok := e.queues.Load(account); ok {
		return q.(*acctQueue)
	}
	q, _ := e.queues.LoadOrStore(account, &acctQueue{})
	return q.(*acctQueue)
}

// maxGroup bounds one group commit.
const maxGroup = 256

func (e *Engine) commitGroup(account string, group []*request) {
	for len(group) > maxGroup {
		e.commitGroup(account, group[:maxGroup])
		group = group[maxGroup:]
	}
	mu := e.lock(account)
	mu.Lock()
	defer mu.Unlock()
	q := e.queue(account)
	b := e.db.NewIndexedBatch()
	defer b.Close()
	rd := &reader{e: e, r: b, acct: account}
	// The group's view of the state row and mailboxes, advanced by each
	// mutation's WriteSet so the next one sees it.
	if q.cache == nil {
		c, err := rd.load()
		if err != nil {
			for _, r := range group {
				r.done <- err
			}
			return
		}
		q.cache = c
	}
	cur := q.cache.clone()
	rd.cache = cur
	var ok []*request
	var fatal error
	for _, r := range group {
		ws, err := r.fn(rd)
		if err != nil {
			r.done <- err
			continue
		}
		if ws != nil {
			if err := e.apply(b, account, ws); err != nil {
				fatal = err // the batch may hold part of ws: give up the group
				r.done <- err
				continue
			}
			cur.apply(ws)
		}
		ok = append(ok, r)
	}
	if fatal == nil {
		fatal = failpoint.Inject(FPBeforeCommit)
	}
	if fatal == nil {
		fatal = b.Commit(e.wo)
	}
	if fatal == nil {
		q.cache = cur
		fatal = failpoint.Inject(FPAfterCommit)
	} else {
		q.cache = nil // unknown: reload from disk next time
	}
	for _, r := range ok {
		r.done <- fatal
	}
}

func acctKey(account string, kind string) []byte { return k("u", account, kind) }

func mbKey(account string, id uint32) []byte {
	return binary.BigEndian.AppendUint32(k("u", account, "m", ""), id)
}

func emailKey(account string, mb, uid uint32) []byte {
	b := binary.BigEndian.AppendUint32(k("u", account, "e", ""), mb)
	return binary.BigEndian.AppendUint32(b, uid)
}

func changeKey(account string, seq uint64, part uint16) []byte {
	b := binary.BigEndian.AppendUint64(k("u", account, "c", ""), seq)
	return binary.BigEndian.AppendUint16(b, part)
}

func kvKey(account, key string) []byte { return k("u", account, "k", key) }

func (e *Engine) apply(b *pebble.Batch, account string, ws *storage.WriteSet) error {
	set := func(key []byte, v any) error {
		j, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return b.Set(key, j, nil)
	}
	if err := set(acctKey(account, "s"), ws.State); err != nil {
		return err
	}
	for _, m := range ws.Mailboxes {
		if err := set(mbKey(account, m.ID), m); err != nil {
			return err
		}
	}
	for _, id := range ws.DeletedMailboxes {
		if err := b.Delete(mbKey(account, id), nil); err != nil {
			return err
		}
	}
	for _, em := range ws.Emails {
		if err := set(emailKey(account, em.Mailbox, em.UID), em); err != nil {
			return err
		}
		if err := b.Set(refKey(em.BlobID, account, em.Mailbox, em.UID), nil, nil); err != nil {
			return err
		}
	}
	for _, d := range ws.DeletedEmails {
		if err := b.Delete(emailKey(account, d.Mailbox, d.UID), nil); err != nil {
			return err
		}
		if err := b.Delete(refKey(d.BlobID, account, d.Mailbox, d.UID), nil); err != nil {
			return err
		}
	}
	for _, c := range ws.Changes {
		if err := set(changeKey(account, c.Seq, c.Part), c); err != nil {
			return err
		}
	}
	if ws.TrimChangesBelow > 0 {
		if err := b.DeleteRange(changeKey(account, 0, 0), changeKey(account, ws.TrimChangesBelow, 0), nil); err != nil {
			return err
		}
	}
	for _, kv := range ws.Puts {
		if err := b.Set(kvKey(account, kv.Key), []byte(kv.Value), nil); err != nil {
			return err
		}
	}
	for _, key := range ws.Deletes {
		if err := b.Delete(kvKey(account, key), nil); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) DropAccountData(ctx context.Context, account string) error {
	mu := e.lock(account)
	mu.Lock()
	defer mu.Unlock()
	e.queue(account).cache = nil
	b := e.db.NewBatch()
	defer b.Close()
	err := scan(e.db, k("u", account, "e", ""), func(_, v []byte) error {
		var em storage.Email
		if err := json.Unmarshal(v, &em); err != nil {
			return err
		}
		return b.Delete(refKey(em.BlobID, account, em.Mailbox, em.UID), nil)
	})
	if err != nil {
		return err
	}
	p := k("u", account, "")
	if err := b.DeleteRange(p, prefixEnd(p), nil); err != nil {
		return err
	}
	return b.Commit(e.wo)
}

// reader reads one account from a Pebble reader (the DB under the account
// lock, or a snapshot).
type reader struct {
	e     *Engine
	r     pebble.Reader
	acct  string
	cache *acctCache // state and mailboxes (writers only)
}

// load reads the state row and mailboxes from disk.
func (r *reader) load() (*acctCache, error) {
	st, err := r.State()
	if err != nil {
		return nil, err
	}
	boxes, err := r.Mailboxes()
	if err != nil {
		return nil, err
	}
	c := &acctCache{state: st, boxes: map[uint32]storage.Mailbox{}}
	for _, m := range boxes {
		c.boxes[m.ID] = m
	}
	return c, nil
}

func (r *reader) State() (storage.AccountState, error) {
	if r.cache != nil {
		return r.cache.state, nil
	}
	var st storage.AccountState
	err := r.e.getJSON(r.r, acctKey(r.acct, "s"), &st)
	if errors.Is(err, storage.ErrNotFound) {
		err = nil
	}
	return st, err
}

func (r *reader) Mailboxes() ([]storage.Mailbox, error) {
	var out []storage.Mailbox
	if r.cache != nil {
		for _, m := range r.cache.boxes {
			out = append(out, m)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		return out, nil
	}
	err := scan(r.r, k("u", r.acct, "m", ""), func(_, v []byte) error {
		var m storage.Mailbox
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

func (r *reader) Mailbox(id uint32) (storage.Mailbox, error) {
	if r.cache != nil {
		if m, ok := r.cache.boxes[id]; ok {
			return m, nil
		}
		return storage.Mailbox{}, storage.ErrNotFound
	}
	var m storage.Mailbox
	return m, r.e.getJSON(r.r, mbKey(r.acct, id), &m)
}

func (r *reader) Email(mb, uid uint32) (storage.Email, error) {
	var em storage.Email
	return em, r.e.getJSON(r.r, emailKey(r.acct, mb, uid), &em)
}

func (r *reader) Emails(mb, from, to uint32, limit int) ([]storage.Email, error) {
	lo := emailKey(r.acct, mb, from)
	var hi []byte
	if to == ^uint32(0) {
		hi = prefixEnd(binary.BigEndian.AppendUint32(k("u", r.acct, "e", ""), mb))
	} else {
		hi = emailKey(r.acct, mb, to+1)
	}
	it, err := r.r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []storage.Email
	for it.First(); it.Valid(); it.Next() {
		var em storage.Email
		if err := json.Unmarshal(it.Value(), &em); err != nil {
			return nil, err
		}
		out = append(out, em)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

func (r *reader) Changes(since uint64, limit int) ([]storage.Change, error) {
	lo := changeKey(r.acct, since+1, 0)
	hi := prefixEnd(k("u", r.acct, "c", ""))
	it, err := r.r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []storage.Change
	for it.First(); it.Valid(); it.Next() {
		var c storage.Change
		if err := json.Unmarshal(it.Value(), &c); err != nil {
			return nil, err
		}
		out = append(out, c)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

func (r *reader) Get(key string) (string, bool, error) {
	b, err := r.e.getRaw(r.r, kvKey(r.acct, key))
	if errors.Is(err, storage.ErrNotFound) {
		return "", false, nil
	}
	return string(b), err == nil, err
}

func (r *reader) Scan(prefix string) ([]storage.KV, error) {
	base := len(kvKey(r.acct, ""))
	var out []storage.KV
	err := scan(r.r, kvKey(r.acct, prefix), func(key, v []byte) error {
		out = append(out, storage.KV{Key: string(key[base:]), Value: string(v)})
		return nil
	})
	return out, err
}

var _ storage.Engine = (*Engine)(nil)
