package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/stoa-mail/stoa/cmd/stoa/config"
	"github.com/stoa-mail/stoa/storage"
)

func init() {
	register(command{name: "account", usage: "add, list, passwd, alias, app-password, delete accounts", run: account})
	register(command{name: "domain", usage: "add, list domains; catch-all", run: domain})
}

// splitFlags parses flags that may come after positional arguments.
func splitFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			return nil, err
		} else if err != nil {
			return nil, errFlagsShown // the flag package has printed it, with the usage
		}
		args = fs.Args()
		if len(args) > 0 {
			pos = append(pos, args[0])
			args = args[1:]
		}
	}
	return pos, nil
}

func account(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("account", flag.ContinueOnError)
	fs.SetOutput(out(ctx))
	pw := fs.String("password", "", "password (or set STOA_PASSWORD)")
	quota := fs.Int64("quota-bytes", 0, "storage quota in bytes (0: none)")
	quotaMsgs := fs.Int64("quota-messages", 0, "message quota (0: none)")
	home := fs.String("home-dc", "", "home data centre (cassandra)")
	pos, err := splitFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return fmt.Errorf("usage: stoa account add|list|passwd|alias|app-password|delete ...")
	}
	s, done, err := useStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer done()
	if *pw == "" {
		*pw = getenv(ctx, "STOA_PASSWORD")
	}
	need := func(n int, u string) error {
		if len(pos) < n {
			return fmt.Errorf("usage: stoa account %s", u)
		}
		return nil
	}
	switch pos[0] {
	case "add":
		if err := need(2, "add ADDRESS --password PW"); err != nil {
			return err
		}
		if *pw == "" {
			return fmt.Errorf("a password is needed: --password PW or STOA_PASSWORD")
		}
		a, err := s.AddAccount(ctx, pos[1], *pw, storage.AccountOptions{QuotaBytes: *quota, QuotaMessages: *quotaMsgs, HomeDC: *home})
		if err != nil {
			return err
		}
		fmt.Fprintf(out(ctx), "account %s created (id %s)\n", a.Login, a.ID)
	case "list":
		accts, err := s.Accounts(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out(ctx), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "LOGIN\tID\tALIASES\tMESSAGES\tBYTES")
		for _, a := range accts {
			q, _ := s.Quota(ctx, a.ID)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", a.Login, a.ID, strings.Join(a.Aliases, ","), q.UsedMessages, q.UsedBytes)
		}
		return tw.Flush()
	case "passwd":
		if err := need(2, "passwd ADDRESS --password PW"); err != nil {
			return err
		}
		a, err := s.AccountByAddress(ctx, pos[1])
		if err != nil {
			return err
		}
		if err := s.SetPassword(ctx, a.ID, *pw); err != nil {
			return err
		}
		fmt.Fprintf(out(ctx), "password of %s changed\n", a.Login)
	case "alias":
		if err := need(3, "alias ADDRESS ALIAS"); err != nil {
			return err
		}
		a, err := s.AccountByAddress(ctx, pos[1])
		if err != nil {
			return err
		}
		if err := s.AddAlias(ctx, a.ID, pos[2]); err != nil {
			return err
		}
		fmt.Fprintf(out(ctx), "%s now receives mail for %s\n", a.Login, pos[2])
	case "app-password":
		if err := need(3, "app-password ADDRESS NAME"); err != nil {
			return err
		}
		a, err := s.AccountByAddress(ctx, pos[1])
		if err != nil {
			return err
		}
		secret, err := s.AddAppPassword(ctx, a.ID, pos[2])
		if err != nil {
			return err
		}
		fmt.Fprintln(out(ctx), secret)
	case "delete":
		if err := need(2, "delete ADDRESS"); err != nil {
			return err
		}
		a, err := s.AccountByAddress(ctx, pos[1])
		if err != nil {
			return err
		}
		if err := s.DeleteAccount(ctx, a.ID); err != nil {
			return err
		}
		fmt.Fprintf(out(ctx), "account %s deleted with its mail\n", a.Login)
	default:
		return fmt.Errorf("unknown account command %q", pos[0])
	}
	return nil
}

func domain(ctx context.Context, cfg config.Config, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: stoa domain add NAME | list | catch-all DOMAIN ADDRESS")
	}
	s, done, err := useStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer done()
	switch args[0] {
	case "add":
		if len(args) < 2 {
			return fmt.Errorf("usage: stoa domain add NAME")
		}
		if err := s.AddDomain(ctx, args[1]); err != nil {
			return err
		}
		fmt.Fprintf(out(ctx), "domain %s added\n", args[1])
		return nil
	case "list":
		ds, err := s.Engine().ListDomains(ctx)
		for _, d := range ds {
			if d.CatchAll == "" {
				fmt.Fprintln(out(ctx), d.Name)
				continue
			}
			to := d.CatchAll
			if a, err := s.Account(ctx, d.CatchAll); err == nil {
				to = a.Login
			}
			fmt.Fprintf(out(ctx), "%s\tcatch-all → %s\n", d.Name, to)
		}
		return err
	case "catch-all":
		if len(args) < 3 {
			return fmt.Errorf("usage: stoa domain catch-all DOMAIN ADDRESS")
		}
		a, err := s.AccountByAddress(ctx, args[2])
		if err != nil {
			return err
		}
		if err := s.SetCatchAll(ctx, args[1], a.ID); err != nil {
			return err
		}
		fmt.Fprintf(out(ctx), "mail to unknown addresses of %s goes to %s\n", args[1], a.Login)
		return nil
	}
	return fmt.Errorf("unknown domain command %q", args[0])
}
