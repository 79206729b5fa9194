package indexertest

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

// Message is one corpus message.
type Message struct {
	Name string
	Raw  []byte
}

// FindCorpus walks up from the working directory to shared/corpus. It
// skips the test when absent, unless CI=true.
func FindCorpus(t testing.TB) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		for _, c := range []string{filepath.Join(dir, "shared", "corpus"), filepath.Join(dir, "corpus")} {
			if st, err := os.Stat(filepath.Join(c, "torture")); err == nil && st.IsDir() {
				return c
			}
		}
		up := filepath.Dir(dir)
		if up == dir {
			break
		}
		dir = up
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true and shared/corpus not found")
	}
	t.Skip("shared/corpus not found")
	return ""
}

// Sample returns n corpus messages chosen with seed (torture/*.eml and
// real/real-messages.tar.gz).
func Sample(t testing.TB, n int, seed int64) []Message {
	t.Helper()
	root := FindCorpus(t)
	var all []Message
	err := filepath.WalkDir(filepath.Join(root, "torture"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".eml") {
			return err
		}
		raw, err := os.ReadFile(p)
		if err == nil {
			rel, _ := filepath.Rel(root, p)
			all = append(all, Message{rel, raw})
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
	r := rand.New(rand.NewSource(seed))
	r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	if n < len(all) {
		all = all[:n]
	}
	return all
}
