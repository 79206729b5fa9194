package storage

import (
	"sort"
	"strings"
)

// txn overlays the writes of one mutation on an engine Reader, so the rules
// read their own writes, and collects the WriteSet.
type txn struct {
	r         Reader
	state     AccountState
	prev      uint64
	mboxes    map[uint32]*Mailbox
	mboxDel   map[uint32]bool
	emails    map[EmailKey]*Email // key with only Mailbox+UID set
	emailDel  map[EmailKey]EmailKey
	changes   []Change
	puts      map[string]string
	dels      map[string]bool
	trim      uint64
	ms        uint64 // the MODSEQ of this mutation, once allocated
	orig      AccountState
	baseBoxes []Mailbox  // the engine's mailboxes, read once per mutation
	order     []EmailKey // put order, for determinism
}

func newTxn(r Reader) (*txn, error) {
	st, err := r.State()
	if err != nil {
		return nil, err
	}
	return &txn{r: r, state: st, orig: st, prev: st.Version,
		mboxes: map[uint32]*Mailbox{}, mboxDel: map[uint32]bool{},
		emails: map[EmailKey]*Email{}, emailDel: map[EmailKey]EmailKey{},
		puts: map[string]string{}, dels: map[string]bool{}}, nil
}

func ekey(mb, uid uint32) EmailKey { return EmailKey{Mailbox: mb, UID: uid} }

func (t *txn) mailboxes() ([]Mailbox, error) {
	if t.baseBoxes == nil {
		b, err := t.r.Mailboxes()
		if err != nil {
			return nil, err
		}
		t.baseBoxes = append([]Mailbox{}, b...)
	}
	base := t.baseBoxes
	seen := map[uint32]bool{}
	var out []Mailbox
	for _, m := range base {
		seen[m.ID] = true
		if t.mboxDel[m.ID] {
			continue
		}
		if o, ok := t.mboxes[m.ID]; ok {
			out = append(out, *o)
		} else {
			out = append(out, m)
		}
	}
	for id, m := range t.mboxes {
		if !seen[id] && !t.mboxDel[id] {
			out = append(out, *m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (t *txn) mailbox(id uint32) (Mailbox, error) {
	if t.mboxDel[id] {
		return Mailbox{}, ErrNoSuchMailbox
	}
	if m, ok := t.mboxes[id]; ok {
		return *m, nil
	}
	if t.baseBoxes != nil {
		for _, m := range t.baseBoxes {
			if m.ID == id {
				return m, nil
			}
		}
		return Mailbox{}, ErrNoSuchMailbox
	}
	m, err := t.r.Mailbox(id)
	if err == ErrNotFound {
		return m, ErrNoSuchMailbox
	}
	return m, err
}

func (t *txn) putMailbox(m Mailbox) {
	c := m
	t.mboxes[m.ID] = &c
	delete(t.mboxDel, m.ID)
}

func (t *txn) deleteMailbox(id uint32) {
	delete(t.mboxes, id)
	t.mboxDel[id] = true
}

func (t *txn) email(mb, uid uint32) (Email, error) {
	k := ekey(mb, uid)
	if _, ok := t.emailDel[k]; ok {
		return Email{}, ErrNotFound
	}
	if e, ok := t.emails[k]; ok {
		return *e, nil
	}
	return t.r.Email(mb, uid)
}

// emailsRange merges the overlay into the engine's range read.
func (t *txn) emailsRange(mb, from, to uint32) ([]Email, error) {
	base, err := t.r.Emails(mb, from, to, 0)
	if err != nil {
		return nil, err
	}
	var out []Email
	seen := map[uint32]bool{}
	for _, e := range base {
		k := ekey(mb, e.UID)
		seen[e.UID] = true
		if _, ok := t.emailDel[k]; ok {
			continue
		}
		if o, ok := t.emails[k]; ok {
			out = append(out, *o)
		} else {
			out = append(out, e)
		}
	}
	for k, e := range t.emails {
		if k.Mailbox == mb && !seen[k.UID] && k.UID >= from && k.UID <= to {
			out = append(out, *e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out, nil
}

func (t *txn) putEmail(e Email) {
	k := ekey(e.Mailbox, e.UID)
	c := e
	if _, ok := t.emails[k]; !ok {
		t.order = append(t.order, k)
	}
	t.emails[k] = &c
	delete(t.emailDel, k)
}

func (t *txn) deleteEmail(e Email) {
	k := ekey(e.Mailbox, e.UID)
	delete(t.emails, k)
	t.emailDel[k] = EmailKey{Mailbox: e.Mailbox, UID: e.UID, BlobID: e.BlobID, EmailID: e.EmailID}
}

func (t *txn) get(key string) (string, bool, error) {
	if t.dels[key] {
		return "", false, nil
	}
	if v, ok := t.puts[key]; ok {
		return v, true, nil
	}
	return t.r.Get(key)
}

func (t *txn) put(key, value string) { t.puts[key] = value; delete(t.dels, key) }
func (t *txn) del(key string)        { delete(t.puts, key); t.dels[key] = true }

// nextModSeq allocates the one MODSEQ of this mutation (RFC 7162 §3.1: a
// single command may give the same new mod-sequence to every message it
// changes).
func (t *txn) nextModSeq() uint64 {
	if t.ms == 0 {
		t.state.ModSeq++
		t.ms = t.state.ModSeq
	}
	return t.ms
}

// addChange records c under this mutation's MODSEQ, merging it into the
// previous record when kind and mailbox are the same.
func (t *txn) addChange(c Change) {
	c.Seq = t.nextModSeq()
	if n := len(t.changes); n > 0 {
		p := &t.changes[n-1]
		if p.Kind == c.Kind && p.Mailbox == c.Mailbox && (c.Kind == ChangeEmailAdd || c.Kind == ChangeEmailFlags || c.Kind == ChangeEmailExpunge) {
			p.UIDs = append(p.UIDs, c.UIDs...)
			p.EmailIDs = append(p.EmailIDs, c.EmailIDs...)
			p.Threads = append(p.Threads, c.Threads...)
			p.Blobs = append(p.Blobs, c.Blobs...)
			return
		}
	}
	c.Part = uint16(len(t.changes))
	t.changes = append(t.changes, c)
}

// writeSet builds the WriteSet, or nil if nothing changed.
func (t *txn) writeSet() *WriteSet {
	ws := &WriteSet{PrevVersion: t.prev, TrimChangesBelow: t.trim}
	for _, m := range t.mboxes {
		ws.Mailboxes = append(ws.Mailboxes, *m)
	}
	sort.Slice(ws.Mailboxes, func(i, j int) bool { return ws.Mailboxes[i].ID < ws.Mailboxes[j].ID })
	for id := range t.mboxDel {
		ws.DeletedMailboxes = append(ws.DeletedMailboxes, id)
	}
	sort.Slice(ws.DeletedMailboxes, func(i, j int) bool { return ws.DeletedMailboxes[i] < ws.DeletedMailboxes[j] })
	for _, k := range t.order {
		if e, ok := t.emails[k]; ok {
			ws.Emails = append(ws.Emails, *e)
		}
	}
	for _, k := range t.emailDel {
		ws.DeletedEmails = append(ws.DeletedEmails, k)
	}
	sort.Slice(ws.DeletedEmails, func(i, j int) bool {
		a, b := ws.DeletedEmails[i], ws.DeletedEmails[j]
		return a.Mailbox < b.Mailbox || a.Mailbox == b.Mailbox && a.UID < b.UID
	})
	ws.Changes = t.changes
	for k, v := range t.puts {
		ws.Puts = append(ws.Puts, KV{Key: k, Value: v})
	}
	sort.Slice(ws.Puts, func(i, j int) bool { return ws.Puts[i].Key < ws.Puts[j].Key })
	for k := range t.dels {
		ws.Deletes = append(ws.Deletes, k)
	}
	sort.Strings(ws.Deletes)
	if ws.Empty() && t.trim == 0 && t.state == t.orig {
		return nil
	}
	t.state.Version = t.prev + 1
	ws.State = t.state
	return ws
}

func equalFold(a, b string) bool { return strings.EqualFold(a, b) }
