package embedded_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/embedded"
)

func benchStore(b *testing.B) *storage.Store {
	e, err := embedded.Open(b.TempDir(), embedded.Options{NoSync: os.Getenv("BENCH_NOSYNC") != ""})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return storage.New(e, storage.Config{PasswordCost: storage.PasswordCost{Time: 1, MemoryK: 64, Threads: 1}})
}

var seq atomic.Int64

// msg4k is a unique message of about 4 KiB.
func msg4k() []byte {
	n := seq.Add(1)
	body := strings.Repeat("The quick brown fox jumps over the lazy dog. 0123456789\r\n", 70)
	return []byte(fmt.Sprintf("From: a@example.org\r\nTo: b@example.test\r\nSubject: bench %d\r\nMessage-ID: <b%d.%d@example.org>\r\n\r\n%s", n, n, time.Now().UnixNano(), body))
}

// writers sets 8 concurrent goroutines for RunParallel on any core count.
func writers(b *testing.B) {
	p := 8 / runtime.GOMAXPROCS(0)
	if p < 1 {
		p = 1
	}
	b.SetParallelism(p)
}

// BenchmarkDeliverDistinct: durable deliveries of 4 KiB messages, 8
// writers, each to its own account.
func BenchmarkDeliverDistinct(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	var accts []string
	for i := 0; i < 64; i++ {
		a, err := s.AddAccount(ctx, fmt.Sprintf("u%d@example.test", i), "", storage.AccountOptions{})
		if err != nil {
			b.Fatal(err)
		}
		accts = append(accts, a.ID)
	}
	var next atomic.Int64
	writers(b)
	b.SetBytes(4096)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		a := accts[next.Add(1)%int64(len(accts))]
		for pb.Next() {
			res, err := s.Deliver(ctx, storage.Delivery{Raw: msg4k(), Targets: []storage.Target{{Account: a}}})
			if err != nil || res[0].Err != nil {
				b.Fatal(err, res)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkDeliverOneMailbox: 8 writers into one INBOX.
func BenchmarkDeliverOneMailbox(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	a, err := s.AddAccount(ctx, "one@example.test", "", storage.AccountOptions{})
	if err != nil {
		b.Fatal(err)
	}
	writers(b)
	b.SetBytes(4096)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := s.Deliver(ctx, storage.Delivery{Raw: msg4k(), Targets: []storage.Target{{Account: a.ID}}})
			if err != nil || res[0].Err != nil {
				b.Fatal(err, res)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

func filled(b *testing.B, n int) (*storage.Store, string, uint32) {
	s := benchStore(b)
	ctx := context.Background()
	a, err := s.AddAccount(ctx, "fill@example.test", "", storage.AccountOptions{})
	if err != nil {
		b.Fatal(err)
	}
	in, _ := s.MailboxByName(ctx, a.ID, "INBOX")
	for i := 0; i < n; i++ {
		if _, err := s.Append(ctx, a.ID, in.ID, msg4k(), nil, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	return s, a.ID, in.ID
}

// BenchmarkStoreFlags: one STORE +FLAGS on one message, sequentially.
func BenchmarkStoreFlags(b *testing.B) {
	s, a, mb := filled(b, 1000)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		op := storage.FlagsAdd
		if i%2 == 1 {
			op = storage.FlagsRemove
		}
		if _, err := s.StoreFlags(ctx, a, mb, []uint32{uint32(i%1000) + 1}, op, []string{storage.FlagSeen}, storage.StoreOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "stores/s")
}

// BenchmarkFetch1000Envelopes: UIDs 1:1000 with their stored envelopes.
func BenchmarkFetch1000Envelopes(b *testing.B) {
	s, a, mb := filled(b, 1000)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		es, err := s.Emails(ctx, a, mb, 1, 1000, 0)
		if err != nil || len(es) != 1000 {
			b.Fatal(err, len(es))
		}
		for _, e := range es {
			m, err := s.Meta(ctx, e.BlobID)
			if err != nil || m.Envelope.Subject == "" {
				b.Fatal(err)
			}
		}
	}
}
