package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/stoa-mail/stoa/cmd/stoa/config"
	"github.com/stoa-mail/stoa/storage"
)

// The embedded engine allows one process at a time. So that administration
// commands work while `stoa serve` runs, the server listens on a Unix
// socket in its data folder (mode 0600: whoever can read the data may
// administer) and runs those commands in-process for the CLI.

type ctxKey int

const (
	outKey ctxKey = iota
	errKey
	storeKey
	dirKey
	envKey
)

// out is where a command writes its results (the caller's stdout, also
// when the command runs inside a server for the CLI).
func out(ctx context.Context) io.Writer {
	if w, ok := ctx.Value(outKey).(io.Writer); ok {
		return w
	}
	return os.Stdout
}

// errOut is where a command draws progress and notes (the caller's stderr).
func errOut(ctx context.Context) io.Writer {
	if w, ok := ctx.Value(errKey).(io.Writer); ok {
		return w
	}
	return os.Stderr
}

// absPath resolves a path the caller gave against the caller's working
// directory, which is not the server's when the command was forwarded.
func absPath(ctx context.Context, p string) (string, error) {
	if d, ok := ctx.Value(dirKey).(string); ok && d != "" && !filepath.IsAbs(p) {
		return filepath.Join(d, p), nil
	}
	return filepath.Abs(p)
}

// useStore returns the running server's store when the command runs inside
// the server, else opens one; done releases it.
func useStore(ctx context.Context, cfg config.Config) (*storage.Store, func(), error) {
	if s, ok := ctx.Value(storeKey).(*storage.Store); ok {
		return s, func() {}, nil
	}
	s, err := openStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return s, func() { s.Close() }, nil
}

func socketPath(cfg config.Config) string { return filepath.Join(cfg.Server.DataDir, "stoa.sock") }

// remotable commands may be forwarded to a running server.
var remotable = map[string]bool{"account": true, "domain": true, "repair": true, "gc": true, "import": true}

type remoteReq struct {
	Command string   `json:"command"`
	Args    []string `json:"args"`
	Dir     string   `json:"dir"` // the caller's working directory, for relative paths
	// Env holds the caller's values of the variables commands read
	// (callerEnv), not the server's.
	Env map[string]string `json:"env,omitempty"`
}

// callerEnv are the environment variables a command reads from its caller.
var callerEnv = []string{"STOA_PASSWORD"}

// getenv reads a variable of the command's caller (forwarded or local).
func getenv(ctx context.Context, name string) string {
	if env, ok := ctx.Value(envKey).(map[string]string); ok {
		return env[name]
	}
	return os.Getenv(name)
}

// The answer to /run is a stream of frames, written as the command runs:
// a stream byte ('o' stdout, 'e' stderr, 'x' end), a big-endian uint32
// length and that many bytes. The 'x' frame carries the command's error
// ("" when it succeeded); a stream without it was cut off.
const (
	frameOut  = 'o'
	frameErr  = 'e'
	frameExit = 'x'
	maxFrame  = 1 << 20
)

// frameWriter writes one stream's frames to w and flushes each, so the
// caller sees progress as it happens. Safe for concurrent use.
type frameWriter struct {
	mu     *sync.Mutex
	w      http.ResponseWriter
	stream byte
}

func (f frameWriter) Write(p []byte) (int, error) {
	for n := 0; n < len(p); {
		c := p[n:min(len(p), n+maxFrame)]
		if err := f.frame(c); err != nil {
			return n, err
		}
		n += len(c)
	}
	return len(p), nil
}

func (f frameWriter) frame(b []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var h [5]byte
	h[0] = f.stream
	binary.BigEndian.PutUint32(h[1:], uint32(len(b)))
	if _, err := f.w.Write(h[:]); err != nil {
		return err
	}
	if _, err := f.w.Write(b); err != nil {
		return err
	}
	http.NewResponseController(f.w).Flush()
	return nil
}

// serveControl starts the control socket for a running server.
func serveControl(a *App) error {
	path := socketPath(a.Cfg)
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	_ = os.Chmod(path, 0o600)
	mux := http.NewServeMux()
	mux.HandleFunc("/run", func(w http.ResponseWriter, r *http.Request) {
		var req remoteReq
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		cmd, ok := commands[req.Command]
		if !ok || !remotable[req.Command] {
			http.Error(w, "not a remote command", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		mu := &sync.Mutex{}
		ctx := context.WithValue(r.Context(), outKey, frameWriter{mu, w, frameOut})
		ctx = context.WithValue(ctx, errKey, frameWriter{mu, w, frameErr})
		ctx = context.WithValue(ctx, storeKey, a.Store)
		ctx = context.WithValue(ctx, dirKey, req.Dir)
		ctx = context.WithValue(ctx, envKey, req.Env)
		msg := ""
		start := time.Now()
		err := cmd.run(ctx, a.Cfg, req.Args)
		if err != nil {
			msg = err.Error()
			if len(msg) > 64<<10 {
				msg = msg[:64<<10] + "…"
			}
		}
		// An audit line for every administration command the server ran.
		log := slog.With("command", req.Command, "args", redactArgs(req.Args), "duration", time.Since(start).Round(time.Millisecond))
		if err != nil {
			log.Warn("admin command failed", "err", truncate(msg, 512))
		} else {
			log.Info("admin command")
		}
		_ = frameWriter{mu, w, frameExit}.frame([]byte(msg))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	a.OnClose(func() error {
		srv.Close()
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	})
	return nil
}

// redactArgs hides the value of every password flag.
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	hideNext := false
	for i, a := range args {
		switch {
		case hideNext:
			out[i], hideNext = "***", false
		case isPasswordFlag(a):
			if k, _, ok := strings.Cut(a, "="); ok {
				out[i] = k + "=***"
			} else {
				out[i], hideNext = a, true
			}
		default:
			out[i] = a
		}
	}
	return out
}

func isPasswordFlag(a string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
	return strings.HasPrefix(a, "-") && strings.Contains(strings.ToLower(name), "password")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// errNoServer means no running server answered on the control socket.
var errNoServer = errors.New("no running server")

// runRemote forwards a command to a running server, if one answers, and
// copies its output to stdout and stderr as it comes.
func runRemote(ctx context.Context, cfg config.Config, name string, args []string, stdout, stderr io.Writer) error {
	path := socketPath(cfg)
	if _, err := os.Stat(path); err != nil {
		return errNoServer
	}
	// No overall timeout: a reindex or import may run for hours. The
	// caller's interrupt closes the connection, which stops the command.
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}}
	dir, _ := os.Getwd()
	env := map[string]string{}
	for _, k := range callerEnv {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	body, _ := json.Marshal(remoteReq{Command: name, Args: args, Dir: dir, Env: env})
	req, err := http.NewRequestWithContext(ctx, "POST", "http://stoa/run", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return errNoServer
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("server: %s", strings.TrimSpace(string(b)))
	}
	r := bufio.NewReader(resp.Body)
	for {
		var h [5]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted; the server stops the command: %w", ctx.Err())
			}
			return fmt.Errorf("the server stopped answering before the command finished: %w", err)
		}
		n := binary.BigEndian.Uint32(h[1:])
		if n > maxFrame {
			return fmt.Errorf("control socket: frame of %d bytes", n)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return fmt.Errorf("the server stopped answering before the command finished: %w", err)
		}
		switch h[0] {
		case frameOut:
			stdout.Write(b)
		case frameErr:
			stderr.Write(b)
		case frameExit:
			if len(b) > 0 {
				return errors.New(string(b))
			}
			return nil
		default:
			return fmt.Errorf("control socket: unknown frame %q", h[0])
		}
	}
}
