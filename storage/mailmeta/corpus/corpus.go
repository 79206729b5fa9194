// Package corpus reads the test mail in ../shared/corpus for the tests of
// every package (mailmeta, the indexers, the integration tests). It imports
// nothing of Stoa's, so any package's tests may use it.
package corpus

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Message is one corpus message; Name is its path below the corpus
// ("torture/…/x.eml", "real/…").
type Message struct {
	Name string
	Raw  []byte
}

// Dir returns the corpus directory: shared/corpus in the working directory
// or one above it (a clone beside shared/), else /work/shared/corpus. It
// skips the test when there is none, and fails it under CI=true.
func Dir(t testing.TB) string {
	t.Helper()
	var tried []string
	if dir, err := os.Getwd(); err == nil {
		for {
			tried = append(tried, filepath.Join(dir, "shared", "corpus"))
			up := filepath.Dir(dir)
			if up == dir {
				break
			}
			dir = up
		}
	}
	tried = append(tried, "/work/shared/corpus")
	for _, c := range tried {
		if st, err := os.Stat(filepath.Join(c, "torture")); err == nil && st.IsDir() {
			return c
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true and shared/corpus not found (looked above the working directory and in /work/shared)")
	}
	t.Skip("shared/corpus not found")
	return ""
}

// All returns every torture/**/*.eml and every file of
// real/real-messages.tar.gz, sorted by name.
func All(t testing.TB) []Message {
	t.Helper()
	root := Dir(t)
	var all []Message
	err := filepath.WalkDir(filepath.Join(root, "torture"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".eml") {
			return err
		}
		raw, err := os.ReadFile(p)
		if err == nil {
			rel, _ := filepath.Rel(root, p)
			all = append(all, Message{filepath.ToSlash(rel), raw})
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "real", "real-messages.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		raw, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, Message{"real/" + h.Name, raw})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return all
}

// Sample returns n messages of All chosen with seed (all of them, shuffled,
// when n is larger).
func Sample(t testing.TB, n int, seed int64) []Message {
	t.Helper()
	all := All(t)
	r := rand.New(rand.NewSource(seed))
	r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	if n < len(all) {
		all = all[:n]
	}
	return all
}
