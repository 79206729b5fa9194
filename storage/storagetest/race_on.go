//go:build race

package storagetest

// raceEnabled: the race detector slows the 100,000-message test ~10x, so
// under -race it is skipped; `make test` runs it again without -race.
const raceEnabled = true
