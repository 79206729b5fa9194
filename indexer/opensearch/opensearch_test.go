package opensearch

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stoa-mail/stoa/indexer"
	"github.com/stoa-mail/stoa/indexer/indexertest"
	"github.com/stoa-mail/stoa/integration/testenv"
	"github.com/stoa-mail/stoa/storage"
)

// open gives each test its own prefix and deletes its indices afterwards.
func open(t *testing.T) *Index {
	url := testenv.OpenSearch(t)
	cfg := Config{URLs: []string{url}, Prefix: fmt.Sprintf("stoatest%d", time.Now().UnixNano()), Replicas: 0, FlushInterval: 50 * time.Millisecond}
	x, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		x.Close()
		x.do(context.Background(), "DELETE", "/"+cfg.base()+"-v*", nil, nil, 404)
		x.do(context.Background(), "DELETE", "/_index_template/"+cfg.base(), nil, nil, 404)
	})
	return x
}

func TestContract(t *testing.T) {
	var cur *Index
	indexertest.Run(t, indexertest.Harness{
		Open: func(t *testing.T) indexer.Backend {
			cur = open(t)
			x := cur
			t.Cleanup(func() {
				if x.noScripts.Load() {
					t.Error("searches fell back to paging through hits: the UID-set script was refused")
				}
			})
			return cur
		},
		Refresh: func(t *testing.T) {
			if err := cur.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// TestGenerationSwap rebuilds into the next generation and swaps the
// aliases, as `stoa reindex` does, while the old one stays searchable.
func TestGenerationSwap(t *testing.T) {
	x := open(t)
	s := indexertest.NewStore(t)
	a, err := s.AddAccount(context.Background(), "swap@example.org", "", storage.AccountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := s.MailboxByName(context.Background(), a.ID, "INBOX")
	r, err := s.Append(context.Background(), a.ID, mb.ID, []byte("Subject: swap test\r\n\r\nkumquat\r\n"), nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ix := &indexer.Indexer{Store: s, Backend: x}
	if err := ix.Sync(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	old, next, err := x.NextGeneration(ctx)
	if err != nil || next != x.cfg.Generation(2) || old != x.cfg.Generation(1) {
		t.Fatalf("generations %q %q %v", old, next, err)
	}
	nc := x.cfg
	nc.Index = next
	nb, err := Open(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	if err := (&indexer.Indexer{Store: s, Backend: nb}).Rebuild(ctx, a.ID, nil); err != nil {
		t.Fatal(err)
	}
	nb.Refresh(ctx)
	if err := x.SwapAliases(ctx, next); err != nil {
		t.Fatal(err)
	}
	if got, _ := x.aliasTarget(ctx, x.cfg.ReadAlias()); got != next {
		t.Fatalf("read alias -> %q", got)
	}
	uids, cp, err := x.Search(ctx, a.ID, mb.ID, indexer.Text("kumquat"))
	if err != nil || len(uids) != 1 || uids[0] != r.UID || cp == 0 {
		t.Fatalf("after swap: %v cp %d %v", uids, cp, err)
	}
	if err := x.DeleteIndex(ctx, old); err != nil {
		t.Fatal(err)
	}
}

// TestScriptRefused: a cluster that refuses the UID-set script (here: an
// unknown script language) is searched by paging through hits, with the
// same results, including more hits than one page.
func TestScriptRefused(t *testing.T) {
	scriptLang = "stoa-no-such-language"
	defer func() { scriptLang = "painless" }()
	var cur *Index
	indexertest.LargeResults(t, indexertest.Harness{
		Open: func(t *testing.T) indexer.Backend { cur = open(t); return cur },
		Refresh: func(t *testing.T) {
			if err := cur.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
		},
	})
	if !cur.noScripts.Load() {
		t.Error("the refused script did not switch searches to paging")
	}
}

// TestNoScriptsConfig: NoScripts pages from the start.
func TestNoScriptsConfig(t *testing.T) {
	x := open(t)
	x.noScripts.Store(true)
	indexertest.LargeResults(t, indexertest.Harness{
		Open: func(t *testing.T) indexer.Backend { return x },
		Refresh: func(t *testing.T) {
			if err := x.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
		},
	})
}

func TestDecodeUIDSet(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []uint32
		bad  bool
	}{
		{"", nil, false},
		{"AQEB", []uint32{1, 2, 3}, false},       // gaps 1,1,1
		{"gAEB", []uint32{128, 129}, false},      // 0x80 0x01 = 128
		{"/////w8=", []uint32{1<<32 - 1}, false}, // the largest UID
		{"gICAgBA=", nil, true},                  // 2^32: out of range
		{"gA==", nil, true},                      // truncated varint
		{"!!", nil, true},                        // not base64
		{"Bf///////////wE=", nil, true},          // a gap that wraps around
		{"BQA=", nil, true},                      // a UID twice
	} {
		got, err := decodeUIDSet(nil, c.in)
		if (err != nil) != c.bad || fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("decodeUIDSet(%q) = %v, %v; want %v (error %v)", c.in, got, err, c.want, c.bad)
		}
	}
}

// FuzzDecodeUIDSet: whatever the server sends, decoding fails cleanly or
// yields strictly ascending UIDs.
func FuzzDecodeUIDSet(f *testing.F) {
	for _, s := range []string{"", "AQEB", "gAEB", "/////w8=", "gICAgBA=", "Bf///////////wE=", "BQA="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := decodeUIDSet(nil, s)
		if err != nil {
			return
		}
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Fatalf("UIDs not strictly ascending: %v", got)
			}
		}
	})
}
