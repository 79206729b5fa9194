package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stoa-mail/stoa/cmd/stoa/config"
	"github.com/stoa-mail/stoa/cmd/stoa/importer"
	"github.com/stoa-mail/stoa/storage"
)

func init() {
	register(command{name: "import", usage: "import an mbox file or a Maildir: import --account A [--mailbox M] PATH", run: importCmd})
}

func importCmd(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(out(ctx))
	acct := fs.String("account", "", "account address (required)")
	mbox := fs.String("mailbox", "INBOX", "target mailbox for an mbox file")
	workers := fs.Int("workers", 8, "parallel deliveries")
	quiet := fs.Bool("quiet", false, "no progress bar")
	pos, err := splitFlags(fs, args)
	if err != nil {
		return err
	}
	if *acct == "" || len(pos) != 1 {
		return fmt.Errorf("usage: stoa import --account ADDRESS [--mailbox NAME] PATH")
	}
	path, err := absPath(ctx, pos[0])
	if err != nil {
		return err
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() && mailboxSet(fs) {
		return fmt.Errorf("--mailbox applies to an mbox file; a Maildir's folders keep their names (%s)", path)
	}
	s, done, err := useStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer done()
	a, err := s.AccountByAddress(ctx, *acct)
	if err != nil {
		return fmt.Errorf("account %s: %w", *acct, err)
	}
	// Mailboxes are created on first use; the map caches their ids.
	var mu sync.Mutex
	ids := map[string]uint32{}
	mailboxID := func(name string) (uint32, error) {
		mu.Lock()
		defer mu.Unlock()
		if id, ok := ids[name]; ok {
			return id, nil
		}
		m, err := s.MailboxByName(ctx, a.ID, name)
		if errors.Is(err, storage.ErrNoSuchMailbox) {
			m, err = s.CreateMailbox(ctx, a.ID, name, "")
		}
		if err != nil {
			return 0, err
		}
		ids[name] = m.ID
		return m.ID, nil
	}
	// The delivery id is the message's content (less the Status: fields
	// mail clients rewrite) and target, and how many
	// identical messages came before it in this source: running the import
	// again — also after the source gained or lost messages, or from a copy
	// at another path — adds only what is not there yet, and two identical
	// messages in one source stay two. (The Cassandra engine forgets
	// delivery ids after cassandra.dedupe_ttl, 30 days by default.)
	seen := map[[32]byte]int{}
	deliveryID := func(m importer.Message) string {
		h := sha256.New()
		h.Write([]byte(a.ID + "\x00" + m.Mailbox + "\x00"))
		h.Write(importer.Identity(m.Raw)) // a message read in a mail client since is the same message
		var k [32]byte
		h.Sum(k[:0])
		seen[k]++
		return fmt.Sprintf("import:%s:%d", hex.EncodeToString(k[:12]), seen[k])
	}
	type job struct {
		id string
		m  importer.Message
	}
	jobs := make(chan job, 64)
	var imported, skipped, dup atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				id, err := mailboxID(j.m.Mailbox)
				if err == nil {
					var res []storage.Delivered
					res, err = s.Deliver(ctx, storage.Delivery{ID: j.id, Raw: j.m.Raw, InternalDate: j.m.Date,
						Targets: []storage.Target{{Account: a.ID, Mailbox: id, Flags: j.m.Flags}}})
					if err == nil {
						err = res[0].Err
						if res[0].Duplicate {
							dup.Add(1)
						}
					}
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					continue
				}
				imported.Add(1)
			}
		}()
	}
	start := time.Now()
	stopBar := make(chan struct{})
	barDone := make(chan struct{})
	go func() {
		defer close(barDone)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopBar:
				return
			case <-t.C:
				if !*quiet {
					progress(errOut(ctx), imported.Load(), start)
				}
			}
		}
	}()
	emit := func(m importer.Message, err error) error {
		if errors.Is(err, importer.ErrTooLarge) {
			skipped.Add(1)
			return nil
		} else if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		jobs <- job{deliveryID(m), m}
		return nil
	}
	if st.IsDir() {
		err = importer.Maildir(path, s.Config().Separator, emit)
	} else {
		var f *os.File
		if f, err = os.Open(path); err == nil {
			err = importer.Mbox(f, *mbox, emit)
			f.Close()
		}
	}
	close(jobs)
	wg.Wait()
	close(stopBar)
	<-barDone
	if !*quiet {
		progress(errOut(ctx), imported.Load(), start)
		fmt.Fprintln(errOut(ctx))
	}
	if err == nil && imported.Load()+skipped.Load() == 0 && firstErr == nil && st.Size() > 0 && !st.IsDir() {
		return fmt.Errorf("no messages found in %s: an mbox file starts with a \"From \" line", path)
	}
	fmt.Fprintf(out(ctx), "imported %s (%d already imported, %d too large skipped) into %s in %s\n",
		plural(int(imported.Load()-dup.Load()), "message"), dup.Load(), skipped.Load(), a.Login, time.Since(start).Round(time.Millisecond))
	if err != nil {
		return err
	}
	return firstErr
}

func progress(w io.Writer, n int64, start time.Time) {
	el := time.Since(start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(n) / el
	}
	// The total is not known before the source is read: a count, no bar.
	fmt.Fprintf(w, "\r%d messages  %.0f msg/s ", n, rate)
}

// mailboxSet says whether --mailbox was given.
func mailboxSet(fs *flag.FlagSet) (set bool) {
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "mailbox" })
	return set
}
