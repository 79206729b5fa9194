package storage

import (
	"context"
	"time"
)

// Engine is what a storage back end implements. It persists; it makes no
// mail decisions. Store (the rules) calls it.
//
// Global records (domains, accounts, the address index, blobs, message
// metadata) are written with simple idempotent calls. Everything inside one
// account goes through Update, which must be atomic, durable when it returns
// nil, and serialised per account: either by a lock (embedded) or by one
// conditional update on the account's state row (Cassandra, DESIGN §2.3).
type Engine interface {
	Name() string

	// Directory.
	PutDomain(ctx context.Context, d Domain) error
	GetDomain(ctx context.Context, name string) (Domain, error) // ErrNotFound
	ListDomains(ctx context.Context) ([]Domain, error)
	// PutAccount writes the account record. It does not touch the address index.
	PutAccount(ctx context.Context, a Account) error
	GetAccount(ctx context.Context, id string) (Account, error) // ErrNotFound
	ListAccounts(ctx context.Context) ([]Account, error)
	DeleteAccount(ctx context.Context, id string) error
	// ClaimAddress maps addr to accountID if addr is free (or already
	// maps to accountID); otherwise ErrExists. It is the one uniqueness check
	// of the directory (Cassandra: INSERT … IF NOT EXISTS).
	ClaimAddress(ctx context.Context, addr, accountID string) error
	ReleaseAddress(ctx context.Context, addr string) error
	LookupAddress(ctx context.Context, addr string) (string, error) // ErrNotFound

	// Blobs are immutable and content-addressed (DESIGN §2.9); PutBlob of an
	// existing id is a no-op. Blob writes need not be durable on return:
	// the Update that references them is, and an engine must order them so
	// that a durable Update implies its blobs are durable.
	PutBlob(ctx context.Context, id string, data []byte, meta []byte) error
	GetBlob(ctx context.Context, id string) ([]byte, error) // ErrNotFound
	GetBlobMeta(ctx context.Context, id string) ([]byte, error)
	// BlobRefs reports whether any email references the blob.
	BlobReferenced(ctx context.Context, id string) (bool, error)
	// ListBlobs calls fn for each blob written before olderThan.
	ListBlobs(ctx context.Context, olderThan time.Time, fn func(id string) error) error
	// DeleteBlob deletes the blob unless it was put at or after olderThan,
	// and reports whether it deleted it. However it interleaves with a
	// PutBlob made after olderThan, the blob stays whole: a delivery that
	// re-uses a blob puts it before it commits its reference, so garbage
	// collection never takes a blob from under it (DESIGN §2.9).
	DeleteBlob(ctx context.Context, id string, olderThan time.Time) (bool, error)

	// View gives a consistent read of one account.
	View(ctx context.Context, account string, fn func(r Reader) error) error
	// Update gives fn the account's current state and commits the WriteSet
	// fn returns. If the engine detects a concurrent commit it calls fn
	// again with fresh state, so fn must have no side effects. A nil
	// WriteSet commits nothing.
	Update(ctx context.Context, account string, fn func(r Reader) (*WriteSet, error)) error
	// DropAccountData removes every per-account record (account deletion).
	DropAccountData(ctx context.Context, account string) error

	// Activity feed (ADR 0009): which accounts committed changes, and
	// when, so that a process that did not make them (the indexer
	// sidecar) finds them without reading every account's state.
	// NoteActivity records that accounts changed at about at, noted by
	// writer; it is a hint, not part of the commit. Activity calls fn for
	// every note made at or after since (an account may come several
	// times, in any order); since before now-ActivityRetention is
	// ErrActivityTruncated. After Close both return ErrClosed.
	NoteActivity(ctx context.Context, writer string, at time.Time, accounts []string) error
	Activity(ctx context.Context, since time.Time, fn func(ActivityNote) error) error

	Close() error
}

// Reader reads one account's records.
type Reader interface {
	State() (AccountState, error) // zero state for a new account
	Mailboxes() ([]Mailbox, error)
	Mailbox(id uint32) (Mailbox, error)       // ErrNotFound
	Email(mailbox, uid uint32) (Email, error) // ErrNotFound
	// Emails returns memberships of mailbox with from <= UID <= to in
	// ascending UID order, at most limit (0 = no limit).
	Emails(mailbox, from, to uint32, limit int) ([]Email, error)
	// Changes returns change records with Seq > since, ascending by (Seq,
	// Part), at most limit records (0 = no limit).
	Changes(since uint64, limit int) ([]Change, error)
	// Get reads a small keyed record (thread index, dedupe keys).
	Get(key string) (string, bool, error)
	// Scan returns the keyed records whose key starts with prefix, in key order.
	Scan(prefix string) ([]KV, error)
}

// WriteSet is everything one mutation writes inside one account. Engines
// apply it atomically: all of it or none of it is visible.
type WriteSet struct {
	State            AccountState `json:"state"` // always written; State.Version is the new version
	PrevVersion      uint64       `json:"prev"`
	Mailboxes        []Mailbox    `json:"mailboxes,omitempty"`
	DeletedMailboxes []uint32     `json:"deletedMailboxes,omitempty"`
	Emails           []Email      `json:"emails,omitempty"` // put (insert or replace)
	DeletedEmails    []EmailKey   `json:"deletedEmails,omitempty"`
	Changes          []Change     `json:"changes,omitempty"`
	TrimChangesBelow uint64       `json:"trim,omitempty"` // delete changes with Seq < this
	Puts             []KV         `json:"puts,omitempty"`
	Deletes          []string     `json:"deletes,omitempty"`
}

// Empty reports whether the set writes nothing besides the state.
func (w *WriteSet) Empty() bool {
	return len(w.Mailboxes) == 0 && len(w.DeletedMailboxes) == 0 && len(w.Emails) == 0 &&
		len(w.DeletedEmails) == 0 && len(w.Changes) == 0 && len(w.Puts) == 0 && len(w.Deletes) == 0
}
