package cassandra

import (
	"context"
	"errors"
	"time"

	"github.com/gocql/gocql"
	"golang.org/x/sync/errgroup"

	"github.com/stoa-mail/stoa/storage"
)

// Activity feed (ADR 0009): account_activity rows partitioned by
// (minute, shard), expiring by TTL in hourly TWCS windows, so the feed
// never needs a delete. A flush writes one unlogged single-partition batch
// per shard it touches; a read of a minute is activityShards queries.
const activityShards = 16

// NoteActivity implements storage.Engine.
func (e *Engine) NoteActivity(ctx context.Context, writer string, at time.Time, accounts []string) error {
	if e.closing.Load() {
		return storage.ErrClosed
	}
	minute := at.Unix() / 60
	byShard := map[int][]gocql.BatchEntry{}
	for _, a := range accounts {
		sh := hashPart(a, activityShards)
		byShard[sh] = append(byShard[sh], gocql.BatchEntry{
			Stmt:       `INSERT INTO account_activity (minute, shard, at, writer, account) VALUES (?, ?, ?, ?, ?)`,
			Args:       []any{minute, sh, at, writer, a},
			Idempotent: true,
		})
	}
	g, ctx := errgroup.WithContext(ctx)
	for _, entries := range byShard {
		g.Go(func() error {
			for len(entries) > 0 { // batches of at most 100 rows
				n := min(len(entries), 100)
				b := e.local.s.Batch(gocql.UnloggedBatch).WithContext(ctx)
				b.SetConsistency(e.cons)
				b.Entries = entries[:n]
				entries = entries[n:]
				if err := b.Exec(); errors.Is(err, gocql.ErrSessionClosed) {
					return storage.ErrClosed
				} else if err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// Activity implements storage.Engine: every shard of every minute from
// since's to now's, and the next (a writer whose clock is ahead by more
// than that is late in the feed: ADR 0009 asks for synchronised clocks).
func (e *Engine) Activity(ctx context.Context, since time.Time, fn func(storage.ActivityNote) error) error {
	if time.Since(since) > storage.ActivityRetention {
		return storage.ErrActivityTruncated
	}
	if e.closing.Load() {
		return storage.ErrClosed
	}
	last := time.Now().Unix()/60 + 1
	for m := since.Unix() / 60; m <= last; m++ {
		var res [activityShards][]storage.ActivityNote
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(8)
		for sh := range activityShards {
			g.Go(func() error {
				it := e.local.q(gctx, `SELECT account, at, writer FROM account_activity WHERE minute = ? AND shard = ? AND at >= ?`,
					m, sh, since).Consistency(e.cons).PageSize(5000).Iter()
				var n storage.ActivityNote
				for it.Scan(&n.Account, &n.At, &n.Writer) {
					res[sh] = append(res[sh], n)
				}
				return it.Close()
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		for _, ns := range res {
			for _, n := range ns {
				if err := fn(n); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
