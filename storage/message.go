package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stoa-mail/stoa/storage/failpoint"
	"github.com/stoa-mail/stoa/storage/mailmeta"
)

// Failpoints on the delivery path (DESIGN §2.5).
const (
	FPAfterBlob    = "store.after-blob"    // blob written, no mailbox references it yet
	FPBeforeCommit = "store.before-commit" // writes computed, not committed
	// FPGCBeforeDelete: garbage collection found a blob old and
	// unreferenced and is about to delete it (engines inject it where a
	// concurrent PutBlob is most dangerous).
	FPGCBeforeDelete = "gc.before-delete"
)

// System flags (RFC 9051 §2.3.2).
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
)

var systemFlags = []string{FlagSeen, FlagAnswered, FlagFlagged, FlagDeleted, FlagDraft}

// NormalizeFlags checks flags and keywords, spells system flags in their
// canonical case, drops \Recent (never stored, RFC 9051 removed it) and
// duplicates, and sorts. Keywords must be IMAP atoms (RFC 9051 §9 flag-keyword).
func NormalizeFlags(flags []string, max int) ([]string, error) {
	out := make([]string, 0, len(flags))
	seen := map[string]bool{}
	for _, f := range flags {
		if strings.EqualFold(f, `\Recent`) {
			continue
		}
		canon := ""
		if strings.HasPrefix(f, `\`) {
			for _, sf := range systemFlags {
				if strings.EqualFold(f, sf) {
					canon = sf
				}
			}
			if canon == "" {
				return nil, ErrInvalidFlag
			}
		} else {
			if f == "" || len(f) > 200 {
				return nil, ErrInvalidFlag
			}
			for i := 0; i < len(f); i++ {
				c := f[i]
				if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
					return nil, ErrInvalidFlag
				}
			}
			canon = f
		}
		k := strings.ToLower(canon)
		if !seen[k] {
			seen[k] = true
			out = append(out, canon)
		}
	}
	if max > 0 && len(out) > max {
		return nil, ErrInvalidFlag
	}
	sort.Strings(out)
	return out, nil
}

func hasFlag(flags []string, f string) bool {
	for _, x := range flags {
		if strings.EqualFold(x, f) {
			return true
		}
	}
	return false
}

// BlobID is the content address of raw message bytes.
func BlobID(raw []byte) string {
	h := sha256.Sum256(raw)
	return hex.EncodeToString(h[:])
}

// PutMessage parses raw once, stores it as a blob with its metadata, and
// returns the blob id. Storing the same bytes twice stores them once.
func (s *Store) PutMessage(ctx context.Context, raw []byte) (string, *mailmeta.Meta, error) {
	if int64(len(raw)) > s.cfg.MaxMessageSize {
		return "", nil, ErrTooLarge
	}
	id := BlobID(raw)
	meta := mailmeta.Parse(raw, s.cfg.ParseLimits)
	mj, err := json.Marshal(meta)
	if err != nil {
		return "", nil, err
	}
	if err := s.eng.PutBlob(ctx, id, raw, mj); err != nil {
		return "", nil, err
	}
	return id, meta, nil
}

// Meta returns the metadata computed at delivery.
func (s *Store) Meta(ctx context.Context, blobID string) (*mailmeta.Meta, error) {
	b, err := s.eng.GetBlobMeta(ctx, blobID)
	if err != nil {
		return nil, err
	}
	m := new(mailmeta.Meta)
	return m, json.Unmarshal(b, m)
}

// Blob returns the raw message.
func (s *Store) Blob(ctx context.Context, blobID string) ([]byte, error) {
	return s.eng.GetBlob(ctx, blobID)
}

// Target is one mailbox a delivery goes to.
type Target struct {
	Account string
	Mailbox uint32 // 0: the mailbox with Role, or INBOX
	Role    string
	Flags   []string
}

// Delivery is one message for one or more targets.
type Delivery struct {
	// ID makes the delivery idempotent: a retry with the same ID returns
	// the first result instead of delivering twice (DESIGN §2.5).
	ID           string
	Raw          []byte
	InternalDate time.Time
	Targets      []Target
}

// Delivered is the outcome for one target.
type Delivered struct {
	Account     string
	Mailbox     uint32
	UIDValidity uint32
	UID         uint32
	EmailID     uint64
	ModSeq      uint64
	Duplicate   bool // an earlier delivery with the same ID
	Err         error
}

// Deliver stores the message once and adds it to every target. It returns
// one result per target; each result without Err is durable. The error is
// for failures before any target was tried.
func (s *Store) Deliver(ctx context.Context, d Delivery) ([]Delivered, error) {
	blobID, meta, err := s.PutMessage(ctx, d.Raw)
	if err != nil {
		return nil, err
	}
	if err := failpoint.Inject(FPAfterBlob); err != nil {
		return nil, err
	}
	if d.InternalDate.IsZero() {
		d.InternalDate = now()
	}
	res := make([]Delivered, len(d.Targets))
	byAcct := map[string][]int{}
	var order []string
	for i, t := range d.Targets {
		if _, ok := byAcct[t.Account]; !ok {
			order = append(order, t.Account)
		}
		byAcct[t.Account] = append(byAcct[t.Account], i)
	}
	// Accounts commit in parallel so that their syncs are grouped.
	var wg sync.WaitGroup
	for _, acct := range order {
		wg.Add(1)
		go func(acct string, idx []int) {
			defer wg.Done()
			s.deliverAccount(ctx, acct, idx, d, blobID, meta, res)
		}(acct, byAcct[acct])
	}
	wg.Wait()
	return res, nil
}

func (s *Store) deliverAccount(ctx context.Context, acct string, idx []int, d Delivery, blobID string, meta *mailmeta.Meta, res []Delivered) {
	a, err := s.quotaAccount(ctx, acct)
	if err != nil {
		for _, i := range idx {
			res[i] = Delivered{Account: acct, Err: err}
		}
		return
	}
	size := int64(len(d.Raw))
	err = s.update(ctx, acct, func(t *txn) error {
		boxes, err := t.mailboxes()
		if err != nil {
			return err
		}
		for _, i := range idx {
			tg := d.Targets[i]
			r := Delivered{Account: acct}
			key := ""
			mb, err := resolveTarget(boxes, tg)
			if err != nil {
				r.Err = err
				res[i] = r
				continue
			}
			if d.ID != "" {
				key = "dlv/" + d.ID + "/" + strconv.FormatUint(uint64(mb.ID), 10)
				if v, ok, err := t.get(key); err != nil {
					return err
				} else if ok {
					var prev Delivered
					if json.Unmarshal([]byte(v), &prev) == nil {
						prev.Duplicate = true
						res[i] = prev
						continue
					}
				}
			}
			if err := checkQuota(a, t.state, size, 1); err != nil {
				r.Err = err
				res[i] = r
				continue
			}
			flags, err := NormalizeFlags(tg.Flags, s.cfg.MaxFlags)
			if err != nil {
				r.Err = err
				res[i] = r
				continue
			}
			e, err := s.addEmail(t, mb.ID, blobID, meta, size, flags, d.InternalDate)
			if err != nil {
				return err
			}
			mb, _ = t.mailbox(mb.ID)
			r.Mailbox, r.UIDValidity, r.UID, r.EmailID, r.ModSeq = mb.ID, mb.UIDValidity, e.UID, e.EmailID, e.ModSeq
			res[i] = r
			if key != "" {
				b, _ := json.Marshal(r)
				t.put(key, string(b))
			}
		}
		return failpoint.Inject(FPBeforeCommit)
	})
	if err != nil {
		for _, i := range idx {
			res[i] = Delivered{Account: acct, Err: err}
		}
	}
}

func resolveTarget(boxes []Mailbox, tg Target) (Mailbox, error) {
	for _, m := range boxes {
		if tg.Mailbox != 0 && m.ID == tg.Mailbox {
			return m, nil
		}
	}
	if tg.Mailbox != 0 {
		return Mailbox{}, ErrNoSuchMailbox
	}
	role := tg.Role
	if role == "" {
		role = RoleInbox
	}
	for _, m := range boxes {
		if m.Role == role {
			return m, nil
		}
	}
	for _, m := range boxes { // fall back to INBOX
		if m.Name == "INBOX" {
			return m, nil
		}
	}
	return Mailbox{}, ErrNoSuchMailbox
}

func checkQuota(a Account, st AccountState, bytes, msgs int64) error {
	if a.QuotaBytes > 0 && st.UsedBytes+bytes > a.QuotaBytes {
		return ErrOverQuota
	}
	if a.QuotaMessages > 0 && st.UsedMessages+msgs > a.QuotaMessages {
		return ErrOverQuota
	}
	return nil
}

// addEmail allocates the next UID of the mailbox and this mutation's
// MODSEQ, assigns the thread, and adjusts the exact counts (DESIGN §2.3-4).
func (s *Store) addEmail(t *txn, mbID uint32, blobID string, meta *mailmeta.Meta, size int64, flags []string, date time.Time) (Email, error) {
	mb, err := t.mailbox(mbID)
	if err != nil {
		return Email{}, err
	}
	if mb.UIDNext == ^uint32(0) {
		return Email{}, ErrCannot // UID space exhausted: needs a new UIDVALIDITY
	}
	ms := t.nextModSeq()
	t.state.NextEmailID++
	th, err := s.assignThread(t, meta)
	if err != nil {
		return Email{}, err
	}
	e := Email{Mailbox: mb.ID, UID: mb.UIDNext, EmailID: t.state.NextEmailID, BlobID: blobID,
		Size: size, InternalDate: date.UTC(), Flags: flags, ModSeq: ms, ThreadID: th}
	mb.UIDNext++
	mb.HighestModSeq = ms
	mb.Messages++
	mb.Size += size
	if !hasFlag(flags, FlagSeen) {
		mb.Unseen++
	}
	t.state.UsedBytes += size
	t.state.UsedMessages++
	t.putMailbox(mb)
	t.putEmail(e)
	// One change per added email keeps the record small and lets the
	// indexer and JMAP see each email with its blob.
	t.addChange(Change{Kind: ChangeEmailAdd, Mailbox: mb.ID, UIDs: []uint32{e.UID},
		EmailIDs: []uint64{e.EmailID}, Threads: []uint64{th}, Blobs: []string{blobID}, Time: now()})
	return e, nil
}

const threadPrefix = "th/"

// assignThread finds the thread of a new email from In-Reply-To and
// References (RFC 5256 §2.2 REFERENCES, simplified as JMAP does), falling
// back to the base subject for replies without references.
func (s *Store) assignThread(t *txn, meta *mailmeta.Meta) (uint64, error) {
	if meta == nil {
		t.state.NextThreadID++
		return t.state.NextThreadID, nil
	}
	var th uint64
	refs := append(append([]string{}, meta.InReplyTo...), meta.References...)
	for _, r := range refs {
		if v, ok, err := t.get(threadPrefix + r); err != nil {
			return 0, err
		} else if ok {
			th, _ = strconv.ParseUint(v, 10, 64)
			break
		}
	}
	subjKey := ""
	if meta.BaseSubject != "" {
		subjKey = threadPrefix + "s:" + strings.ToLower(meta.BaseSubject)
	}
	if th == 0 && subjKey != "" && isReplySubject(meta.Subject) {
		if v, ok, err := t.get(subjKey); err != nil {
			return 0, err
		} else if ok {
			th, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	if th == 0 {
		t.state.NextThreadID++
		th = t.state.NextThreadID
	}
	// The latest message with a Message-ID or base subject names its
	// thread: a blind put saves two lookups per delivery.
	v := strconv.FormatUint(th, 10)
	if meta.MessageID != "" {
		t.put(threadPrefix+meta.MessageID, v)
	}
	if subjKey != "" && len(subjKey) < 400 {
		t.put(subjKey, v)
	}
	return th, nil
}

func isReplySubject(subj string) bool {
	l := strings.ToLower(strings.TrimSpace(subj))
	for _, p := range []string{"re:", "re :", "fwd:", "fw:", "aw:", "sv:", "antw:"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

// Append adds a message to one mailbox with flags and an internal date
// (IMAP APPEND, RFC 9051 §6.3.12).
func (s *Store) Append(ctx context.Context, account string, mailbox uint32, raw []byte, flags []string, date time.Time) (Delivered, error) {
	if mailbox == 0 {
		return Delivered{}, ErrNoSuchMailbox
	}
	if _, err := NormalizeFlags(flags, s.cfg.MaxFlags); err != nil {
		return Delivered{}, err
	}
	res, err := s.Deliver(ctx, Delivery{Raw: raw, InternalDate: date,
		Targets: []Target{{Account: account, Mailbox: mailbox, Flags: flags}}})
	if err != nil {
		return Delivered{}, err
	}
	return res[0], res[0].Err
}

// Emails returns memberships of a mailbox with from <= UID <= to, at most
// limit (0 = all), ascending: the paging primitive of FETCH.
func (s *Store) Emails(ctx context.Context, account string, mailbox, from, to uint32, limit int) ([]Email, error) {
	var out []Email
	err := s.view(ctx, account, func(r Reader) error {
		var err error
		out, err = r.Emails(mailbox, from, to, limit)
		return err
	})
	return out, err
}

// AllUIDs lists every UID of a mailbox, ascending.
func (s *Store) AllUIDs(ctx context.Context, account string, mailbox uint32) ([]uint32, error) {
	var uids []uint32
	from := uint32(1)
	for {
		page, err := s.Emails(ctx, account, mailbox, from, ^uint32(0), 10000)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			uids = append(uids, e.UID)
		}
		if len(page) < 10000 {
			return uids, nil
		}
		from = page[len(page)-1].UID + 1
	}
}

// FlagOp says how StoreFlags combines flags (RFC 9051 §6.4.6).
type FlagOp int

const (
	FlagsSet FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// StoreOptions carries CONDSTORE's UNCHANGEDSINCE (RFC 7162 §3.1.3).
type StoreOptions struct {
	UnchangedSince    uint64
	HasUnchangedSince bool
}

// StoreResult is the outcome of StoreFlags.
type StoreResult struct {
	ModSeq  uint64   // the MODSEQ given to changed emails (0 if none changed)
	Changed []Email  // emails whose flags changed, after the change
	Failed  []uint32 // UIDs refused by UNCHANGEDSINCE ([MODIFIED], RFC 7162 §3.1.3)
}

// StoreFlags changes flags of the given UIDs (ascending, existing or not)
// in one mutation with one MODSEQ.
func (s *Store) StoreFlags(ctx context.Context, account string, mailbox uint32, uids []uint32, op FlagOp, flags []string, o StoreOptions) (StoreResult, error) {
	flags, err := NormalizeFlags(flags, s.cfg.MaxFlags)
	if err != nil {
		return StoreResult{}, err
	}
	var res StoreResult
	err = s.update(ctx, account, func(t *txn) error {
		res = StoreResult{}
		mb, err := t.mailbox(mailbox)
		if err != nil {
			return err
		}
		emails, err := t.emailsIn(mailbox, uids)
		if err != nil {
			return err
		}
		for _, e := range emails {
			if o.HasUnchangedSince && e.ModSeq > o.UnchangedSince {
				res.Failed = append(res.Failed, e.UID)
				continue
			}
			nf := applyFlags(e.Flags, op, flags)
			if len(nf) > s.cfg.MaxFlags {
				return ErrInvalidFlag
			}
			if equalFlags(nf, e.Flags) {
				continue
			}
			ms := t.nextModSeq()
			wasSeen, isSeen := hasFlag(e.Flags, FlagSeen), hasFlag(nf, FlagSeen)
			if wasSeen && !isSeen {
				mb.Unseen++
			} else if !wasSeen && isSeen {
				mb.Unseen--
			}
			e.Flags, e.ModSeq = nf, ms
			t.putEmail(e)
			res.Changed = append(res.Changed, e)
		}
		if len(res.Changed) > 0 {
			res.ModSeq = t.ms
			mb.HighestModSeq = t.ms
			t.putMailbox(mb)
			c := Change{Kind: ChangeEmailFlags, Mailbox: mailbox, Time: now()}
			for _, e := range res.Changed {
				c.UIDs = append(c.UIDs, e.UID)
				c.EmailIDs = append(c.EmailIDs, e.EmailID)
			}
			t.addChange(c)
		}
		return nil
	})
	return res, err
}

// emailsIn loads the existing emails among uids (ascending).
func (t *txn) emailsIn(mailbox uint32, uids []uint32) ([]Email, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	lo, hi := uids[0], uids[len(uids)-1]
	if len(uids) <= 16 {
		var out []Email
		for _, u := range uids {
			e, err := t.email(mailbox, u)
			if errors.Is(err, ErrNotFound) {
				continue
			} else if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	}
	all, err := t.emailsRange(mailbox, lo, hi)
	if err != nil {
		return nil, err
	}
	want := map[uint32]bool{}
	for _, u := range uids {
		want[u] = true
	}
	out := all[:0]
	for _, e := range all {
		if want[e.UID] {
			out = append(out, e)
		}
	}
	return out, nil
}

func applyFlags(cur []string, op FlagOp, flags []string) []string {
	var out []string
	switch op {
	case FlagsSet:
		out = append(out, flags...)
	case FlagsAdd:
		out = append(append(out, cur...), flags...)
	case FlagsRemove:
		for _, f := range cur {
			if !hasFlag(flags, f) {
				out = append(out, f)
			}
		}
	}
	n, _ := NormalizeFlags(out, 0)
	return n
}

func equalFlags(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !strings.EqualFold(a[i], b[i]) {
			return false
		}
	}
	return true
}

// ExpungeResult lists what Expunge removed.
type ExpungeResult struct {
	ModSeq uint64
	UIDs   []uint32 // ascending
}

// Expunge removes the emails flagged \Deleted; if uids is not nil, only
// those among them (UID EXPUNGE, RFC 9051 §6.4.9).
func (s *Store) Expunge(ctx context.Context, account string, mailbox uint32, uids []uint32) (ExpungeResult, error) {
	var res ExpungeResult
	err := s.update(ctx, account, func(t *txn) error {
		res = ExpungeResult{}
		mb, err := t.mailbox(mailbox)
		if err != nil {
			return err
		}
		var emails []Email
		if uids == nil {
			emails, err = t.emailsRange(mailbox, 1, ^uint32(0))
		} else {
			emails, err = t.emailsIn(mailbox, uids)
		}
		if err != nil {
			return err
		}
		var gone []Email
		for _, e := range emails {
			if e.HasFlag(FlagDeleted) {
				gone = append(gone, e)
			}
		}
		if len(gone) == 0 {
			return nil
		}
		s.removeEmails(t, &mb, gone)
		res.ModSeq = t.ms
		for _, e := range gone {
			res.UIDs = append(res.UIDs, e.UID)
		}
		return nil
	})
	return res, err
}

func (s *Store) removeEmails(t *txn, mb *Mailbox, gone []Email) {
	ms := t.nextModSeq()
	c := Change{Kind: ChangeEmailExpunge, Mailbox: mb.ID, Time: now()}
	for _, e := range gone {
		t.deleteEmail(e)
		mb.Messages--
		mb.Size -= e.Size
		if !e.HasFlag(FlagSeen) {
			mb.Unseen--
		}
		t.state.UsedBytes -= e.Size
		t.state.UsedMessages--
		c.UIDs = append(c.UIDs, e.UID)
		c.EmailIDs = append(c.EmailIDs, e.EmailID)
		c.Threads = append(c.Threads, e.ThreadID)
	}
	mb.HighestModSeq = ms
	t.putMailbox(*mb)
	t.addChange(c)
}

// CopyResult maps source UIDs to new UIDs (UIDPLUS COPYUID, RFC 4315 §3).
type CopyResult struct {
	UIDValidity uint32
	Src, Dst    []uint32
	ModSeq      uint64
}

// Copy copies emails to another mailbox of the same account.
func (s *Store) Copy(ctx context.Context, account string, src uint32, uids []uint32, dst uint32) (CopyResult, error) {
	return s.copyOrMove(ctx, account, src, uids, dst, false)
}

// Move moves emails atomically (RFC 6851): one mutation adds them to dst
// and expunges them from src.
func (s *Store) Move(ctx context.Context, account string, src uint32, uids []uint32, dst uint32) (CopyResult, error) {
	return s.copyOrMove(ctx, account, src, uids, dst, true)
}

func (s *Store) copyOrMove(ctx context.Context, account string, src uint32, uids []uint32, dst uint32, move bool) (CopyResult, error) {
	a, err := s.eng.GetAccount(ctx, account)
	if err != nil {
		return CopyResult{}, err
	}
	var res CopyResult
	err = s.update(ctx, account, func(t *txn) error {
		var err error
		if !move && src != dst {
			// Quota applies to copies (RFC 9208 §4.2.1).
			emails, err := t.emailsIn(src, uids)
			if err != nil {
				return err
			}
			var bytes int64
			for _, e := range emails {
				bytes += e.Size
			}
			if err := checkQuota(a, t.state, bytes, int64(len(emails))); err != nil {
				return err
			}
		}
		res, _, err = s.copyIn(t, src, uids, dst, move)
		return err
	})
	return res, err
}

// copyIn copies (or moves) uids from src to dst inside t.
func (s *Store) copyIn(t *txn, src uint32, uids []uint32, dst uint32, move bool) (CopyResult, []Email, error) {
	smb, err := t.mailbox(src)
	if err != nil {
		return CopyResult{}, nil, err
	}
	if _, err := t.mailbox(dst); err != nil {
		return CopyResult{}, nil, err
	}
	emails, err := t.emailsIn(src, uids)
	if err != nil {
		return CopyResult{}, nil, err
	}
	var res CopyResult
	if len(emails) == 0 {
		dmb, _ := t.mailbox(dst)
		res.UIDValidity = dmb.UIDValidity
		return res, nil, nil
	}
	ms := t.nextModSeq()
	for _, e := range emails {
		dmb, _ := t.mailbox(dst)
		if dmb.UIDNext == ^uint32(0) {
			return CopyResult{}, nil, ErrCannot
		}
		t.state.NextEmailID++
		n := Email{Mailbox: dst, UID: dmb.UIDNext, EmailID: t.state.NextEmailID, BlobID: e.BlobID,
			Size: e.Size, InternalDate: e.InternalDate, Flags: e.Flags, ModSeq: ms, ThreadID: e.ThreadID}
		dmb.UIDNext++
		dmb.Messages++
		dmb.Size += e.Size
		if !e.HasFlag(FlagSeen) {
			dmb.Unseen++
		}
		dmb.HighestModSeq = ms
		t.state.UsedBytes += e.Size
		t.state.UsedMessages++
		t.putMailbox(dmb)
		t.putEmail(n)
		t.addChange(Change{Kind: ChangeEmailAdd, Mailbox: dst, UIDs: []uint32{n.UID},
			EmailIDs: []uint64{n.EmailID}, Threads: []uint64{n.ThreadID}, Blobs: []string{n.BlobID}, Time: now()})
		res.Src = append(res.Src, e.UID)
		res.Dst = append(res.Dst, n.UID)
		res.UIDValidity = dmb.UIDValidity
	}
	if move {
		smb, _ = t.mailbox(src)
		s.removeEmails(t, &smb, emails)
	}
	res.ModSeq = ms
	return res, emails, nil
}

// Changes returns change records with Seq > since, ascending, at most limit.
// ErrChangesTruncated means the log no longer reaches back to since: the
// client must resynchronise in full (RFC 8620 cannotCalculateChanges).
func (s *Store) Changes(ctx context.Context, account string, since uint64, limit int) ([]Change, error) {
	var out []Change
	err := s.view(ctx, account, func(r Reader) error {
		st, err := r.State()
		if err != nil {
			return err
		}
		if st.MinChangeSeq > 0 && since+1 < st.MinChangeSeq {
			return ErrChangesTruncated
		}
		out, err = r.Changes(since, limit)
		return err
	})
	return out, err
}

// ChangedSince serves CONDSTORE CHANGEDSINCE and QRESYNC (RFC 7162 §3.1.4,
// §3.2.5): emails of the mailbox with MODSEQ > since, and the UIDs expunged
// since then. vanished is nil with ErrChangesTruncated when the change log
// no longer reaches back; changed is still complete then.
func (s *Store) ChangedSince(ctx context.Context, account string, mailbox uint32, since uint64) (changed []Email, vanished []uint32, err error) {
	from := uint32(1)
	for {
		page, err := s.Emails(ctx, account, mailbox, from, ^uint32(0), 10000)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range page {
			if e.ModSeq > since {
				changed = append(changed, e)
			}
		}
		if len(page) < 10000 {
			break
		}
		from = page[len(page)-1].UID + 1
	}
	seq := since
	for {
		cs, err := s.Changes(ctx, account, seq, 10000)
		if err != nil {
			return changed, nil, err
		}
		for _, c := range cs {
			if c.Kind == ChangeEmailExpunge && c.Mailbox == mailbox {
				vanished = append(vanished, c.UIDs...)
			}
		}
		if len(cs) < 10000 {
			break
		}
		seq = cs[len(cs)-1].Seq
	}
	sort.Slice(vanished, func(i, j int) bool { return vanished[i] < vanished[j] })
	return changed, vanished, nil
}

// CollectGarbage deletes blobs that no email references and that were last
// written before grace ago (DESIGN §2.9). A delivery puts its blob (which
// refreshes the time of an existing one) before it commits the reference,
// and DeleteBlob spares blobs put after the cut-off, so a blob found
// unreferenced here but re-used meanwhile is kept. The grace period must
// exceed the longest delivery (put to commit).
func (s *Store) CollectGarbage(ctx context.Context, grace time.Duration) (int, error) {
	n := 0
	cutoff := time.Now().Add(-grace)
	err := s.eng.ListBlobs(ctx, cutoff, func(id string) error {
		ref, err := s.eng.BlobReferenced(ctx, id)
		if err != nil || ref {
			return err
		}
		deleted, err := s.eng.DeleteBlob(ctx, id, cutoff)
		if deleted {
			n++
		}
		return err
	})
	return n, err
}

// quotaTTL bounds how long a delivery may use a cached account record for
// its quota limits (the usage itself is always exact, from the state row).
const quotaTTL = 5 * time.Second

type cachedAccount struct {
	a  Account
	at time.Time
}

// quotaAccount returns the account record for quota checks, from a
// short-lived cache: deliveries to one account need not read it each time.
func (s *Store) quotaAccount(ctx context.Context, id string) (Account, error) {
	if v, ok := s.acctCache.Load(id); ok {
		c := v.(cachedAccount)
		if time.Since(c.at) < quotaTTL {
			return c.a, nil
		}
	}
	a, err := s.eng.GetAccount(ctx, id)
	if err != nil {
		return a, err
	}
	s.acctCache.Store(id, cachedAccount{a, time.Now()})
	return a, nil
}
