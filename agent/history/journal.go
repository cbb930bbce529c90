package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/baepo/baepo/sdk/proc"
)

// Results the journal itself writes; the agent writes "ok" and "failed".
const (
	ResultRunning     = "running"     // begun, not finished
	ResultInterrupted = "interrupted" // the agent stopped while the step ran
)

// OutcomeUnknown is the outcome of a run that Open ends: the agent stopped
// before the run's client said how it ended.
const OutcomeUnknown = "unknown"

// Messages of the records Open writes for what the agent never finished.
const (
	interruptedMessage = "agent stopped while the step ran"
	unknownMessage     = "agent stopped before the run's client said how it ended"
)

// ErrClosed is returned (wrapped) by Begin, Finish and EndRun after Close.
var ErrClosed = errors.New("history journal is closed")

// ErrNoRun is returned (wrapped) by EndRun for a run none of whose steps
// the journal holds.
var ErrNoRun = errors.New("no step of the run is journaled here")

// Record kinds, the "op" of a line.
const (
	opBegin  = "begin"
	opFinish = "finish"
	opEnd    = "end" // of a run
)

// record is one line of the journal file.
type record struct {
	Op string `json:"op"`

	// begin
	Entry *Entry `json:"entry,omitempty"`

	// finish
	ID       int64         `json:"id,omitempty"`
	Time     time.Time     `json:"time,omitzero"` // when the step finished
	Result   string        `json:"result,omitempty"`
	Message  string        `json:"message,omitempty"`
	Release  string        `json:"release,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`

	// end of a run
	Run string  `json:"run,omitempty"`
	End *RunEnd `json:"end,omitempty"`
}

// Entry is one step in the journal, as it is stored on disk: the begin
// record holds it whole, the finish record fills in Result, Message,
// Release and Duration.
type Entry struct {
	ID       int64         `json:"id"`
	Time     time.Time     `json:"time"` // when the step began
	Service  string        `json:"service"`
	Instance string        `json:"instance"`
	Step     string        `json:"step"`
	Release  string        `json:"release,omitempty"`
	Result   string        `json:"result"` // ok, failed, interrupted, running
	Message  string        `json:"message,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	Build    Build         `json:"build"`
	User     string        `json:"user,omitempty"`
	Run      string        `json:"run,omitempty"` // the client run it belongs to; "" in journals older than runs
}

// Build identifies the CI build that ordered a step.
type Build struct {
	Tag    string `json:"tag,omitempty"`
	URL    string `json:"url,omitempty"`
	Job    string `json:"job,omitempty"`
	Number string `json:"number,omitempty"`
}

// Is reports whether name names the build: its tag, or job#number.
func (b Build) Is(name string) bool {
	return name != "" && (name == b.Tag || (b.Job != "" && name == b.Job+"#"+b.Number))
}

// Run is one run of the client as this journal has it: its first
// journaled step here opened it, [Journal.EndRun] (or Open, as
// [OutcomeUnknown]) ended it. Build and User are its first step's.
type Run struct {
	ID        string
	Started   time.Time // when its first step here began; see [Run.Start]
	Build     Build
	User      string
	Instances []string // "service/instance" of its steps here, in the order they came
	Steps     int      // how many of its steps the journal holds
	End       *RunEnd  // nil while it runs
}

// Start is when the run started: the client's time once it said how the
// run ended, else when its first step here began.
func (r Run) Start() time.Time {
	if r.End != nil && !r.End.Started.IsZero() {
		return r.End.Started
	}
	return r.Started
}

// RunEnd is how a run ended, as its client said, or as Open wrote it for a
// run whose client never said ([OutcomeUnknown], no exit code). Outcome,
// ExitCode and the counts are those of the whole run, on every server.
type RunEnd struct {
	Time      time.Time      `json:"time"`                  // when the journal recorded it
	Started   time.Time      `json:"started,omitzero"`      // when the client started the run
	Duration  time.Duration  `json:"duration_ns,omitempty"` // how long the run took, for the client
	Template  string         `json:"template,omitempty"`
	Outcome   string         `json:"outcome"`
	ExitCode  *int           `json:"exit_code,omitempty"`
	Message   string         `json:"message,omitempty"`
	Artifacts []Artifact     `json:"artifacts,omitempty"`
	Counts    map[string]int `json:"counts,omitempty"` // instances by result
}

// Artifact is an artifact a run deployed.
type Artifact struct {
	SHA256 string `json:"sha256"`
	Name   string `json:"name,omitempty"`
	URL    string `json:"url,omitempty"`
}

// Filter selects journal entries and runs; zero fields match everything.
// A run matches Service, Instance and Step when one of its steps does.
type Filter struct {
	Service, Instance, Step string
	Build                   string    // a build tag, or job#number
	Since                   time.Time // entries that began (runs that started) at or after Since
	Limit                   int       // at most this many, newest first; 0 = all
}

// stepMatches reports whether e is a step of the service, instance and
// name f selects.
func (f Filter) stepMatches(e Entry) bool {
	return (f.Service == "" || e.Service == f.Service) &&
		(f.Instance == "" || e.Instance == f.Instance) &&
		(f.Step == "" || e.Step == f.Step)
}

// selects reports whether a step or run that began at t for build b
// passes f's Since and Build.
func (f Filter) selects(t time.Time, b Build) bool {
	return (f.Since.IsZero() || !t.Before(f.Since)) && (f.Build == "" || b.Is(f.Build))
}

// Journal is an open history file. It is safe for concurrent use.
type Journal struct {
	path string

	mu      sync.RWMutex
	f       *os.File         // nil after Close
	entries []Entry          // in ID order
	index   map[int64]int    // ID → position in entries
	runs    []Run            // in the order of their first step
	runIdx  map[string]int   // run ID → position in runs
	runOf   map[string][]int // run ID → positions of its steps in entries
	nextID  int64
	torn    bool // a failed write may have left a partial line
}

// Open opens the journal at path, creating it and its directory. It loads
// every entry and run, drops a last line a crash cut short, and appends an
// "interrupted" finish record for every step that began and never
// finished, and an "unknown" end for every run that never ended.
func Open(path string) (*Journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	j := &Journal{path: path, f: f, index: map[int64]int{}, runIdx: map[string]int{}, runOf: map[string][]int{}, nextID: 1}
	if err := j.load(); err != nil {
		f.Close()
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	if err := proc.SyncDir(filepath.Dir(path)); err != nil { // the file may be new
		f.Close()
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	if err := j.closeUnfinished(); err != nil {
		f.Close()
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	return j, nil
}

// load reads the file into memory. A line that does not parse is skipped;
// a last line without its newline is cut off if it does not parse, and
// completed if it does, so the next append starts on a line of its own.
func (j *Journal) load() error {
	br := bufio.NewReaderSize(j.f, 64<<10)
	var good int64 // offset just past the last complete line
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			good += int64(len(line))
			j.apply(line)
			continue
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("read: %w", err)
		}
		if len(line) == 0 {
			return nil
		}
		// The last line has no newline: a write the agent did not finish.
		if j.apply(line) {
			if _, err := j.f.Write([]byte("\n")); err != nil {
				return fmt.Errorf("complete the last line: %w", err)
			}
		} else if err := j.f.Truncate(good); err != nil {
			return fmt.Errorf("cut off a partial last line: %w", err)
		}
		if err := j.f.Sync(); err != nil {
			return fmt.Errorf("sync: %w", err)
		}
		return nil
	}
}

// apply merges one line into memory and reports whether it was a record.
func (j *Journal) apply(line []byte) bool {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return false
	}
	var r record
	if err := json.Unmarshal(line, &r); err != nil {
		return false
	}
	switch {
	case r.Op == opBegin && r.Entry != nil:
		j.add(*r.Entry)
	case r.Op == opFinish:
		j.finish(r)
	case r.Op == opEnd && r.End != nil:
		j.endRun(r.Run, *r.End)
	default:
		return false
	}
	return true
}

func (j *Journal) add(e Entry) {
	// An ID no later ID can follow (only a damaged or edited file has one)
	// is skipped like a line that does not parse.
	if _, dup := j.index[e.ID]; dup || e.ID <= 0 || e.ID == math.MaxInt64 {
		return
	}
	e.Result, e.Message, e.Duration = ResultRunning, "", 0
	j.index[e.ID] = len(j.entries)
	j.entries = append(j.entries, e)
	j.nextID = max(j.nextID, e.ID+1)
	if e.Run != "" {
		j.addToRun(len(j.entries) - 1)
	}
}

// addToRun counts the entry at position i as a step of its run, opening
// the run if it is its first step here. A run that Open ended as unknown
// and whose client goes on runs again.
func (j *Journal) addToRun(i int) {
	e := j.entries[i]
	k, ok := j.runIdx[e.Run]
	if !ok {
		k = len(j.runs)
		j.runIdx[e.Run] = k
		j.runs = append(j.runs, Run{ID: e.Run, Started: e.Time, Build: e.Build, User: e.User})
	}
	j.runOf[e.Run] = append(j.runOf[e.Run], i)
	r := &j.runs[k]
	r.Steps++
	if inst := e.Service + "/" + e.Instance; !slices.Contains(r.Instances, inst) {
		r.Instances = append(r.Instances, inst)
	}
	if r.End != nil && r.End.Outcome == OutcomeUnknown {
		r.End = nil
	}
}

// endRun records how run ended; a later end replaces an earlier one.
func (j *Journal) endRun(run string, end RunEnd) {
	if k, ok := j.runIdx[run]; ok {
		j.runs[k].End = &end
	}
}

func (j *Journal) finish(r record) {
	if r.ID < math.MaxInt64 {
		j.nextID = max(j.nextID, r.ID+1)
	}
	i, ok := j.index[r.ID]
	if !ok {
		return
	}
	e := &j.entries[i]
	e.Result, e.Message, e.Duration = r.Result, r.Message, r.Duration
	if r.Release != "" {
		e.Release = r.Release
	}
}

// closeUnfinished appends a finish record for every running entry and an
// end record for every run that did not end.
func (j *Journal) closeUnfinished() error {
	var recs []record
	now := time.Now().UTC()
	for _, e := range j.entries {
		if e.Result == ResultRunning {
			recs = append(recs, record{Op: opFinish, ID: e.ID, Time: now, Result: ResultInterrupted, Message: interruptedMessage})
		}
	}
	for _, r := range j.runs {
		if r.End == nil {
			recs = append(recs, record{Op: opEnd, Run: r.ID, End: &RunEnd{Time: now, Outcome: OutcomeUnknown, Message: unknownMessage}})
		}
	}
	if len(recs) == 0 {
		return nil
	}
	var buf []byte
	for _, r := range recs {
		line, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode %s record: %w", r.Op, err)
		}
		buf = append(append(buf, line...), '\n')
	}
	if err := j.write(buf); err != nil {
		return fmt.Errorf("close %d unfinished steps and runs: %w", len(recs), err)
	}
	for _, r := range recs {
		if r.Op == opEnd {
			j.endRun(r.Run, *r.End)
		} else {
			j.finish(r)
		}
	}
	return nil
}

// write appends lines and syncs the file. If an earlier write failed part
// way, it starts on a fresh line so the fragment cannot swallow the record.
func (j *Journal) write(lines []byte) error {
	if j.f == nil {
		return ErrClosed
	}
	if j.torn {
		lines = append([]byte("\n"), lines...)
	}
	if _, err := j.f.Write(lines); err != nil {
		j.torn = true
		return err
	}
	j.torn = false
	return j.f.Sync()
}

func (j *Journal) writeRecord(r record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return j.write(append(line, '\n'))
}

// Begin records that a step started and returns its entry's ID. IDs
// increase, also across restarts. A zero e.Time means now; e.ID, Result,
// Message and Duration are set by the journal.
func (j *Journal) Begin(e Entry) (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	e.ID = j.nextID
	j.nextID++ // never reused, even if the write below fails half-way
	e.Result, e.Message, e.Duration = ResultRunning, "", 0
	if err := j.writeRecord(record{Op: opBegin, Entry: &e}); err != nil {
		return 0, fmt.Errorf("record the start of step %s on %s/%s: %w", e.Step, e.Service, e.Instance, err)
	}
	j.add(e)
	return e.ID, nil
}

// Finish records how step id ended: its result ("ok", "failed",
// "interrupted"), a message, the release it left current ("" = unchanged)
// and how long it ran.
func (j *Journal) Finish(id int64, result, message, release string, d time.Duration) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	i, ok := j.index[id]
	if !ok {
		return fmt.Errorf("record the end of history entry %d: no such entry", id)
	}
	if e := j.entries[i]; e.Result != ResultRunning {
		return fmt.Errorf("record the end of history entry %d (%s on %s/%s): already finished as %s", id, e.Step, e.Service, e.Instance, e.Result)
	}
	r := record{Op: opFinish, ID: id, Time: time.Now().UTC(), Result: result, Message: message, Release: release, Duration: d}
	if err := j.writeRecord(r); err != nil {
		return fmt.Errorf("record the end of history entry %d: %w", id, err)
	}
	j.finish(r)
	return nil
}

// EndRun records how run ended and returns the run. It fails with
// ErrNoRun when none of the run's steps is journaled here: a run leaves a
// record only where it ran a journaled step. A later end replaces an
// earlier one. A zero end.Time means now.
func (j *Journal) EndRun(run string, end RunEnd) (Run, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	k, ok := j.runIdx[run]
	if !ok {
		return Run{}, fmt.Errorf("record the end of run %s: %w", run, ErrNoRun)
	}
	if end.Time.IsZero() {
		end.Time = time.Now().UTC()
	}
	if err := j.writeRecord(record{Op: opEnd, Run: run, End: &end}); err != nil {
		return Run{}, fmt.Errorf("record the end of run %s: %w", run, err)
	}
	j.endRun(run, end)
	return j.runCopy(k), nil
}

// List returns the entries that match f, newest first.
func (j *Journal) List(f Filter) ([]Entry, error) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	var out []Entry
	for i := len(j.entries) - 1; i >= 0; i-- {
		e := j.entries[i]
		if !f.stepMatches(e) || !f.selects(e.Time, e.Build) {
			continue
		}
		out = append(out, e)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out, nil
}

// Runs returns the runs that match f, the run whose first step here came
// last first.
func (j *Journal) Runs(f Filter) ([]Run, error) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	var out []Run
	for k := len(j.runs) - 1; k >= 0; k-- {
		r := j.runs[k]
		if !f.selects(r.Start(), r.Build) || !slices.ContainsFunc(j.runOf[r.ID], func(i int) bool { return f.stepMatches(j.entries[i]) }) {
			continue
		}
		out = append(out, j.runCopy(k))
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out, nil
}

// runCopy is the run at position k, sharing nothing the journal changes.
func (j *Journal) runCopy(k int) Run {
	r := j.runs[k]
	r.Instances = slices.Clone(r.Instances)
	return r
}

// Close closes the journal file. List and Runs still answer from memory;
// Begin, Finish and EndRun fail with ErrClosed.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	if err != nil {
		return fmt.Errorf("close history %s: %w", j.path, err)
	}
	return nil
}
