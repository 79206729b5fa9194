package indexer_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stoa-mail/stoa/indexer"
	"github.com/stoa-mail/stoa/indexer/bleve"
	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/embedded"
)

// BenchmarkSearchUnindexedKeys: a SEARCH with 8 text keys over 120
// unindexed 60 KB messages (a bulk APPEND the indexer has not reached).
// "fresh" gives each key a new Searcher, so each analyses every message
// again (the cost before the cache); "shared" is one Searcher, as the
// server has. go test ./indexer/ -run '^$' -bench SearchUnindexedKeys -benchtime 1x
func BenchmarkSearchUnindexedKeys(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	eng, err := embedded.Open(filepath.Join(dir, "db"), embedded.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	st := storage.New(eng, storage.Config{PasswordCost: cost})
	defer st.Close()
	a, _ := st.AddAccount(ctx, "bench@example.test", "", storage.AccountOptions{})
	inbox, _ := st.MailboxByName(ctx, a.ID, "INBOX")
	words := strings.Fields("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon")
	for i := 0; i < 120; i++ {
		var m strings.Builder
		fmt.Fprintf(&m, "Subject: m%d\r\n\r\n", i)
		for m.Len() < 60000 {
			m.WriteString(words[(m.Len()*7+i)%len(words)] + " ")
			if m.Len()%70 < 8 {
				m.WriteString("\r\n")
			}
		}
		if _, err := st.Append(ctx, a.ID, inbox.ID, []byte(m.String()), nil, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	x, err := bleve.Open(filepath.Join(dir, "index")) // empty: nothing indexed yet
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	run := func(name string, perKey bool) {
		b.Run(name, func(b *testing.B) {
			for n := 0; n < b.N; n++ {
				se := &indexer.Searcher{Store: st, Backend: x}
				t0 := time.Now()
				for k := 0; k < 8; k++ {
					if perKey {
						se = &indexer.Searcher{Store: st, Backend: x}
					}
					if _, err := se.Search(ctx, a.ID, inbox.ID, indexer.Text(words[k]+"x")); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(time.Since(t0).Seconds(), "s/8-keys")
			}
		})
	}
	run("fresh", true)
	run("shared", false)
}

// BenchmarkFlagChangeMemory: STORE 1:* on 2,000 messages of 50 KB of text
// is one change record listing every UID; it reports the peak Go heap
// while the indexer writes it to Bleve. 2026-12-04, 2 cores: chunks of
// 1 MiB 235 MB in 49 s, of 4 MiB 688 MB in 50 s, one batch (before) 4,709
// MB in 26 s. Re-run:
// go test ./indexer/ -run '^$' -bench FlagChangeMemory -benchtime 1x
func BenchmarkFlagChangeMemory(b *testing.B) {
	ctx := context.Background()
	eng, x := openEngineIndex(b)
	st := storage.New(eng, storage.Config{PasswordCost: cost})
	defer func() { x.Close(); st.Close() }()
	a, _ := st.AddAccount(ctx, "bench@example.test", "", storage.AccountOptions{})
	inbox, _ := st.MailboxByName(ctx, a.ID, "INBOX")
	var uids []uint32
	for i := 0; i < 2000; i++ {
		var m strings.Builder
		fmt.Fprintf(&m, "Subject: m%d\r\n\r\n", i)
		for j := 0; m.Len() < 50000; j++ {
			fmt.Fprintf(&m, "w%dx%d ", (i*31+j)%5000, j%97)
			if j%10 == 9 {
				m.WriteString("\r\n")
			}
		}
		r, err := st.Append(ctx, a.ID, inbox.ID, []byte(m.String()), nil, time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		uids = append(uids, r.UID)
	}
	ix := &indexer.Indexer{Store: st, Backend: x}
	if err := ix.Sync(ctx, a.ID); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		op := storage.FlagsAdd
		if n%2 == 1 {
			op = storage.FlagsRemove
		}
		if _, err := st.StoreFlags(ctx, a.ID, inbox.ID, uids, op, []string{`\Seen`}, storage.StoreOptions{}); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var peak atomic.Uint64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() { // sample the live heap every 5 ms while Sync runs
			defer close(sampled)
			s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
			for {
				metrics.Read(s)
				if v := s[0].Value.Uint64(); v > peak.Load() {
					peak.Store(v)
				}
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}()
		if err := ix.Sync(ctx, a.ID); err != nil {
			b.Fatal(err)
		}
		close(stop)
		<-sampled
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
	}
}
