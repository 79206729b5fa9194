package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/stoa-mail/stoa/storage"
)

// Activity feed (ADR 0009): keys act/<be64 unix ms>/<writer>/<accountID>,
// empty values, written without sync (a lost note is found by the
// indexer's sweep). Notes older than storage.ActivityRetention are dropped
// with one range delete, at most once a minute.

var actPrefix = []byte("act/")

func actKey(at time.Time, writer, account string) []byte {
	b := append([]byte(nil), actPrefix...)
	b = binary.BigEndian.AppendUint64(b, uint64(max(at.UnixMilli(), 0)))
	if writer == "" && account == "" {
		return b // a time bound
	}
	b = append(b, '/')
	b = append(b, writer...)
	b = append(b, '/')
	return append(b, account...)
}

type actTrim struct {
	mu   sync.Mutex
	last time.Time
}

// NoteActivity implements storage.Engine.
func (e *Engine) NoteActivity(ctx context.Context, writer string, at time.Time, accounts []string) error {
	e.closeMu.RLock()
	defer e.closeMu.RUnlock()
	if e.closed {
		return storage.ErrClosed
	}
	b := e.db.NewBatch()
	defer b.Close()
	for _, a := range accounts {
		if err := b.Set(actKey(at, writer, a), nil, nil); err != nil {
			return err
		}
	}
	e.trim.mu.Lock()
	if time.Since(e.trim.last) > time.Minute {
		e.trim.last = time.Now()
		if err := b.DeleteRange(actPrefix, actKey(at.Add(-storage.ActivityRetention), "", ""), nil); err != nil {
			e.trim.mu.Unlock()
			return err
		}
	}
	e.trim.mu.Unlock()
	return b.Commit(pebble.NoSync)
}

// Activity implements storage.Engine.
func (e *Engine) Activity(ctx context.Context, since time.Time, fn func(storage.ActivityNote) error) error {
	if time.Since(since) > storage.ActivityRetention {
		return storage.ErrActivityTruncated
	}
	e.closeMu.RLock()
	defer e.closeMu.RUnlock()
	if e.closed {
		return storage.ErrClosed
	}
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: actKey(since, "", ""), UpperBound: prefixEnd(actPrefix)})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		key := it.Key()[len(actPrefix):]
		if len(key) < 10 || key[8] != '/' {
			continue
		}
		rest := key[9:]
		i := bytes.IndexByte(rest, '/')
		if i < 0 {
			continue
		}
		n := storage.ActivityNote{At: time.UnixMilli(int64(binary.BigEndian.Uint64(key))).UTC(),
			Writer: string(rest[:i]), Account: string(rest[i+1:])}
		if err := fn(n); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}
