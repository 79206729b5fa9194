// Package harness starts the real stoa binary for end-to-end tests: it
// builds it once, writes a configuration with free ports and a temporary
// data folder, adds accounts, starts `stoa serve`, waits until /readyz
// answers, and stops it when the test ends (printing its log on failure).
package harness

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stoa-mail/stoa/storage/mailmeta/corpus"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// RepoRoot finds the module root from the working directory.
func RepoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return dir
}

// Binary builds ./cmd/stoa once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "stoa-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "stoa")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/stoa")
		cmd.Dir = RepoRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// FreePort returns a free TCP address on 127.0.0.1.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Options configure a server.
type Options struct {
	// Accounts to create before start: login → password.
	Accounts map[string]string
	// Config is extra TOML appended to the generated file (sections must
	// not repeat generated ones: use Env for those keys instead).
	Config string
	// Env adds environment variables (e.g. STOA_STORAGE_ENGINE=cassandra,
	// STOA_FAILPOINTS=…).
	Env []string
	// Roles overrides server.roles.
	Roles []string
	// DataDir reuses a data folder (restart tests); default a new temp dir.
	DataDir string
}

// Server is a running stoa process.
type Server struct {
	t       testing.TB
	Bin     string
	DataDir string
	Config  string // path of the generated configuration file
	Env     []string
	// Addresses by name: smtp, submission, submissions, lmtp, imap, imaps, http, admin.
	Addr map[string]string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start builds (once), configures and starts stoa, and waits until ready.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s := &Server{t: t, Bin: Binary(t), DataDir: o.DataDir, Addr: map[string]string{}}
	if s.DataDir == "" {
		s.DataDir = t.TempDir()
	}
	roles := o.Roles
	if roles == nil {
		roles = []string{"smtp", "imap", "http", "mta", "indexer"}
	}
	s.writeConfig(roles, o.Config)
	s.Env = append(os.Environ(), o.Env...)
	for login, pw := range o.Accounts {
		if out, err := s.Stoa("account", "add", login, "--password", pw); err != nil {
			t.Fatalf("account add %s: %v\n%s", login, err, out)
		}
	}
	// A port found free can be taken (by another test's outgoing
	// connection) before the server binds it: then new ports, again.
	for try := 1; !s.launch(try < 3); try++ {
		t.Logf("a port was taken before stoa bound it; new ports (try %d)", try+1)
		s.writeConfig(roles, o.Config)
	}
	return s
}

// writeConfig picks free ports and writes the configuration file.
func (s *Server) writeConfig(roles []string, extra string) {
	t := s.t
	for _, n := range []string{"smtp", "submission", "submissions", "lmtp", "imap", "imaps", "http", "admin"} {
		s.Addr[n] = FreePort(t)
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "[server]\nhostname = \"mx.stoa.test\"\ndata_dir = %q\nroles = [%s]\nlog_level = \"debug\"\n\n", s.DataDir, quoteList(roles))
	fmt.Fprintf(&cfg, "[smtp]\nmx_listen = %q\nsubmission_listen = %q\nsubmissions_listen = %q\nlmtp_listen = %q\n\n",
		s.Addr["smtp"], s.Addr["submission"], s.Addr["submissions"], s.Addr["lmtp"])
	fmt.Fprintf(&cfg, "[imap]\nlisten = %q\ntls_listen = %q\n\n", s.Addr["imap"], s.Addr["imaps"])
	fmt.Fprintf(&cfg, "[http]\nlisten = %q\nadmin_listen = %q\n\n", s.Addr["http"], s.Addr["admin"])
	cfg.WriteString(extra)
	s.Config = filepath.Join(s.DataDir, "stoa-test.toml")
	if err := os.WriteFile(s.Config, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func quoteList(xs []string) string {
	var q []string
	for _, x := range xs {
		q = append(q, fmt.Sprintf("%q", x))
	}
	return strings.Join(q, ", ")
}

// Stoa runs a stoa sub-command with the server's configuration.
func (s *Server) Stoa(args ...string) (string, error) {
	cmd := exec.Command(s.Bin, append([]string{"--config", s.Config}, args...)...)
	cmd.Env = s.Env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// StoaIn runs a stoa command with dir as its working directory and
// returns its standard output and standard error apart.
func (s *Server) StoaIn(dir string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(s.Bin, append([]string{"--config", s.Config}, args...)...)
	cmd.Env, cmd.Dir = s.Env, dir
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func (s *Server) start() { s.launch(false) }

// launch starts the server and waits until it is ready. With portRetry, a
// server that exits because a port is in use returns false instead of
// failing the test.
func (s *Server) launch(portRetry bool) bool {
	t := s.t
	s.log = &syncBuffer{}
	s.cmd = exec.Command(s.Bin, "--config", s.Config, "serve")
	s.cmd.Env = s.Env
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("stoa log:\n%s", s.Log())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			if portRetry && strings.Contains(s.Log(), "address already in use") {
				return false
			}
			t.Fatalf("stoa exited during start-up:\n%s", s.Log())
		default:
		}
		resp, err := http.Get("http://" + s.Addr["admin"] + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("stoa not ready after 60s:\n%s", s.Log())
	return false
}

// Log returns what the server printed so far.
func (s *Server) Log() string { return s.log.String() }

// Stop stops the server with SIGTERM (SIGKILL after 10 s).
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// Kill kills the server at once, as a crash would.
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		<-s.done
	}
}

// Wait waits for the process to exit by itself (e.g. at a failpoint).
func (s *Server) Wait(d time.Duration) bool {
	select {
	case <-s.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Restart starts the server again on the same data and ports.
func (s *Server) Restart(env ...string) {
	s.Stop()
	s.Env = append(s.Env, env...)
	s.start()
}

// Corpus returns the path of ../shared/corpus (corpus.Dir): tests skip
// without it, but fail under CI=true.
func Corpus(t testing.TB) string {
	t.Helper()
	return corpus.Dir(t)
}

// Python returns the python3 path or skips (fails under CI=true).
func Python(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 not installed")
		}
		t.Skip("python3 not installed")
	}
	return p
}

var _ = runtime.GOOS
