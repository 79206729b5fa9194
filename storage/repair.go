package storage

import (
	"context"
	"fmt"
)

// Verify recomputes an account's derived values (mailbox counts, sizes,
// UIDNEXT and HIGHESTMODSEQ floors, quota usage) from the emails, which are
// the truth (DESIGN §2.1), and reports each mismatch. With fix it corrects
// them in one mutation while the server runs (`stoa repair`).
func (s *Store) Verify(ctx context.Context, account string, fix bool) ([]string, error) {
	var problems []string
	check := func(t *txn) error {
		problems = nil
		boxes, err := t.mailboxes()
		if err != nil {
			return err
		}
		var totalBytes, totalMsgs int64
		var maxSeq uint64
		for _, m := range boxes {
			emails, err := t.emailsRange(m.ID, 1, ^uint32(0))
			if err != nil {
				return err
			}
			var n, unseen, size int64
			var maxUID uint32
			var maxMS uint64
			for _, e := range emails {
				n++
				size += e.Size
				if !e.HasFlag(FlagSeen) {
					unseen++
				}
				maxUID = max(maxUID, e.UID)
				maxMS = max(maxMS, e.ModSeq)
			}
			totalBytes += size
			totalMsgs += n
			maxSeq = max(maxSeq, maxMS, m.HighestModSeq)
			fixed := m
			if m.Messages != n {
				problems = append(problems, fmt.Sprintf("mailbox %d %q: messages %d, counted %d", m.ID, m.Name, m.Messages, n))
				fixed.Messages = n
			}
			if m.Unseen != unseen {
				problems = append(problems, fmt.Sprintf("mailbox %d %q: unseen %d, counted %d", m.ID, m.Name, m.Unseen, unseen))
				fixed.Unseen = unseen
			}
			if m.Size != size {
				problems = append(problems, fmt.Sprintf("mailbox %d %q: size %d, counted %d", m.ID, m.Name, m.Size, size))
				fixed.Size = size
			}
			if m.UIDNext <= maxUID {
				problems = append(problems, fmt.Sprintf("mailbox %d %q: uidnext %d <= max uid %d", m.ID, m.Name, m.UIDNext, maxUID))
				fixed.UIDNext = maxUID + 1
			}
			if m.HighestModSeq < maxMS {
				problems = append(problems, fmt.Sprintf("mailbox %d %q: highestmodseq %d < %d", m.ID, m.Name, m.HighestModSeq, maxMS))
				fixed.HighestModSeq = maxMS
			}
			if fixed != m {
				t.putMailbox(fixed)
			}
		}
		if t.state.UsedBytes != totalBytes || t.state.UsedMessages != totalMsgs {
			problems = append(problems, fmt.Sprintf("usage %d bytes/%d messages, counted %d/%d",
				t.state.UsedBytes, t.state.UsedMessages, totalBytes, totalMsgs))
			t.state.UsedBytes, t.state.UsedMessages = totalBytes, totalMsgs
		}
		if t.state.ModSeq < maxSeq {
			problems = append(problems, fmt.Sprintf("account modseq %d < %d", t.state.ModSeq, maxSeq))
			t.state.ModSeq = maxSeq
		}
		return nil
	}
	if fix {
		err := s.update(ctx, account, check)
		return problems, err
	}
	err := s.view(ctx, account, func(r Reader) error {
		t, err := newTxn(r)
		if err != nil {
			return err
		}
		return check(t)
	})
	return problems, err
}
