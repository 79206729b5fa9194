package storage

import "time"

// Domain is a mail domain served by this installation.
type Domain struct {
	Name     string    `json:"name"`               // lower-case, ASCII (A-labels)
	CatchAll string    `json:"catchAll,omitempty"` // account ID that receives mail for unknown local parts
	Created  time.Time `json:"created"`
}

// AppPassword is a per-device password that can be revoked alone.
type AppPassword struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Hash    string    `json:"hash"`
	Created time.Time `json:"created"`
}

// Account is one mailbox owner.
type Account struct {
	ID            string        `json:"id"`
	Login         string        `json:"login"` // primary address, lower-case
	Domain        string        `json:"domain"`
	PasswordHash  string        `json:"passwordHash"`
	AppPasswords  []AppPassword `json:"appPasswords,omitempty"`
	Aliases       []string      `json:"aliases,omitempty"`
	QuotaBytes    int64         `json:"quotaBytes"`    // 0 = unlimited
	QuotaMessages int64         `json:"quotaMessages"` // 0 = unlimited
	HomeDC        string        `json:"homeDC,omitempty"`
	Disabled      bool          `json:"disabled,omitempty"`
	Created       time.Time     `json:"created"`
}

// Mailbox roles (RFC 6154 special-use; JMAP roles RFC 8621 §2).
const (
	RoleInbox   = "inbox"
	RoleSent    = "sent"
	RoleDrafts  = "drafts"
	RoleTrash   = "trash"
	RoleJunk    = "junk"
	RoleArchive = "archive"
)

// AccountState is the one row per account that every mutation updates
// (DESIGN §2.3): it allocates mailbox ids, email ids, MODSEQs and carries
// the exact quota usage.
type AccountState struct {
	Version         uint64 `json:"v"`   // bumped by every committed WriteSet
	ModSeq          uint64 `json:"ms"`  // highest MODSEQ / change sequence of the account
	MinChangeSeq    uint64 `json:"mcs"` // changes below this are trimmed
	NextMailboxID   uint32 `json:"nmb"`
	NextEmailID     uint64 `json:"nem"`
	NextThreadID    uint64 `json:"nth"`
	LastUIDValidity uint32 `json:"luv"`
	UsedBytes       int64  `json:"ub"`
	UsedMessages    int64  `json:"um"`
}

// Mailbox is one folder. Counts are exact (DESIGN §2.2).
type Mailbox struct {
	ID            uint32 `json:"id"`
	Name          string `json:"name"` // full path, UTF-8, hierarchy separated by Config.Separator
	Role          string `json:"role,omitempty"`
	UIDValidity   uint32 `json:"uidv"`
	UIDNext       uint32 `json:"uidn"`
	HighestModSeq uint64 `json:"hms"`
	CreatedModSeq uint64 `json:"cms"`
	Messages      int64  `json:"n"`
	Unseen        int64  `json:"unseen"`
	Size          int64  `json:"size"`
}

// Email is the membership of one message in one mailbox: an IMAP message
// with its UID, flags and MODSEQ.
type Email struct {
	Mailbox      uint32    `json:"mb"`
	UID          uint32    `json:"uid"`
	EmailID      uint64    `json:"eid"`
	BlobID       string    `json:"blob"`
	Size         int64     `json:"size"`
	InternalDate time.Time `json:"idate"`
	Flags        []string  `json:"flags,omitempty"` // sorted; system flags (\Seen…) and keywords
	ModSeq       uint64    `json:"ms"`
	ThreadID     uint64    `json:"th"`
}

// HasFlag reports whether f is set (case-insensitive, RFC 9051 §2.3.2).
func (e *Email) HasFlag(f string) bool {
	for _, x := range e.Flags {
		if equalFold(x, f) {
			return true
		}
	}
	return false
}

// EmailKey names one membership.
type EmailKey struct {
	Mailbox uint32 `json:"mb"`
	UID     uint32 `json:"uid"`
	BlobID  string `json:"blob"`
	EmailID uint64 `json:"eid"`
}

// ChangeKind says what a Change did.
type ChangeKind uint8

const (
	ChangeMailboxCreate ChangeKind = iota + 1
	ChangeMailboxUpdate            // rename, subscribe, counts
	ChangeMailboxDelete
	ChangeEmailAdd
	ChangeEmailFlags
	ChangeEmailExpunge
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeMailboxCreate:
		return "mailbox-create"
	case ChangeMailboxUpdate:
		return "mailbox-update"
	case ChangeMailboxDelete:
		return "mailbox-delete"
	case ChangeEmailAdd:
		return "email-add"
	case ChangeEmailFlags:
		return "email-flags"
	case ChangeEmailExpunge:
		return "email-expunge"
	}
	return "unknown"
}

// Change is one record of the account's ordered change log. Its Seq is the
// MODSEQ given to everything the mutation touched; it feeds IMAP
// CONDSTORE/QRESYNC (RFC 7162), JMAP /changes (RFC 8620 §5.2), IDLE and the
// indexer.
type Change struct {
	Seq      uint64     `json:"seq"`
	Part     uint16     `json:"p,omitempty"` // records of one mutation share Seq; (Seq, Part) is unique
	Kind     ChangeKind `json:"k"`
	Mailbox  uint32     `json:"mb,omitempty"`
	UIDs     []uint32   `json:"uids,omitempty"`
	EmailIDs []uint64   `json:"eids,omitempty"`
	Threads  []uint64   `json:"ths,omitempty"`
	Blobs    []string   `json:"blobs,omitempty"` // for email-add: the message blobs (indexer)
	Time     time.Time  `json:"t"`
}

// KV is a small keyed record inside an account (thread index, dedupe keys).
type KV struct {
	Key   string `json:"k"`
	Value string `json:"v"`
}
