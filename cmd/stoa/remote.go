package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
	storeKey
)

func out(ctx context.Context) io.Writer {
	if w, ok := ctx.Value(outKey).(io.Writer); ok {
		return w
	}
	return os.Stdout
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
}

type remoteResp struct {
	Output string `json:"output"`
	Error  string `json:"error,omitempty"`
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
		var buf bytes.Buffer
		ctx := context.WithValue(context.WithValue(r.Context(), outKey, &buf), storeKey, a.Store)
		resp := remoteResp{}
		if err := cmd.run(ctx, a.Cfg, req.Args); err != nil {
			resp.Error = err.Error()
		}
		resp.Output = buf.String()
		_ = json.NewEncoder(w).Encode(resp)
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

// errNoServer means no running server answered on the control socket.
var errNoServer = errors.New("no running server")

// runRemote forwards a command to a running server, if one answers.
func runRemote(cfg config.Config, name string, args []string, stdout io.Writer) error {
	path := socketPath(cfg)
	if _, err := os.Stat(path); err != nil {
		return errNoServer
	}
	c := &http.Client{Timeout: 10 * time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}}
	body, _ := json.Marshal(remoteReq{Command: name, Args: args})
	resp, err := c.Post("http://stoa/run", "application/json", bytes.NewReader(body))
	if err != nil {
		return errNoServer
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("server: %s", strings.TrimSpace(string(b)))
	}
	var rr remoteResp
	if err := json.NewDecoder(resp.Body).Decode(&rr); err != nil {
		return err
	}
	io.WriteString(stdout, rr.Output)
	if rr.Error != "" {
		return errors.New(rr.Error)
	}
	return nil
}
