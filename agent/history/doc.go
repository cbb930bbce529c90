// Package history is the agent's journal of every step it ran and of the
// client runs they belong to: who ran which step on which instance, for
// which build, when, how long, with what result; and for each run, how it
// ended. It owns one append-only file of JSON lines
// (data_dir/history.jsonl) holding a begin record when a step starts, a
// finish record when it ends and an end record when a run's client says
// how the run ended, each synced to disk before the call returns. A run
// is opened by its first step here: a step's begin record names its run.
// A step that began and never finished — the agent died — is finished as
// "interrupted" when the journal is next opened, and a run that never
// ended is ended as "unknown"; a line a crash cut short is dropped.
// Journals written before runs existed load as they are: their steps
// belong to no run. The merged entries and runs stay in memory, so
// listing never reads the file.
//
// It must not know drivers, HTTP, locks or what a step does: the agent
// hands it names and results as strings.
package history
