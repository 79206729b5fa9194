package storage

import (
	"context"
	"errors"
	"time"
)

// ActivityRetention is how long engines keep activity notes (ADR 0009).
const ActivityRetention = 24 * time.Hour

// ErrActivityTruncated means the feed no longer reaches back to since:
// the reader must look at every account instead.
var ErrActivityTruncated = errors.New("storage: activity feed no longer reaches that far back")

// activityFlush is how often noted accounts are written (Config.ActivityFlush).
func (c *Config) activityFlush() time.Duration {
	if c.ActivityFlush > 0 {
		return c.ActivityFlush
	}
	return 100 * time.Millisecond
}

// noteActivity queues account for the activity feed. Notes are coalesced
// and written by one goroutine every Config.ActivityFlush, after the
// commits they describe, so a mutation never waits for them. A process
// that dies before the write loses at most that interval of notes: the
// indexer's periodic sweep of every account finds those changes.
func (s *Store) noteActivity(account string) {
	s.actMu.Lock()
	defer s.actMu.Unlock()
	if s.actClosed {
		return
	}
	if s.actPending == nil {
		s.actPending = map[string]struct{}{}
	}
	s.actPending[account] = struct{}{}
	if s.actStop == nil {
		s.actStop, s.actDone = make(chan struct{}), make(chan struct{})
		go s.activityLoop(s.actStop, s.actDone)
	}
}

func (s *Store) activityLoop(stop, done chan struct{}) {
	defer close(done)
	defer func() {
		s.actMu.Lock()
		s.actClosed = true
		s.actMu.Unlock()
	}()
	t := time.NewTicker(s.cfg.activityFlush())
	defer t.Stop()
	for {
		select {
		case <-stop:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = s.FlushActivity(ctx)
			cancel()
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := s.FlushActivity(ctx)
			cancel()
			if errors.Is(err, ErrClosed) {
				return // the engine was closed under the Store
			} else if err != nil {
				s.cfg.Logger.Warn("storage: activity feed write failed; retrying", "err", err)
			}
		}
	}
}

// FlushActivity writes the queued activity notes now. Accounts whose
// write fails stay queued for the next flush.
func (s *Store) FlushActivity(ctx context.Context) error {
	s.actMu.Lock()
	pending := s.actPending
	s.actPending = nil
	s.actMu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	accts := make([]string, 0, len(pending))
	for a := range pending {
		accts = append(accts, a)
	}
	err := s.eng.NoteActivity(ctx, time.Now().UTC(), accts)
	if err != nil {
		s.actMu.Lock()
		if s.actPending == nil {
			s.actPending = pending
		} else {
			for a := range pending {
				s.actPending[a] = struct{}{}
			}
		}
		s.actMu.Unlock()
	}
	return err
}

// Activity calls fn for every account noted in the feed at or after since
// (ADR 0009): an account may come more than once. Notes are written up to
// Config.ActivityFlush after the commit, with the writer's clock, so a
// reader re-reads a margin before the time it read up to last.
func (s *Store) Activity(ctx context.Context, since time.Time, fn func(account string, at time.Time) error) error {
	if time.Since(since) > ActivityRetention {
		return ErrActivityTruncated
	}
	return s.eng.Activity(ctx, since, fn)
}

// stopActivity flushes the queued notes and stops the writer.
func (s *Store) stopActivity() {
	s.actMu.Lock()
	s.actClosed = true
	stop, done := s.actStop, s.actDone
	s.actMu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}
