// Command stoa is the Stoa mail server: one binary for every role.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/stoa-mail/stoa/cmd/stoa/config"
)

// Version is set at build time with -ldflags "-X main.Version=…".
var Version = "dev"

type command struct {
	name, usage string
	run         func(ctx context.Context, cfg config.Config, args []string) error
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: stoa [--config FILE] [--section.key VALUE ...] COMMAND [ARGS]\n\ncommands:\n")
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].usage)
	}
	fmt.Fprintf(w, "\nEvery configuration key can be set in the file, as STOA_<SECTION>_<KEY>, or as --section.key.\nRun 'stoa help config' to list them, 'stoa config' to print the effective configuration.\n")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("stoa", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fl := config.Flags(fs)
	fs.Usage = func() { usage(stderr) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	rest := fs.Args()
	if len(rest) == 0 {
		usage(stderr)
		return 2
	}
	if rest[0] == "help" {
		if len(rest) > 1 && rest[1] == "config" {
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		if len(rest) > 1 && commands[rest[1]].run != nil {
			rest = []string{rest[1], "--help"} // stoa help import = stoa import --help
		} else {
			usage(stdout)
			return 0
		}
	}
	cmd, ok := commands[rest[0]]
	if !ok {
		fmt.Fprintf(stderr, "stoa: unknown command %q\n", rest[0])
		usage(stderr)
		return 2
	}
	// Configuration flags (--section.key) may also follow the command; the
	// others belong to the command.
	cmdArgs, err := fl.Extract(rest[1:])
	if err != nil {
		fmt.Fprintf(stderr, "stoa: %v\n", err)
		return 2
	}
	cfg, err := config.Load(fl)
	if err != nil {
		fmt.Fprintf(stderr, "stoa: %v\n", err)
		return 2
	}
	setupLogging(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func(sig context.Context) { <-sig.Done(); stop() }(ctx) // a second interrupt kills at once
	// With the embedded engine only one process may open the data: forward
	// administration commands to a running server when there is one.
	if remotable[cmd.name] && cfg.Storage.Engine == "embedded" {
		err := runRemote(ctx, cfg, cmd.name, cmdArgs, stdout, stderr)
		if err == nil || err.Error() == flag.ErrHelp.Error() {
			return 0
		}
		if err.Error() == errFlagsShown.Error() {
			return 2
		}
		if !errors.Is(err, errNoServer) {
			fmt.Fprintf(stderr, "stoa %s: %v\n", cmd.name, err)
			return 1
		}
		// No server, and no database either: the data folder (./data by
		// default) is probably relative to another directory.
		db := filepath.Join(cfg.Server.DataDir, "db")
		if _, err := os.Stat(db); errors.Is(err, os.ErrNotExist) {
			abs, _ := filepath.Abs(cfg.Server.DataDir)
			fmt.Fprintf(stderr, "stoa %s: note: no server is running with the data folder %s and it holds no database: creating a new, empty one "+
				"(server.data_dir is relative to the current directory; set --server.data_dir or STOA_SERVER_DATA_DIR to use another)\n",
				cmd.name, abs)
		}
	}
	ctx = context.WithValue(context.WithValue(ctx, outKey, stdout), errKey, stderr)
	if err := cmd.run(ctx, cfg, cmdArgs); errors.Is(err, flag.ErrHelp) {
		return 0
	} else if errors.Is(err, errFlagsShown) {
		return 2
	} else if err != nil {
		fmt.Fprintf(stderr, "stoa %s: %v\n", cmd.name, err)
		return 1
	}
	return 0
}

// errFlagsShown: a command's flags did not parse, and the flag package
// has printed why and the usage already.
var errFlagsShown = errors.New("invalid arguments")

func setupLogging(cfg config.Config, w io.Writer) {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Server.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.Server.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	slog.SetDefault(slog.New(h))
}

func init() {
	register(command{name: "version", usage: "print the version", run: func(ctx context.Context, cfg config.Config, args []string) error {
		if err := noArgs(ctx, "version", args); err != nil {
			return err
		}
		fmt.Fprintln(out(ctx), "stoa", Version)
		return nil
	}})
	register(command{name: "config", usage: "print the effective configuration as TOML [--show-secrets]", run: printConfig})
}

// noArgs parses the arguments of a command that takes none but -h.
func noArgs(ctx context.Context, name string, args []string) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out(ctx))
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// printConfig writes the effective configuration; passwords are left out
// (a commented line says one is set) unless --show-secrets.
func printConfig(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	fs.SetOutput(out(ctx))
	show := fs.Bool("show-secrets", false, "print passwords too")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *show {
		return config.Write(out(ctx), cfg)
	}
	const hidden = "\x00hidden\x00"
	if cfg.Cassandra.Password != "" {
		cfg.Cassandra.Password = hidden
	}
	urls := make([]string, len(cfg.Index.OpenSearchURL))
	for i, u := range cfg.Index.OpenSearchURL {
		urls[i] = u
		if p, err := url.Parse(u); err == nil {
			urls[i] = p.Redacted()
		}
	}
	cfg.Index.OpenSearchURL = urls
	var b strings.Builder
	if err := config.Write(&b, cfg); err != nil {
		return err
	}
	text := strings.ReplaceAll(b.String(), `password = "\u0000hidden\u0000"`, "# password is set, not shown: stoa config --show-secrets prints it")
	_, err := io.WriteString(out(ctx), text)
	return err
}
