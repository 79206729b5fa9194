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

// ActivityNote says that Account committed changes at about At; Writer
// is the Store that wrote the note, so that two notes of one account made
// in the same millisecond by two processes stay two notes.
type ActivityNote struct {
	Account string
	At      time.Time // millisecond precision
	Writer  string
}

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
// indexer's periodic sweep of every account finds those changes. The
// goroutine runs while there is something to write.
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
	t := time.NewTicker(s.cfg.activityFlush())
	defer t.Stop()
	var lastWarn time.Time
	for {
		select {
		case <-stop: // Close: write what is left
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := s.FlushActivity(ctx); err != nil && !errors.Is(err, ErrClosed) {
				s.cfg.Logger.Warn("storage: activity notes not written at close; the indexer's sweep will find those changes", "err", err)
			}
			cancel()
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.FlushActivity(ctx)
		cancel()
		s.actMu.Lock()
		if errors.Is(err, ErrClosed) {
			s.actClosed = true // the engine was closed under the Store
		}
		exit := s.actClosed || (err == nil && len(s.actPending) == 0)
		if exit && s.actStop == stop { // idle: the next note starts a new loop
			s.actStop, s.actDone = nil, nil
		} else {
			exit = false // Close took this loop over: it waits for stop
		}
		s.actMu.Unlock()
		if exit {
			return
		}
		if err != nil && !errors.Is(err, ErrClosed) && time.Since(lastWarn) > time.Minute {
			lastWarn = time.Now()
			s.cfg.Logger.Warn("storage: activity feed write failed; retrying", "err", err)
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
	err := s.eng.NoteActivity(ctx, s.writer, time.Now().UTC(), accts)
	if err != nil && !errors.Is(err, ErrClosed) {
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

// Activity calls fn for every note in the feed made at or after since
// (ADR 0009): an account may come more than once. Notes are written up to
// Config.ActivityFlush after the commit, with the writer's clock, so a
// reader re-reads a margin before the time it read up to last.
func (s *Store) Activity(ctx context.Context, since time.Time, fn func(ActivityNote) error) error {
	if time.Since(since) > ActivityRetention {
		return ErrActivityTruncated
	}
	return s.eng.Activity(ctx, since, fn)
}

// stopActivity writes the queued notes and stops the writer; later notes
// are dropped. Safe to call more than once.
func (s *Store) stopActivity() {
	s.actMu.Lock()
	s.actClosed = true
	stop, done := s.actStop, s.actDone
	s.actStop, s.actDone = nil, nil
	s.actMu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}
