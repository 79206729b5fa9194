// Package testenv gives tests the addresses of the real servers that
// `make test` starts (see integration/services and docs/services.md).
//
// When a server is not configured or does not answer, the test is skipped,
// except under CI=true, where a missing server is a failure: CI must never
// pass by skipping. In -short mode (`make test-short`) such tests are always
// skipped.
package testenv

import (
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// Cassandra returns the CQL address (host:port) from STOA_TEST_CASSANDRA
// after checking that it accepts TCP connections.
func Cassandra(t testing.TB) string {
	t.Helper()
	const env = "STOA_TEST_CASSANDRA"
	addr := configured(t, env)
	host := strings.TrimSpace(strings.Split(addr, ",")[0])
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, "9042")
	}
	conn, err := net.DialTimeout("tcp", host, 3*time.Second)
	if err != nil {
		unavailable(t, env+"="+addr+" does not answer: "+err.Error())
	}
	conn.Close()
	return addr
}

// OpenSearch returns the base URL (http://host:port) from STOA_TEST_OPENSEARCH
// after checking that it answers HTTP.
func OpenSearch(t testing.TB) string {
	t.Helper()
	const env = "STOA_TEST_OPENSEARCH"
	url := strings.TrimRight(configured(t, env), "/")
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url + "/")
	if err != nil {
		unavailable(t, env+"="+url+" does not answer: "+err.Error())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		unavailable(t, env+"="+url+" answered "+resp.Status)
	}
	return url
}

func configured(t testing.TB, env string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("skipped in -short mode: needs a real server (" + env + "); run `make test`")
	}
	v := strings.TrimSpace(os.Getenv(env))
	if v == "" {
		unavailable(t, env+" is not set; run `make test`, which starts the servers and sets it")
	}
	return v
}

func unavailable(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true and a required test server is missing: " + msg)
	}
	t.Skip(msg)
}
