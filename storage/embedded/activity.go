package embedded

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/stoa-mail/stoa/storage"
)

// Activity feed (ADR 0009): keys act/<be64 unix ms>/<accountID>, empty
// values, written without sync (a lost note is found by the indexer's
// sweep). Notes older than storage.ActivityRetention are dropped with one
// range delete, at most once a minute.

var actPrefix = []byte("act/")

func actKey(at time.Time, account string) []byte {
	b := append([]byte(nil), actPrefix...)
	b = binary.BigEndian.AppendUint64(b, uint64(max(at.UnixMilli(), 0)))
	b = append(b, '/')
	return append(b, account...)
}

type actTrim struct {
	mu   sync.Mutex
	last time.Time
}

// NoteActivity implements storage.Engine.
func (e *Engine) NoteActivity(ctx context.Context, at time.Time, accounts []string) error {
	e.closeMu.RLock()
	defer e.closeMu.RUnlock()
	if e.closed {
		return storage.ErrClosed
	}
	b := e.db.NewBatch()
	defer b.Close()
	for _, a := range accounts {
		if err := b.Set(actKey(at, a), nil, nil); err != nil {
			return err
		}
	}
	e.trim.mu.Lock()
	if time.Since(e.trim.last) > time.Minute {
		e.trim.last = time.Now()
		if err := b.DeleteRange(actPrefix, actKey(at.Add(-storage.ActivityRetention), ""), nil); err != nil {
			e.trim.mu.Unlock()
			return err
		}
	}
	e.trim.mu.Unlock()
	return b.Commit(pebble.NoSync)
}

// Activity implements storage.Engine.
func (e *Engine) Activity(ctx context.Context, since time.Time, fn func(account string, at time.Time) error) error {
	e.closeMu.RLock()
	defer e.closeMu.RUnlock()
	if e.closed {
		return storage.ErrClosed
	}
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: actKey(since, ""), UpperBound: prefixEnd(actPrefix)})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		key := it.Key()[len(actPrefix):]
		if len(key) < 9 {
			continue
		}
		at := time.UnixMilli(int64(binary.BigEndian.Uint64(key))).UTC()
		if err := fn(string(key[9:]), at); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}
