package storage

import (
	"context"
	"sort"
	"strings"
	"unicode/utf8"
)

// IsInbox reports whether name is INBOX, which is case-insensitive
// (RFC 9051 §5.1).
func IsInbox(name string) bool { return strings.EqualFold(name, "INBOX") }

// CanonicalName checks a mailbox name and returns it with INBOX (and an
// INBOX first level) spelled in upper case.
func (s *Store) CanonicalName(name string) (string, error) {
	sep := s.cfg.Separator
	if name == "" || len(name) > s.cfg.MaxNameLength || !utf8.ValidString(name) {
		return "", ErrInvalidName
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", ErrInvalidName
		}
	}
	parts := strings.Split(name, sep)
	if len(parts) > s.cfg.MaxNameDepth {
		return "", ErrInvalidName
	}
	for _, p := range parts {
		if p == "" {
			return "", ErrInvalidName
		}
	}
	if IsInbox(parts[0]) {
		parts[0] = "INBOX"
	}
	return strings.Join(parts, sep), nil
}

// Mailboxes lists the account's mailboxes ordered by name.
func (s *Store) Mailboxes(ctx context.Context, account string) ([]Mailbox, error) {
	var out []Mailbox
	err := s.view(ctx, account, func(r Reader) error {
		var err error
		out, err = r.Mailboxes()
		return err
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// MailboxByName finds a mailbox by its name.
func (s *Store) MailboxByName(ctx context.Context, account, name string) (Mailbox, error) {
	name, err := s.CanonicalName(name)
	if err != nil {
		return Mailbox{}, ErrNoSuchMailbox
	}
	boxes, err := s.Mailboxes(ctx, account)
	if err != nil {
		return Mailbox{}, err
	}
	for _, m := range boxes {
		if m.Name == name {
			return m, nil
		}
	}
	return Mailbox{}, ErrNoSuchMailbox
}

// MailboxByRole finds the mailbox with a special-use role.
func (s *Store) MailboxByRole(ctx context.Context, account, role string) (Mailbox, error) {
	boxes, err := s.Mailboxes(ctx, account)
	if err != nil {
		return Mailbox{}, err
	}
	for _, m := range boxes {
		if m.Role == role {
			return m, nil
		}
	}
	return Mailbox{}, ErrNoSuchMailbox
}

// Mailbox returns a mailbox by id.
func (s *Store) Mailbox(ctx context.Context, account string, id uint32) (Mailbox, error) {
	var m Mailbox
	err := s.view(ctx, account, func(r Reader) error {
		var err error
		m, err = r.Mailbox(id)
		if err == ErrNotFound {
			err = ErrNoSuchMailbox
		}
		return err
	})
	return m, err
}

func findByName(boxes []Mailbox, name string) (Mailbox, bool) {
	for _, m := range boxes {
		if m.Name == name {
			return m, true
		}
	}
	return Mailbox{}, false
}

// newUIDValidity gives a value never used before in this account, so a
// mailbox re-created under an old name is told apart (RFC 9051 §2.3.1.1).
func newUIDValidity(st *AccountState) uint32 {
	v := uint32(now().Unix())
	if v <= st.LastUIDValidity {
		v = st.LastUIDValidity + 1
	}
	st.LastUIDValidity = v
	return v
}

func (s *Store) createIn(t *txn, boxes *[]Mailbox, name, role string) Mailbox {
	t.state.NextMailboxID++
	ms := t.nextModSeq()
	m := Mailbox{ID: t.state.NextMailboxID, Name: name, Role: role,
		UIDValidity: newUIDValidity(&t.state), UIDNext: 1, HighestModSeq: ms, CreatedModSeq: ms}
	t.putMailbox(m)
	t.addChange(Change{Kind: ChangeMailboxCreate, Mailbox: m.ID, Time: now()})
	*boxes = append(*boxes, m)
	return m
}

// CreateMailbox creates name, and any missing parents (RFC 9051 §6.3.4).
// role may be "" or one of the Role constants (RFC 6154 CREATE-SPECIAL-USE).
func (s *Store) CreateMailbox(ctx context.Context, account, name, role string) (Mailbox, error) {
	name, err := s.CanonicalName(name)
	if err != nil {
		return Mailbox{}, err
	}
	var out Mailbox
	err = s.update(ctx, account, func(t *txn) error {
		boxes, err := t.mailboxes()
		if err != nil {
			return err
		}
		if _, ok := findByName(boxes, name); ok {
			return ErrExists
		}
		if role != "" {
			for _, m := range boxes {
				if m.Role == role {
					role = "" // one mailbox per role; keep the first
					break
				}
			}
		}
		parts := strings.Split(name, s.cfg.Separator)
		for i := 1; i < len(parts); i++ {
			p := strings.Join(parts[:i], s.cfg.Separator)
			if _, ok := findByName(boxes, p); !ok {
				s.createIn(t, &boxes, p, "")
			}
		}
		out = s.createIn(t, &boxes, name, role)
		return nil
	})
	return out, err
}

// RenameMailbox renames a mailbox and its children (RFC 9051 §6.3.6).
// Renaming INBOX moves its messages to a new mailbox and leaves INBOX empty.
func (s *Store) RenameMailbox(ctx context.Context, account, from, to string) error {
	from, err := s.CanonicalName(from)
	if err != nil {
		return ErrNoSuchMailbox
	}
	to, err = s.CanonicalName(to)
	if err != nil {
		return err
	}
	sep := s.cfg.Separator
	if from == to {
		return ErrExists
	}
	if IsInbox(to) || strings.HasPrefix(to, from+sep) {
		return ErrCannot
	}
	return s.update(ctx, account, func(t *txn) error {
		boxes, err := t.mailboxes()
		if err != nil {
			return err
		}
		src, ok := findByName(boxes, from)
		if !ok {
			return ErrNoSuchMailbox
		}
		if _, ok := findByName(boxes, to); ok {
			return ErrExists
		}
		parts := strings.Split(to, sep)
		for i := 1; i < len(parts); i++ {
			p := strings.Join(parts[:i], sep)
			if _, ok := findByName(boxes, p); !ok {
				s.createIn(t, &boxes, p, "")
			}
		}
		if src.Name == "INBOX" {
			dst := s.createIn(t, &boxes, to, "")
			emails, err := t.emailsRange(src.ID, 1, ^uint32(0))
			if err != nil {
				return err
			}
			uids := make([]uint32, len(emails))
			for i, e := range emails {
				uids[i] = e.UID
			}
			_, _, err = s.copyIn(t, src.ID, uids, dst.ID, true)
			return err
		}
		ms := t.nextModSeq()
		for _, m := range boxes {
			if m.ID == src.ID || strings.HasPrefix(m.Name, from+sep) {
				m.Name = to + m.Name[len(from):]
				m.HighestModSeq = ms
				t.putMailbox(m)
				t.addChange(Change{Kind: ChangeMailboxUpdate, Mailbox: m.ID, Time: now()})
			}
		}
		return nil
	})
}

// DeleteMailbox deletes a mailbox and expunges its messages. INBOX cannot be
// deleted; a mailbox with children is refused (RFC 9051 §6.3.5, RFC 5530
// HASCHILDREN).
func (s *Store) DeleteMailbox(ctx context.Context, account, name string) error {
	name, err := s.CanonicalName(name)
	if err != nil {
		return ErrNoSuchMailbox
	}
	if name == "INBOX" {
		return ErrCannot
	}
	return s.update(ctx, account, func(t *txn) error {
		boxes, err := t.mailboxes()
		if err != nil {
			return err
		}
		m, ok := findByName(boxes, name)
		if !ok {
			return ErrNoSuchMailbox
		}
		for _, c := range boxes {
			if strings.HasPrefix(c.Name, name+s.cfg.Separator) {
				return ErrHasChildren
			}
		}
		emails, err := t.emailsRange(m.ID, 1, ^uint32(0))
		if err != nil {
			return err
		}
		t.nextModSeq()
		if len(emails) > 0 {
			c := Change{Kind: ChangeEmailExpunge, Mailbox: m.ID, Time: now()}
			for _, e := range emails {
				t.deleteEmail(e)
				t.state.UsedBytes -= e.Size
				t.state.UsedMessages--
				c.UIDs = append(c.UIDs, e.UID)
				c.EmailIDs = append(c.EmailIDs, e.EmailID)
				c.Threads = append(c.Threads, e.ThreadID)
			}
			t.addChange(c)
		}
		t.deleteMailbox(m.ID)
		t.addChange(Change{Kind: ChangeMailboxDelete, Mailbox: m.ID, Time: now()})
		return nil
	})
}

const subPrefix = "sub/"

// Subscribe adds or removes name from the subscription list; names need
// not exist (RFC 9051 §6.3.7).
func (s *Store) Subscribe(ctx context.Context, account, name string, on bool) error {
	name, err := s.CanonicalName(name)
	if err != nil {
		return err
	}
	return s.update(ctx, account, func(t *txn) error {
		_, had, err := t.get(subPrefix + name)
		if err != nil || had == on {
			return err
		}
		if on {
			t.put(subPrefix+name, "1")
		} else {
			t.del(subPrefix + name)
		}
		t.nextModSeq()
		boxes, err := t.mailboxes()
		if err != nil {
			return err
		}
		if m, ok := findByName(boxes, name); ok {
			t.addChange(Change{Kind: ChangeMailboxUpdate, Mailbox: m.ID, Time: now()})
		}
		return nil
	})
}

// Subscriptions lists subscribed names.
func (s *Store) Subscriptions(ctx context.Context, account string) ([]string, error) {
	var out []string
	err := s.view(ctx, account, func(r Reader) error {
		kvs, err := r.Scan(subPrefix)
		for _, kv := range kvs {
			out = append(out, kv.Key[len(subPrefix):])
		}
		return err
	})
	return out, err
}
