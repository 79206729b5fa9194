// Package storage holds Stoa's mail rules and the contract every storage
// engine implements.
//
// The rules (UID and MODSEQ allocation, exact counts, quota, change records,
// thread assignment, blob references) live here, in Store. Engines
// (storage/embedded on Pebble, storage/cassandra on CQL) only persist: they
// give Store a consistent Reader of one account and apply the WriteSet that
// Store computed, atomically and durably. See docs/adr/0003-storage-model.md.
package storage
