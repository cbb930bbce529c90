// Package history is the agent's journal of every step it ran: who ran
// which step on which instance, for which build, when, how long, with what
// result. It owns one append-only file of JSON lines (data_dir/history.jsonl)
// holding a begin record when a step starts and a finish record when it
// ends, each synced to disk before the call returns. A step that began and
// never finished — the agent died — is finished as "interrupted" when the
// journal is next opened; a line a crash cut short is dropped. The merged
// entries stay in memory, so listing never reads the file.
//
// It must not know drivers, HTTP, locks or what a step does: the agent
// hands it names and results as strings.
package history
