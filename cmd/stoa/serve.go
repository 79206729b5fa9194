package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/stoa-mail/stoa/cmd/stoa/config"
	"github.com/stoa-mail/stoa/storage/failpoint"
)

func init() {
	register(command{name: "serve", usage: "run the server (all roles by default)", run: serve})
}

func serve(ctx context.Context, cfg config.Config, args []string) error {
	if err := noArgs(ctx, "serve", args); err != nil {
		return err
	}
	if fp := os.Getenv("STOA_FAILPOINTS"); fp != "" {
		if err := failpoint.FromEnv(fp); err != nil {
			return err
		}
	}
	a, err := newApp(ctx, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := serveControl(a); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	rs, err := sortedRoles(cfg)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if err := r.Start(ctx, a); err != nil {
			return fmt.Errorf("role %s: %w", r.Name, err)
		}
	}
	// The admin endpoints get their own listener when admin_listen is set;
	// otherwise they share http.listen (mounted by the http role if it runs).
	admin := cfg.HTTP.AdminListen
	if _, httpRole := roles["http"]; admin == "" && !(httpRole && cfg.HasRole("http")) {
		admin = cfg.HTTP.Listen
	}
	if admin != "" {
		ln, err := net.Listen("tcp", admin)
		if err != nil {
			return fmt.Errorf("admin listener: %w", err)
		}
		srv := &http.Server{Handler: adminHandler(a), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		a.OnClose(func() error { return srv.Close() })
		a.Listen("admin (health, metrics)", "http://"+ln.Addr().String())
	}
	a.Ready.Store(true)
	banner(a)
	<-ctx.Done()
	a.Log.Info("shutting down")
	return nil
}

func banner(a *App) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nStoa %s is running (storage: %s, data: %s)\n", Version, a.Cfg.Storage.Engine, a.Cfg.Server.DataDir)
	for _, l := range a.Listening {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	if accts, err := a.Store.Accounts(context.Background()); err == nil && len(accts) == 0 {
		fmt.Fprintf(&b, "\nNo accounts yet. Add the first one with:\n  ./bin/stoa account add alice@example.test --password 'choose-one'\n")
	}
	fmt.Fprintln(os.Stdout, b.String())
}

var errUsage = errors.New("usage")
