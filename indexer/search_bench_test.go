package indexer_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
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
