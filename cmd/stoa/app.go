package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stoa-mail/stoa/cmd/stoa/config"
	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/embedded"
	"github.com/stoa-mail/stoa/storage/mailmeta"
)

// App is what every role gets: configuration, the store, TLS, metrics.
type App struct {
	Cfg      config.Config
	Store    *storage.Store
	TLS      *tls.Config
	Log      *slog.Logger
	Registry *prometheus.Registry
	// Ready is set once every role has started.
	Ready atomic.Bool
	// Listening collects "what: address" lines for the start-up banner.
	mu        sync.Mutex
	Listening []string
	closers   []func() error
}

// Listen records an address for the banner.
func (a *App) Listen(what, addr string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.Listening = append(a.Listening, fmt.Sprintf("%-24s %s", what, addr))
}

// OnClose registers cleanup run at shutdown, last registered first.
func (a *App) OnClose(f func() error) { a.closers = append(a.closers, f) }

// Close runs the cleanups.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			a.Log.Warn("shutdown", "err", err)
		}
	}
}

// engineOpeners lets engines other than the embedded one register
// themselves (storage/cassandra does, in open_cassandra.go).
var engineOpeners = map[string]func(ctx context.Context, cfg config.Config) (storage.Engine, error){
	"embedded": func(ctx context.Context, cfg config.Config) (storage.Engine, error) {
		dir := filepath.Join(cfg.Server.DataDir, "db")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		e, err := embedded.Open(dir, embedded.Options{NoSync: cfg.Storage.NoSync})
		if err != nil && strings.Contains(err.Error(), "resource temporarily unavailable") {
			return nil, fmt.Errorf("the data folder %s is in use by another running stoa (the embedded engine allows one process; administration commands reach a running server through %s)",
				cfg.Server.DataDir, filepath.Join(cfg.Server.DataDir, "stoa.sock"))
		}
		return e, err
	},
}

func storeConfig(cfg config.Config) storage.Config {
	lim := mailmeta.DefaultLimits()
	if cfg.Storage.MaxMIMEDepth > 0 {
		lim.MaxDepth = cfg.Storage.MaxMIMEDepth
	}
	if cfg.Storage.MaxMIMEParts > 0 {
		lim.MaxParts = cfg.Storage.MaxMIMEParts
	}
	if cfg.Storage.MaxHeaders > 0 {
		lim.MaxHeaders = cfg.Storage.MaxHeaders
	}
	return storage.Config{
		Separator:       cfg.Storage.Separator,
		PlusSeparator:   cfg.Storage.PlusSeparator,
		NoPlus:          cfg.Storage.PlusSeparator == "",
		ChangeRetention: cfg.Storage.ChangeRetention,
		MaxMessageSize:  cfg.Storage.MaxMessageSize,
		ParseLimits:     lim,
		ActivityFlush:   cfg.Storage.ActivityFlush.Duration,
		Logger:          slog.Default(),
	}
}

// openStore opens the configured engine and wraps it in the mail rules.
func openStore(ctx context.Context, cfg config.Config) (*storage.Store, error) {
	open, ok := engineOpeners[cfg.Storage.Engine]
	if !ok {
		return nil, fmt.Errorf("storage engine %q is not built into this binary", cfg.Storage.Engine)
	}
	eng, err := open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return storage.New(eng, storeConfig(cfg)), nil
}

func newApp(ctx context.Context, cfg config.Config) (*App, error) {
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a := &App{Cfg: cfg, Store: st, Log: slog.Default(), Registry: prometheus.NewRegistry()}
	a.OnClose(st.Close)
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if a.TLS, err = loadTLS(cfg); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// loadTLS reads the configured certificate or makes a self-signed one
// under data_dir/tls on first start (development).
func loadTLS(cfg config.Config) (*tls.Config, error) {
	cert, key := cfg.TLS.CertFile, cfg.TLS.KeyFile
	if cert == "" {
		dir := filepath.Join(cfg.Server.DataDir, "tls")
		cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		if _, err := os.Stat(cert); errors.Is(err, os.ErrNotExist) {
			if err := selfSigned(dir, cert, key, cfg.Server.Hostname); err != nil {
				return nil, err
			}
			slog.Info("generated a self-signed TLS certificate", "cert", cert)
		}
	}
	c, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}, nil
}

func selfSigned(dir, certFile, keyFile, host string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: host, Organization: []string{"Stoa development"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(5, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{host, "localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// Role is one thing `stoa serve` can run. Start returns once listening.
type Role struct {
	Name  string
	Order int // lower starts first
	Start func(ctx context.Context, a *App) error
}

var roles = map[string]Role{}

// RegisterRole adds a role; protocol packages are wired in role_*.go files.
func RegisterRole(r Role) { roles[r.Name] = r }

func sortedRoles(cfg config.Config) ([]Role, error) {
	var out []Role
	for _, n := range cfg.Server.Roles {
		r, ok := roles[n]
		if !ok {
			slog.Info("role not available in this version yet; skipped", "role", n)
			continue
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Order < out[j].Order })
	return out, nil
}

// adminHandler serves /healthz, /readyz and /metrics.
func adminHandler(a *App) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !a.Ready.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		if _, err := a.Store.Engine().ListDomains(r.Context()); err != nil {
			http.Error(w, "storage: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(a.Registry, promhttp.HandlerOpts{}))
	return mux
}
