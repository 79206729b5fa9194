package storage_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/embedded"
)

// The activity writer runs only while there is something to write, and
// stops when the engine is closed under its Store (tests and tools close
// engines directly).
func TestActivityWriterStops(t *testing.T) {
	ctx := context.Background()
	settle := func(want int) int {
		var n int
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if n = runtime.NumGoroutine(); n <= want {
				break
			}
		}
		return n
	}
	base := runtime.NumGoroutine()
	for i := 0; i < 5; i++ {
		e, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		s := storage.New(e, storage.Config{PasswordCost: storage.PasswordCost{Time: 1, MemoryK: 64, Threads: 1},
			ActivityFlush: 5 * time.Millisecond})
		a, err := s.AddAccount(ctx, "w@example.test", "", storage.AccountOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			time.Sleep(50 * time.Millisecond) // written, then idle
		}
		if _, err := s.CreateMailbox(ctx, a.ID, "More", ""); err != nil {
			t.Fatal(err)
		}
		e.Close() // under the Store, maybe with notes queued
	}
	if n := settle(base); n > base {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines left, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}
