// Command bench measures inbound SMTP throughput end to end: it starts the
// real stoa binary (smtp role only) on a fresh data folder, creates the
// recipient accounts, drives Postfix's smtp-source against the MX port
// (N parallel sessions, each sending its share of the messages over one
// connection), prints accepted messages per second, then stops the server
// and counts what the store holds, so only durably stored mail counts.
//
//	go run ./frontend/smtp/bench -messages 20000 -sessions 20 -rcpts 100 -size 4096
//
// STOA_STORAGE_ENGINE=cassandra runs it against Cassandra (a fresh
// keyspace per run, created with `stoa migrate`).
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/stoa-mail/stoa/frontend/smtp/testdns"
)

var (
	messages = flag.Int("messages", 20000, "messages to send")
	sessions = flag.Int("sessions", 20, "parallel SMTP sessions")
	rcpts    = flag.Int("rcpts", 100, "recipient accounts (messages are spread evenly)")
	size     = flag.Int("size", 4096, "message length (smtp-source -l)")
	bin      = flag.String("bin", "", "stoa binary (default: go build ./cmd/stoa)")
	source   = flag.String("smtp-source", "/usr/sbin/smtp-source", "Postfix's smtp-source")
	keep     = flag.Bool("keep", false, "keep the data folder")
	cpuprof  = flag.String("pprof", "", "if set, save a 20 s CPU profile of the server here")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func run() error {
	if _, err := os.Stat(*source); err != nil {
		return fmt.Errorf("smtp-source not found (apt-get install postfix): %v", err)
	}
	dir, err := os.MkdirTemp("", "stoa-bench-smtp-")
	if err != nil {
		return err
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	stoa := *bin
	if stoa == "" {
		stoa = filepath.Join(dir, "stoa")
		cmd := exec.Command("go", "build", "-o", stoa, "./cmd/stoa")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build: %w", err)
		}
	}
	dns, err := testdns.Start()
	if err != nil {
		return err
	}
	defer dns.Close()
	dns.SetTXT("sender.example", "v=spf1 ip4:127.0.0.1 -all")
	dns.SetTXT("_dmarc.sender.example", "v=DMARC1; p=none")

	engine := os.Getenv("STOA_STORAGE_ENGINE")
	if engine == "" {
		engine = "embedded"
	}
	mx, admin := freePort(), freePort()
	cfg := fmt.Sprintf(`[server]
hostname = "mx.bench.test"
data_dir = %q
roles = ["smtp"]
log_level = "warn"

[smtp]
mx_listen = %q
submission_listen = ""
submissions_listen = ""
lmtp_listen = ""
max_conns_per_ip = 1000
dns_resolver = %q

[http]
listen = ""
admin_listen = %q
`, dir, mx, dns.Addr, admin)
	cfgFile := filepath.Join(dir, "stoa.toml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		return err
	}
	env := os.Environ()
	if engine == "cassandra" {
		env = append(env, "STOA_CASSANDRA_KEYSPACE=stoa_bench_"+strconv.Itoa(os.Getpid()), "STOA_CASSANDRA_SIMPLE_REPLICATION=1")
	}
	stoaCmd := func(args ...string) ([]byte, error) {
		c := exec.Command(stoa, append([]string{"--config", cfgFile}, args...)...)
		c.Env = env
		return c.CombinedOutput()
	}
	if engine == "cassandra" {
		if out, err := stoaCmd("migrate"); err != nil {
			return fmt.Errorf("migrate: %v\n%s", err, out)
		}
	}
	fmt.Printf("engine %s; creating %d accounts...\n", engine, *rcpts)
	for i := 0; i < *rcpts; i++ {
		if out, err := stoaCmd("account", "add", fmt.Sprintf("user%d@bench.test", i), "--password", "pw"); err != nil {
			return fmt.Errorf("account add: %v\n%s", err, out)
		}
	}

	srv := exec.Command(stoa, "--config", cfgFile, "serve")
	srv.Env = env
	var log bytes.Buffer
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	stop := func() {
		srv.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			srv.Process.Kill()
			<-done
		}
	}
	defer func() {
		if srv.ProcessState == nil {
			stop()
		}
	}()
	if err := waitReady(admin, done); err != nil {
		return fmt.Errorf("%v\n%s", err, log.String())
	}

	if *cpuprof != "" {
		go func() {
			time.Sleep(2 * time.Second)
			resp, err := http.Get("http://" + admin + "/debug/pprof/profile?seconds=20")
			if err != nil || resp.StatusCode != 200 {
				fmt.Fprintln(os.Stderr, "pprof not served by the admin endpoint; run with perf or a test profile instead")
				return
			}
			defer resp.Body.Close()
			f, _ := os.Create(*cpuprof)
			defer f.Close()
			f.ReadFrom(resp.Body)
		}()
	}

	// Spread the messages over the recipients; at most `sessions`
	// smtp-source processes (one connection each, -d) run at a time.
	per := make([]int, *rcpts)
	for i := 0; i < *messages; i++ {
		per[i%*rcpts]++
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	start := time.Now()
	for w := 0; w < *sessions; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range jobs {
				c := exec.Command(*source, "-d", "-s", "1", "-m", strconv.Itoa(per[r]), "-l", strconv.Itoa(*size),
					"-M", "client.sender.example", "-f", "bench@sender.example", "-t", fmt.Sprintf("user%d@bench.test", r), mx)
				if out, err := c.CombinedOutput(); err != nil || len(out) > 0 {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("user%d: %v %s", r, err, out))
					mu.Unlock()
				}
			}
		}()
	}
	for r := 0; r < *rcpts; r++ {
		jobs <- r
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	if resp, err := http.Get("http://" + admin + "/metrics"); err == nil {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "stoa_smtp_delivery_seconds_sum") || strings.HasPrefix(l, "stoa_smtp_delivery_seconds_count") {
				fmt.Println(l)
			}
		}
		resp.Body.Close()
	}
	stop()
	for i, f := range failures {
		if i < 5 {
			fmt.Println("smtp-source:", f)
		}
	}

	out, err := stoaCmd("account", "list")
	if err != nil {
		return fmt.Errorf("account list: %v\n%s", err, out)
	}
	stored := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 4 && strings.HasSuffix(f[0], "@bench.test") {
			n, _ := strconv.Atoi(f[len(f)-2])
			stored += n
		}
	}
	fmt.Printf("engine %s: %d messages of %d bytes, %d sessions, %d recipients\n", engine, *messages, *size, *sessions, *rcpts)
	fmt.Printf("accepted in %.2fs: %.0f msg/s; stored after stop: %d (%d failed sessions)\n",
		elapsed.Seconds(), float64(*messages)/elapsed.Seconds(), stored, len(failures))
	if stored != *messages {
		fmt.Printf("server log (tail):\n%s\n", tail(log.String(), 2000))
		return fmt.Errorf("stored %d of %d messages", stored, *messages)
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func waitReady(admin string, done chan error) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			return fmt.Errorf("stoa exited: %v", err)
		default:
		}
		if resp, err := http.Get("http://" + admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("stoa not ready after 60s")
}
