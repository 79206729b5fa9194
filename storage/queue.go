package storage

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// The outbound queue lives in the store as a system account (DESIGN §4):
// each queued message is an email in its "outbound" mailbox, so the blob
// is referenced (never collected) and the entry, its envelope and its
// per-recipient state are written by one mutation. MTA workers claim
// entries with leases (a later issue); submission only enqueues.
const (
	QueueAccount = "$queue"
	queueBox     = "outbound"
	queuePrefix  = "q/"
)

// QueuedRecipient is one recipient's delivery state.
type QueuedRecipient struct {
	Address     string    `json:"addr"`
	Status      string    `json:"status"` // pending, delivered, failed
	Attempts    int       `json:"attempts,omitempty"`
	NextAttempt time.Time `json:"next,omitempty"`
	LastError   string    `json:"lastError,omitempty"`
	Notify      string    `json:"notify,omitempty"` // DSN NOTIFY (RFC 3461 §4.1)
	ORcpt       string    `json:"orcpt,omitempty"`  // DSN ORCPT (RFC 3461 §4.2)
}

// QueueEntry is one message waiting for outbound delivery.
type QueueEntry struct {
	ID         string            `json:"id"`
	From       string            `json:"from"` // envelope sender ("" = null sender)
	Recipients []QueuedRecipient `json:"rcpts"`
	Account    string            `json:"account,omitempty"` // submitter
	Created    time.Time         `json:"created"`
	BlobID     string            `json:"blob"`
	Size       int64             `json:"size"`
	UID        uint32            `json:"uid"`
	EnvID      string            `json:"envid,omitempty"` // DSN ENVID
	Ret        string            `json:"ret,omitempty"`   // DSN RET (FULL/HDRS)
	SMTPUTF8   bool              `json:"smtputf8,omitempty"`
	Body       string            `json:"body,omitempty"` // 7BIT, 8BITMIME, BINARYMIME
}

// Enqueue stores raw and the entry for the MTA in one mutation; the entry
// is durable when Enqueue returns. e.ID makes it idempotent.
func (s *Store) Enqueue(ctx context.Context, e QueueEntry, raw []byte) (QueueEntry, error) {
	if e.ID == "" {
		e.ID = newID()
	}
	if len(e.Recipients) == 0 {
		return e, errors.New("storage: enqueue without recipients")
	}
	blobID, meta, err := s.PutMessage(ctx, raw)
	if err != nil {
		return e, err
	}
	e.BlobID, e.Size = blobID, int64(len(raw))
	if e.Created.IsZero() {
		e.Created = now()
	}
	for i := range e.Recipients {
		if e.Recipients[i].Status == "" {
			e.Recipients[i].Status = "pending"
		}
		if e.Recipients[i].NextAttempt.IsZero() {
			e.Recipients[i].NextAttempt = e.Created
		}
	}
	var out QueueEntry
	err = s.update(ctx, QueueAccount, func(t *txn) error {
		key := queuePrefix + e.ID
		if v, ok, err := t.get(key); err != nil {
			return err
		} else if ok {
			return json.Unmarshal([]byte(v), &out) // a retry: already queued
		}
		boxes, err := t.mailboxes()
		if err != nil {
			return err
		}
		mb, ok := findByName(boxes, queueBox)
		if !ok {
			mb = s.createIn(t, &boxes, queueBox, "")
		}
		em, err := s.addEmail(t, mb.ID, blobID, meta, e.Size, nil, e.Created)
		if err != nil {
			return err
		}
		out = e
		out.UID = em.UID
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		t.put(key, string(b))
		return nil
	})
	return out, err
}

// Queue lists queued entries (oldest id order), at most limit (0 = all).
func (s *Store) Queue(ctx context.Context, limit int) ([]QueueEntry, error) {
	var out []QueueEntry
	err := s.view(ctx, QueueAccount, func(r Reader) error {
		kvs, err := r.Scan(queuePrefix)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			var e QueueEntry
			if err := json.Unmarshal([]byte(kv.Value), &e); err != nil {
				return err
			}
			out = append(out, e)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// IsSystemAccount reports whether id names an internal account such as
// the queue, which no user can log in to.
func IsSystemAccount(id string) bool { return strings.HasPrefix(id, "$") }
