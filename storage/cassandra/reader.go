package cassandra

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/gocql/gocql"

	"github.com/stoa-mail/stoa/storage"
)

// reader reads one account's rows at one state (storage.Reader). It
// caches what it read: it lives for one View attempt or one group commit
// attempt, during which no commit of this process changes the account
// (and one of another process makes the LWT, or the View check, fail).
type reader struct {
	ctx  context.Context
	ds   *dcSession
	e    *Engine
	acct string
	st   storage.AccountState

	mu     sync.Mutex // the caches: a group commit warms them from several goroutines
	boxes  []storage.Mailbox
	loaded bool
	box    map[uint32]*storage.Mailbox // single reads; nil value = not found
	kv     map[string]kvVal
	email  map[[2]uint32]*storage.Email // nil value = not found
}

type kvVal struct {
	v  string
	ok bool
}

func newReader(ctx context.Context, ds *dcSession, e *Engine, acct string, st storage.AccountState) *reader {
	return &reader{ctx: ctx, ds: ds, e: e, acct: acct, st: st, box: map[uint32]*storage.Mailbox{},
		kv: map[string]kvVal{}, email: map[[2]uint32]*storage.Email{}}
}

func (r *reader) State() (storage.AccountState, error) { return r.st, nil }

const mailboxCols = `id, name, role, uid_validity, uid_next, highest_modseq, created_modseq, messages, unseen, size`

func scanMailbox(sc interface{ Scan(...any) error }, m *storage.Mailbox) error {
	var id, uidv, uidn, hms, cms int64
	if err := sc.Scan(&id, &m.Name, &m.Role, &uidv, &uidn, &hms, &cms, &m.Messages, &m.Unseen, &m.Size); err != nil {
		return err
	}
	m.ID, m.UIDValidity, m.UIDNext = uint32(id), uint32(uidv), uint32(uidn)
	m.HighestModSeq, m.CreatedModSeq = uint64(hms), uint64(cms)
	return nil
}

func (r *reader) Mailboxes() ([]storage.Mailbox, error) {
	r.mu.Lock()
	if r.loaded {
		defer r.mu.Unlock()
		return append([]storage.Mailbox(nil), r.boxes...), nil
	}
	r.mu.Unlock()
	it := r.ds.q(r.ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE account = ?`, r.acct).PageSize(1000).Iter()
	sc := it.Scanner()
	var out []storage.Mailbox
	for sc.Next() {
		var m storage.Mailbox
		if err := scanMailbox(sc, &m); err != nil {
			it.Close()
			return nil, err
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.boxes, r.loaded = out, true
	r.mu.Unlock()
	return append([]storage.Mailbox(nil), out...), nil
}

func (r *reader) Mailbox(id uint32) (storage.Mailbox, error) {
	r.mu.Lock()
	if r.loaded {
		defer r.mu.Unlock()
		for _, m := range r.boxes {
			if m.ID == id {
				return m, nil
			}
		}
		return storage.Mailbox{}, storage.ErrNotFound
	}
	if m, ok := r.box[id]; ok {
		r.mu.Unlock()
		if m == nil {
			return storage.Mailbox{}, storage.ErrNotFound
		}
		return *m, nil
	}
	r.mu.Unlock()
	var m storage.Mailbox
	err := scanMailbox(r.ds.q(r.ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE account = ? AND id = ?`, r.acct, int64(id)), &m)
	if errors.Is(err, gocql.ErrNotFound) {
		r.mu.Lock()
		r.box[id] = nil
		r.mu.Unlock()
		return m, storage.ErrNotFound
	} else if err != nil {
		return m, err
	}
	r.mu.Lock()
	r.box[id] = &m
	r.mu.Unlock()
	return m, nil
}

const emailCols = `uid, email_id, blob, size, internal_date, flags, modseq, thread_id`

func scanEmail(sc interface{ Scan(...any) error }, mb uint32, em *storage.Email) error {
	var uid, eid, ms, th int64
	if err := sc.Scan(&uid, &eid, &em.BlobID, &em.Size, &em.InternalDate, &em.Flags, &ms, &th); err != nil {
		return err
	}
	em.Mailbox, em.UID, em.EmailID, em.ModSeq, em.ThreadID = mb, uint32(uid), uint64(eid), uint64(ms), uint64(th)
	em.InternalDate = em.InternalDate.UTC()
	if len(em.Flags) == 0 {
		em.Flags = nil
	}
	return nil
}

func (r *reader) Email(mb, uid uint32) (storage.Email, error) {
	k := [2]uint32{mb, uid}
	r.mu.Lock()
	if c, ok := r.email[k]; ok {
		r.mu.Unlock()
		if c == nil {
			return storage.Email{}, storage.ErrNotFound
		}
		return *c, nil
	}
	r.mu.Unlock()
	var em storage.Email
	err := scanEmail(r.ds.q(r.ctx, `SELECT `+emailCols+` FROM emails WHERE account = ? AND mailbox = ? AND bucket = ? AND uid = ?`,
		r.acct, int64(mb), int64(uid/emailBucket), int64(uid)), mb, &em)
	if err != nil && !errors.Is(err, gocql.ErrNotFound) {
		return em, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.email[k] = nil
		return em, storage.ErrNotFound
	}
	c := em
	r.email[k] = &c
	return em, nil
}

// Emails reads the buckets that can hold [from, to], bounded by the
// mailbox's UIDNEXT, in UID order.
func (r *reader) Emails(mb, from, to uint32, limit int) ([]storage.Email, error) {
	m, err := r.Mailbox(mb)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if m.UIDNext <= 1 {
		return nil, nil
	}
	to = min(to, m.UIDNext-1)
	from = max(from, 1)
	var out []storage.Email
	for b := from / emailBucket; b <= to/emailBucket; b++ {
		lo, hi := max(from, b*emailBucket), min(to, b*emailBucket+emailBucket-1)
		stmt := `SELECT ` + emailCols + ` FROM emails WHERE account = ? AND mailbox = ? AND bucket = ? AND uid >= ? AND uid <= ?`
		args := []any{r.acct, int64(mb), int64(b), int64(lo), int64(hi)}
		if limit > 0 {
			stmt += ` LIMIT ?`
			args = append(args, limit-len(out))
		}
		it := r.ds.q(r.ctx, stmt, args...).PageSize(5000).Iter()
		sc := it.Scanner()
		for sc.Next() {
			var em storage.Email
			if err := scanEmail(sc, mb, &em); err != nil {
				it.Close()
				return nil, err
			}
			out = append(out, em)
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

var kindByName = func() map[string]storage.ChangeKind {
	m := map[string]storage.ChangeKind{}
	for k := storage.ChangeMailboxCreate; k <= storage.ChangeEmailExpunge; k++ {
		m[k.String()] = k
	}
	return m
}()

// Changes reads the change buckets from since+1 (or the trim point) to
// the state's MODSEQ.
func (r *reader) Changes(since uint64, limit int) ([]storage.Change, error) {
	start := max(since+1, r.st.MinChangeSeq)
	if start > r.st.ModSeq {
		return nil, nil
	}
	var out []storage.Change
	for b := start / changeBucket; b <= r.st.ModSeq/changeBucket; b++ {
		stmt := `SELECT seq, part, kind, mailbox, uids, email_ids, threads, blobs, time FROM changes WHERE account = ? AND bucket = ? AND seq > ? AND seq <= ?`
		args := []any{r.acct, int64(b), i64(since), i64(r.st.ModSeq)}
		if limit > 0 {
			stmt += ` LIMIT ?`
			args = append(args, limit-len(out))
		}
		it := r.ds.q(r.ctx, stmt, args...).PageSize(2000).Iter()
		sc := it.Scanner()
		for sc.Next() {
			var seq, mb int64
			var part int
			var kind string
			var uids, eids, ths []int64
			var c storage.Change
			if err := sc.Scan(&seq, &part, &kind, &mb, &uids, &eids, &ths, &c.Blobs, &c.Time); err != nil {
				it.Close()
				return nil, err
			}
			k, ok := kindByName[kind]
			if !ok {
				it.Close()
				return nil, fmt.Errorf("cassandra: change %d/%d: unknown kind %q", seq, part, kind)
			}
			c.Seq, c.Part, c.Kind, c.Mailbox, c.Time = uint64(seq), uint16(part), k, uint32(mb), c.Time.UTC()
			for _, u := range uids {
				c.UIDs = append(c.UIDs, uint32(u))
			}
			for _, x := range eids {
				c.EmailIDs = append(c.EmailIDs, uint64(x))
			}
			for _, x := range ths {
				c.Threads = append(c.Threads, uint64(x))
			}
			if len(c.Blobs) == 0 {
				c.Blobs = nil
			}
			out = append(out, c)
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

func (r *reader) Get(key string) (string, bool, error) {
	r.mu.Lock()
	v, ok := r.kv[key]
	r.mu.Unlock()
	if ok {
		return v.v, v.ok, nil
	}
	return r.get(key)
}

func (r *reader) get(key string) (string, bool, error) {
	dd, part, b := kvPart(key)
	var v string
	var err error
	if dd {
		err = r.ds.q(r.ctx, `SELECT value FROM dedupe WHERE account = ? AND bucket = ? AND key = ?`, r.acct, b, key).Scan(&v)
	} else {
		err = r.ds.q(r.ctx, `SELECT value FROM account_kv WHERE account = ? AND part = ? AND key = ?`, r.acct, part, key).Scan(&v)
	}
	if err != nil && !errors.Is(err, gocql.ErrNotFound) {
		return "", false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.kv[key] = kvVal{}
		return "", false, nil
	}
	r.kv[key] = kvVal{v, true}
	return v, true, nil
}

// Scan reads the plain partition, and the hashed ones (thread index,
// dedupe) when the prefix can reach them.
func (r *reader) Scan(prefix string) ([]storage.KV, error) {
	var out []storage.KV
	read := func(stmt string, args ...any) error {
		it := r.ds.q(r.ctx, stmt, args...).PageSize(1000).Iter()
		var kv storage.KV
		for it.Scan(&kv.Key, &kv.Value) {
			if strings.HasPrefix(kv.Key, prefix) {
				out = append(out, kv)
			}
		}
		return it.Close()
	}
	lo, hi := prefix, prefixEnd(prefix)
	rng := ` AND key >= ?`
	args := func(a ...any) []any {
		a = append(a, lo)
		if hi != "" {
			a = append(a, hi)
		}
		return a
	}
	if hi != "" {
		rng += ` AND key < ?`
	}
	reach := func(space string) bool { return strings.HasPrefix(space, prefix) || strings.HasPrefix(prefix, space) }
	if err := read(`SELECT key, value FROM account_kv WHERE account = ? AND part = ?`+rng, args(r.acct, "")...); err != nil {
		return nil, err
	}
	for _, h := range hashedKV {
		if !reach(h.prefix) {
			continue
		}
		for p := 0; p < h.parts; p++ {
			if err := read(`SELECT key, value FROM account_kv WHERE account = ? AND part = ?`+rng,
				args(r.acct, fmt.Sprintf("%s%d", h.prefix, p))...); err != nil {
				return nil, err
			}
		}
	}
	if reach(dedupePrefix) {
		for b := 0; b < dedupeParts; b++ {
			if err := read(`SELECT key, value FROM dedupe WHERE account = ? AND bucket = ?`+rng, args(r.acct, b)...); err != nil {
				return nil, err
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// prefixEnd is the first string after every string with prefix p ("" if none).
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

// overlay is the Reader of a group commit: the base rows plus the write
// sets of the group's earlier members, so each fn sees those before it.
type overlay struct {
	base *reader
	sets []*storage.WriteSet
}

func (o *overlay) push(ws *storage.WriteSet) { o.sets = append(o.sets, ws) }

func (o *overlay) stateVersion() uint64 {
	st, _ := o.State()
	return st.Version
}

func (o *overlay) State() (storage.AccountState, error) {
	if n := len(o.sets); n > 0 {
		return o.sets[n-1].State, nil
	}
	return o.base.State()
}

func (o *overlay) Mailboxes() ([]storage.Mailbox, error) {
	out, err := o.base.Mailboxes()
	if err != nil || len(o.sets) == 0 {
		return out, err
	}
	m := map[uint32]storage.Mailbox{}
	for _, b := range out {
		m[b.ID] = b
	}
	for _, ws := range o.sets {
		for _, b := range ws.Mailboxes {
			m[b.ID] = b
		}
		for _, id := range ws.DeletedMailboxes {
			delete(m, id)
		}
	}
	out = out[:0]
	for _, b := range m {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (o *overlay) Mailbox(id uint32) (storage.Mailbox, error) {
	for i := len(o.sets) - 1; i >= 0; i-- {
		ws := o.sets[i]
		for _, d := range ws.DeletedMailboxes {
			if d == id {
				return storage.Mailbox{}, storage.ErrNotFound
			}
		}
		for _, b := range ws.Mailboxes {
			if b.ID == id {
				return b, nil
			}
		}
	}
	return o.base.Mailbox(id)
}

func (o *overlay) Email(mb, uid uint32) (storage.Email, error) {
	for i := len(o.sets) - 1; i >= 0; i-- {
		ws := o.sets[i]
		for _, d := range ws.DeletedEmails {
			if d.Mailbox == mb && d.UID == uid {
				return storage.Email{}, storage.ErrNotFound
			}
		}
		for _, em := range ws.Emails {
			if em.Mailbox == mb && em.UID == uid {
				return em, nil
			}
		}
	}
	return o.base.Email(mb, uid)
}

func (o *overlay) touches(mb uint32) bool {
	for _, ws := range o.sets {
		for _, em := range ws.Emails {
			if em.Mailbox == mb {
				return true
			}
		}
		for _, d := range ws.DeletedEmails {
			if d.Mailbox == mb {
				return true
			}
		}
	}
	return false
}

func (o *overlay) Emails(mb, from, to uint32, limit int) ([]storage.Email, error) {
	if !o.touches(mb) {
		return o.base.Emails(mb, from, to, limit)
	}
	base, err := o.base.Emails(mb, from, to, 0)
	if err != nil {
		return nil, err
	}
	m := map[uint32]storage.Email{}
	for _, em := range base {
		m[em.UID] = em
	}
	for _, ws := range o.sets {
		for _, em := range ws.Emails {
			if em.Mailbox == mb && em.UID >= from && em.UID <= to {
				m[em.UID] = em
			}
		}
		for _, d := range ws.DeletedEmails {
			if d.Mailbox == mb {
				delete(m, d.UID)
			}
		}
	}
	out := make([]storage.Email, 0, len(m))
	for _, em := range m {
		out = append(out, em)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (o *overlay) Changes(since uint64, limit int) ([]storage.Change, error) {
	if len(o.sets) == 0 {
		return o.base.Changes(since, limit)
	}
	out, err := o.base.Changes(since, 0)
	if err != nil {
		return nil, err
	}
	for _, ws := range o.sets {
		if ws.TrimChangesBelow > 0 {
			kept := out[:0]
			for _, c := range out {
				if c.Seq >= ws.TrimChangesBelow {
					kept = append(kept, c)
				}
			}
			out = kept
		}
		for _, c := range ws.Changes {
			if c.Seq > since {
				out = append(out, c)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].Seq < out[j].Seq || out[i].Seq == out[j].Seq && out[i].Part < out[j].Part
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (o *overlay) Get(key string) (string, bool, error) {
	for i := len(o.sets) - 1; i >= 0; i-- {
		ws := o.sets[i]
		for _, d := range ws.Deletes {
			if d == key {
				return "", false, nil
			}
		}
		for _, kv := range ws.Puts {
			if kv.Key == key {
				return kv.Value, true, nil
			}
		}
	}
	return o.base.Get(key)
}

func (o *overlay) Scan(prefix string) ([]storage.KV, error) {
	base, err := o.base.Scan(prefix)
	if err != nil || len(o.sets) == 0 {
		return base, err
	}
	m := map[string]string{}
	for _, kv := range base {
		m[kv.Key] = kv.Value
	}
	for _, ws := range o.sets {
		for _, kv := range ws.Puts {
			if strings.HasPrefix(kv.Key, prefix) {
				m[kv.Key] = kv.Value
			}
		}
		for _, d := range ws.Deletes {
			delete(m, d)
		}
	}
	out := make([]storage.KV, 0, len(m))
	for k, v := range m {
		out = append(out, storage.KV{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

var (
	_ storage.Reader = (*reader)(nil)
	_ storage.Reader = (*overlay)(nil)
)
