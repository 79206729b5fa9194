package integration

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stoa-mail/stoa/integration/harness"
)

// TestServeZeroConfig starts the real binary and checks the admin endpoints.
func TestServeZeroConfig(t *testing.T) {
	s := harness.Start(t, harness.Options{Accounts: map[string]string{"alice@example.test": "pw"}})
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": "go_goroutines"} {
		resp, err := http.Get("http://" + s.Addr["admin"] + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("%s: %d %q", path, resp.StatusCode, b)
		}
	}
}
