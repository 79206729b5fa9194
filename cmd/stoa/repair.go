package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/stoa-mail/stoa/cmd/stoa/config"
	"github.com/stoa-mail/stoa/storage"
)

func init() {
	register(command{name: "repair", usage: "verify counts and derived records and correct them [--account A] [--fix=false: only report]", run: repair})
	register(command{name: "migrate", usage: "create or upgrade the storage schema", run: migrate})
	register(command{name: "gc", usage: "delete message blobs nothing references", run: gc})
}

func repair(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("repair", flag.ContinueOnError)
	fs.SetOutput(out(ctx))
	acct := fs.String("account", "", "only this account (address or id)")
	fix := fs.Bool("fix", true, "correct what is wrong (false: report only)")
	if _, err := splitFlags(fs, args); err != nil {
		return err
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
	bad := 0
	for _, a := range accts {
		p, err := s.Verify(ctx, a.ID, *fix)
		if err != nil {
			return fmt.Errorf("%s: %w", a.Login, err)
		}
		for _, x := range p {
			fmt.Fprintf(out(ctx), "%s: %s\n", a.Login, x)
		}
		bad += len(p)
	}
	verb := "found"
	if *fix {
		verb = "fixed"
	}
	fmt.Fprintf(out(ctx), "%s checked, %s %s\n", plural(len(accts), "account"), plural(bad, "problem"), verb)
	return nil
}

// selectAccounts returns every account, or the one whose address or id is
// sel (an error when there is none).
func selectAccounts(ctx context.Context, s *storage.Store, sel string) ([]storage.Account, error) {
	accts, err := s.Accounts(ctx)
	if err != nil || sel == "" {
		return accts, err
	}
	for _, a := range accts {
		if a.Login == sel || a.ID == sel {
			return []storage.Account{a}, nil
		}
	}
	return nil, fmt.Errorf("no account %q", sel)
}

// plural writes "1 account", "2 accounts".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// migrators lets engines with a schema register their migration.
var migrators = map[string]func(ctx context.Context, cfg config.Config) error{}

func migrate(ctx context.Context, cfg config.Config, args []string) error {
	m, ok := migrators[cfg.Storage.Engine]
	if !ok {
		fmt.Fprintf(out(ctx), "storage engine %s needs no migration\n", cfg.Storage.Engine)
		return nil
	}
	return m(ctx, cfg)
}

func gc(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("gc", flag.ContinueOnError)
	fs.SetOutput(out(ctx))
	grace := fs.Duration("grace", 24*60*60*1e9, "only blobs last written before this long ago")
	if _, err := splitFlags(fs, args); err != nil {
		return err
	}
	s, done, err := useStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer done()
	n, err := s.CollectGarbage(ctx, *grace)
	fmt.Fprintf(out(ctx), "%d blobs deleted\n", n)
	return err
}
