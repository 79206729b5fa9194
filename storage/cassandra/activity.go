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
func (e *Engine) NoteActivity(ctx context.Context, at time.Time, accounts []string) error {
	if e.closing.Load() {
		return storage.ErrClosed
	}
	minute := at.Unix() / 60
	byShard := map[int][]gocql.BatchEntry{}
	for _, a := range accounts {
		sh := hashPart(a, activityShards)
		byShard[sh] = append(byShard[sh], gocql.BatchEntry{
			Stmt:       `INSERT INTO account_activity (minute, shard, at, account) VALUES (?, ?, ?, ?)`,
			Args:       []any{minute, sh, at, a},
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
// since's to now's (and the next, for writers whose clock is ahead).
func (e *Engine) Activity(ctx context.Context, since time.Time, fn func(account string, at time.Time) error) error {
	if time.Since(since) > storage.ActivityRetention {
		return storage.ErrActivityTruncated
	}
	type note struct {
		acct string
		at   time.Time
	}
	last := time.Now().Unix()/60 + 1
	for m := since.Unix() / 60; m <= last; m++ {
		var res [activityShards][]note
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(8)
		for sh := range activityShards {
			g.Go(func() error {
				it := e.local.q(gctx, `SELECT account, at FROM account_activity WHERE minute = ? AND shard = ? AND at >= ?`,
					m, sh, since).Consistency(e.cons).PageSize(5000).Iter()
				var a string
				var at time.Time
				for it.Scan(&a, &at) {
					res[sh] = append(res[sh], note{a, at})
				}
				return it.Close()
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		for _, ns := range res {
			for _, n := range ns {
				if err := fn(n.acct, n.at); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
