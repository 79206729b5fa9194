package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/stoa-mail/stoa/cmd/stoa/config"
	"github.com/stoa-mail/stoa/indexer"
	"github.com/stoa-mail/stoa/indexer/opensearch"
	"github.com/stoa-mail/stoa/storage"
)

func init() {
	register(command{name: "reindex", usage: "rebuild the search index [--account A] [--rate docs/s] [--keep-old]", run: reindex})
	// With Bleve the server holds the index: run the command inside it.
	remotable["reindex"] = true
}

func reindex(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("reindex", flag.ContinueOnError)
	fs.SetOutput(out(ctx))
	acct := fs.String("account", "", "only this account (address or id)")
	rate := fs.Float64("rate", 0, "documents per second at most (0: unlimited)")
	keepOld := fs.Bool("keep-old", false, "OpenSearch: keep the previous index generation after the swap")
	quiet := fs.Bool("quiet", false, "no progress bar (for logs)")
	if _, err := splitFlags(fs, args); err != nil {
		return err
	}
	if *rate < 0 {
		return fmt.Errorf("--rate %v: documents per second, 0 for no limit", *rate)
	}
	if cfg.Index.Backend == "none" {
		return fmt.Errorf("index.backend is none: nothing to rebuild")
	}
	s, done, err := useStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer done()
	accts, err := selectAccounts(ctx, s, *acct)
	if err != nil {
		return err
	}
	total := 0
	for _, a := range accts {
		q, err := s.Quota(ctx, a.ID)
		if err != nil {
			return err
		}
		total += int(q.UsedMessages)
	}
	bar := newReindexBar(errOut(ctx), total)
	if *quiet {
		bar.w = nil
	}
	o := &indexer.RebuildOptions{Rate: *rate}

	// Inside a running server: its indexer (and Bleve index) do the work.
	if ix := liveIndexer.Load(); ix != nil && ix.Store == s {
		if cfg.Index.Backend == "opensearch" && *acct == "" {
			return fullOpenSearch(ctx, cfg, s, accts, o, bar, *keepOld)
		}
		return rebuildAll(ctx, ix, accts, o, bar)
	}
	if cfg.Index.Backend == "opensearch" && *acct == "" {
		return fullOpenSearch(ctx, cfg, s, accts, o, bar, *keepOld)
	}
	b, err := openBackend(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	return rebuildAll(ctx, &indexer.Indexer{Store: s, Backend: b, BatchSize: cfg.Index.BatchSize}, accts, o, bar)
}

func rebuildAll(ctx context.Context, ix *indexer.Indexer, accts []storage.Account, o *indexer.RebuildOptions, bar *reindexBar) error {
	for _, a := range accts {
		base := bar.done
		o.Progress = func(done, _ int) { bar.set(base + done) }
		if err := ix.Rebuild(ctx, a.ID, o); err != nil {
			return fmt.Errorf("%s: %w", a.Login, err)
		}
	}
	bar.finish()
	fmt.Fprintf(out(ctx), "reindexed %s, %s\n", plural(len(accts), "account"), plural(bar.done, "document"))
	return nil
}

// fullOpenSearch builds the next index generation beside the live one and
// swaps both aliases to it when complete: searches never see a partial
// index. Live indexers then resume from the new index's checkpoints.
func fullOpenSearch(ctx context.Context, cfg config.Config, s *storage.Store, accts []storage.Account, o *indexer.RebuildOptions, bar *reindexBar, keepOld bool) error {
	cur, err := opensearch.Open(ctx, osConfig(cfg))
	if err != nil {
		return err
	}
	defer cur.Close()
	old, next, err := cur.NextGeneration(ctx)
	if err != nil {
		return err
	}
	nc := osConfig(cfg)
	nc.Index = next
	nb, err := opensearch.Open(ctx, nc)
	if err != nil {
		return err
	}
	defer nb.Close()
	fmt.Fprintf(errOut(ctx), "building %s beside %s\n", next, old)
	if err := rebuildAll(ctx, &indexer.Indexer{Store: s, Backend: nb, BatchSize: cfg.Index.BatchSize}, accts, o, bar); err != nil {
		return err
	}
	if err := nb.Refresh(ctx); err != nil {
		return err
	}
	if err := cur.SwapAliases(ctx, next); err != nil {
		return err
	}
	fmt.Fprintf(out(ctx), "aliases now point at %s\n", next)
	if !keepOld {
		return cur.DeleteIndex(ctx, old)
	}
	return nil
}

// reindexBar draws a one-line bar on w (stderr), at most 5 times a second.
type reindexBar struct {
	mu    sync.Mutex
	w     io.Writer
	total int
	done  int
	start time.Time
	last  time.Time
}

func newReindexBar(w io.Writer, total int) *reindexBar {
	return &reindexBar{w: w, total: total, start: time.Now()}
}

func (p *reindexBar) set(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = n
	if time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.draw()
}

func (p *reindexBar) draw() {
	if p.w == nil {
		return
	}
	// Mail delivered during the rebuild is indexed too: the total grows.
	p.total = max(p.total, p.done)
	const width = 30
	frac := 1.0
	if p.total > 0 {
		frac = min(float64(p.done)/float64(p.total), 1)
	}
	fill := int(frac * width)
	bar := make([]byte, width)
	for i := range bar {
		if i < fill {
			bar[i] = '='
		} else {
			bar[i] = ' '
		}
	}
	rate := float64(p.done) / max(time.Since(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\r[%s] %d/%d %5.1f%% %.0f docs/s", bar, p.done, p.total, frac*100, rate)
}

func (p *reindexBar) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.w != nil {
		p.draw()
		fmt.Fprintln(p.w)
	}
}
