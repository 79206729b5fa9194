package storage

import "errors"

// Errors carry their meaning to the protocol layer, which maps them to
// IMAP response codes (RFC 5530) and SMTP replies.
var (
	ErrNotFound          = errors.New("storage: not found")
	ErrExists            = errors.New("storage: already exists")          // IMAP [ALREADYEXISTS]
	ErrNoSuchMailbox     = errors.New("storage: no such mailbox")         // IMAP [TRYCREATE] / [NONEXISTENT]
	ErrHasChildren       = errors.New("storage: mailbox has children")    // IMAP [HASCHILDREN]
	ErrCannot            = errors.New("storage: operation not permitted") // IMAP [CANNOT]
	ErrOverQuota         = errors.New("storage: over quota")              // IMAP [OVERQUOTA], SMTP 552 5.2.2
	ErrTooLarge          = errors.New("storage: message too large")       // IMAP [TOOBIG], SMTP 552 5.3.4
	ErrInvalidName       = errors.New("storage: invalid mailbox name")
	ErrAuthFailed        = errors.New("storage: authentication failed")
	ErrNoSuchUser        = errors.New("storage: no such user")     // SMTP 550 5.1.1
	ErrNotLocal          = errors.New("storage: domain not local") // SMTP relay decision
	ErrChangesTruncated  = errors.New("storage: changes no longer available")
	ErrConflict          = errors.New("storage: concurrent update, retry") // engines retry internally
	ErrCrashed           = errors.New("storage: failpoint crash")
	ErrAccountDisabled   = errors.New("storage: account disabled")
	ErrInvalidFlag       = errors.New("storage: invalid flag")
	ErrUIDValidityChange = errors.New("storage: uidvalidity changed")
	ErrClosed            = errors.New("storage: engine closed")
)
